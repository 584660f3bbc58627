import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The adapter's Prometheus metrics, on a registry of its own (served at GET /metrics). */
export function createMetrics() {
  const registry = new Registry();
  /** Set once the chain is connected: each signer lane's last read balance (see SignerBalances). */
  const sources: { balances?: () => ReadonlyMap<string, bigint> } = {};
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    sources,
    signerBalance: new Gauge({
      name: "adapter_signer_balance_wei",
      help: "Each signer's native balance (gas money), read from the chain every 10 s; absent while the chain does not answer",
      labelNames: ["signer"] as const,
      registers,
      collect() {
        const balances = sources.balances?.();
        if (!balances) return;
        this.reset(); // no stale figure while the chain is unreachable
        for (const [signer, wei] of balances) this.set({ signer }, Number(wei));
      },
    }),
    circuitState: new Gauge({
      name: "adapter_chain_circuit_state",
      help: "Circuit breaker around chain calls: 0 closed, 1 open, 2 half-open, 3 isolated",
      registers,
    }),
    chainCalls: new Counter({
      name: "adapter_chain_calls_total",
      help: "JSON-RPC calls to the node by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    mints: new Counter({
      name: "adapter_mints_total",
      help: "Mints reaching a final state",
      labelNames: ["status"] as const,
      registers,
    }),
    clawbacks: new Counter({
      name: "adapter_clawbacks_total",
      help: "Clawbacks reaching a final state",
      labelNames: ["status"] as const,
      registers,
    }),
    transactions: new Counter({
      name: "adapter_transactions_total",
      help: "Transactions by event (sent, confirmed, failed, rebroadcast, replaced, dropped)",
      labelNames: ["event"] as const,
      registers,
    }),
    nonceResyncs: new Counter({
      name: "adapter_nonce_resyncs_total",
      help: "Times wallet_nonces was corrected from the chain",
      registers,
    }),
    batchSize: new Histogram({
      name: "adapter_mint_batch_size",
      help: "Mints carried per transaction",
      buckets: [1, 2, 5, 10, 25, 50, 100, 200],
      registers,
    }),
    connectionsOpen: new Gauge({
      name: "adapter_connections_open",
      help: "Client connections open on the RPC port",
      registers,
    }),
    connectionsRejected: new Counter({
      name: "adapter_connections_rejected_total",
      help: "Client connections closed at once because ADAPTER_MAX_CONNECTIONS were open",
      registers,
    }),
    roundPhaseSeconds: new Histogram({
      name: "adapter_round_phase_seconds",
      help: "Where a mint round's time goes (begin, claim, nonce, prepare, sign, record, broadcast, commit; receipt = recording it)",
      labelNames: ["phase"] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    receiptSeconds: new Histogram({
      name: "adapter_receipt_seconds",
      help: "From broadcast to recorded receipt",
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 15, 30, 60],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
