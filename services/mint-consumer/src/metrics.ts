import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The consumer's Prometheus metrics, on a registry of its own (served at GET /metrics). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    events: new Counter({
      name: "consumer_events_total",
      help: "Messages taken from CASHBACK by outcome (recorded, duplicate, dead_lettered)",
      labelNames: ["outcome"] as const,
      registers,
    }),
    redeliveries: new Counter({
      name: "consumer_redeliveries_total",
      help: "Messages JetStream delivered more than once",
      registers,
    }),
    deadLetters: new Counter({
      name: "consumer_dead_letters_total",
      help: "Messages and requests sent to CASHBACK_DLQ, by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    requests: new Gauge({
      name: "consumer_requests",
      help: "Mint requests and clawbacks by status (pending work: WAITING, PENDING, SUBMITTED)",
      labelNames: ["kind", "status"] as const,
      registers,
    }),
    transitions: new Counter({
      name: "consumer_transitions_total",
      help: "State changes of mint requests and clawbacks",
      labelNames: ["kind", "from", "to"] as const,
      registers,
    }),
    mintLatency: new Histogram({
      name: "consumer_mint_latency_seconds",
      help: "From the event's intake to its confirmed mint (or clawback)",
      labelNames: ["kind"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800],
      registers,
    }),
    batchSize: new Histogram({
      name: "consumer_mint_batch_size",
      help: "Mints sent per adapter call (1 = MintToken, more = MintBatch)",
      buckets: [1, 2, 5, 10, 25, 50, 100, 200],
      registers,
    }),
    adapterCalls: new Counter({
      name: "consumer_adapter_calls_total",
      help: "Calls to the blockchain adapter by RPC and outcome",
      labelNames: ["rpc", "outcome"] as const,
      registers,
    }),
    adapterSeconds: new Histogram({
      name: "consumer_adapter_call_seconds",
      help: "Duration of calls to the blockchain adapter",
      labelNames: ["rpc"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 30, 60],
      registers,
    }),
    streamPending: new Gauge({
      name: "consumer_stream_pending",
      help: "CASHBACK messages for the durable consumer: not yet delivered (pending) and delivered but not acked (ack_pending)",
      labelNames: ["state"] as const,
      registers,
    }),
    outboxOldestAge: new Gauge({
      name: "consumer_outbox_oldest_age_seconds",
      help: "Age of the oldest result event or dead letter not yet published",
      registers,
    }),
    outboxUnpublished: new Gauge({
      name: "consumer_outbox_unpublished",
      help: "Result events and dead letters written but not yet published",
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
