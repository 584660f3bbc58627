import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { CircuitState } from "cockatiel";
import { BlockchainService, file_cashback_blockchain_v1_blockchain } from "@cashback/proto/blockchain/v1";
import { ensureDatabase, migrate } from "@cashback/db";
import { redactUrl, type Logger } from "@cashback/runtime";
import { ChainClient } from "./chain/chain-client.ts";
import { SignerBalances } from "./chain/signer-balances.ts";
import { ensureChainContinuity } from "./chain/chain-continuity.ts";
import { createChainBreaker } from "./chain/circuit-breaker.ts";
import { isCircuitOpen, isTransportError, shortMessage } from "./chain/rpc-errors.ts";
import { ClawbackService } from "./clawbacks/clawback-service.ts";
import { LOCAL_CHAIN_ID } from "@cashback/token";
import { devKeyRefused, type AdapterConfig } from "./config.ts";
import { createDb, isDatabaseUnavailable } from "./db.ts";
import { AdapterError } from "./errors.ts";
import { backoffMs, FailureStreak } from "./failure-streak.ts";
import { createMetrics } from "./metrics.ts";
import { Completions } from "./mints/completions.ts";
import { HeldKeys, MintDispatcher } from "./mints/dispatcher.ts";
import { MintService } from "./mints/mint-service.ts";
import { ReceiptWatcher } from "./transactions/receipt-watcher.ts";
import { Settlement } from "./mints/settlement.ts";
import { TxMonitor } from "./transactions/tx-monitor.ts";
import { NonceStore } from "./nonces/nonce-store.ts";
import { SignerLanes, type Lane } from "./lanes/signer-lanes.ts";
import { MintCallStore, SendStore } from "./transactions/tx-store.ts";
import { registerReflection } from "./reflection/reflection-service.ts";
import { requireBearer } from "./rpc/auth.ts";
import { blockchainServiceImpl, type Services } from "./rpc/blockchain-service.ts";
import { gates, undecodableRequestsAreInvalidArgument, unknownEncodingIsInvalidArgument } from "./rpc/request-faults.ts";
import { startServer } from "./rpc/server.ts";
import { TransactionLookup } from "./transactions/transaction-lookup.ts";

export const migrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../prisma/migrations");

/**
 * Wires the adapter together. The RPC server listens first: while the database or the chain is
 * down, start-up waits and retries with backoff (GET /readyz says 503, calls get a retryable
 * UNAVAILABLE "STARTING"), instead of exiting and leaving a supervisor to spin. Resolves once
 * everything runs; only a permanent problem (bad configuration, a missing token contract, the
 * dev key on a public chain, an edited migration, a reset non-local chain) rejects, and `signal`
 * aborts the wait.
 */
export async function startAdapter(config: AdapterConfig, logger: Logger, opts: { deploymentsDir?: string; signal?: AbortSignal } = {}) {
  const metrics = createMetrics();
  const breaker = createChainBreaker({ failures: config.breakerFailures, halfOpenAfterMs: config.breakerHalfOpenAfterMs }, logger, metrics);
  let services: Services | undefined;
  let ready: (() => Promise<boolean>) | undefined;
  let waitingFor = "the database";

  const server = await startServer({
    host: config.host,
    port: config.port,
    metrics: metrics.registry,
    limits: config.limits,
    connections: { open: metrics.connectionsOpen, rejected: metrics.connectionsRejected },
    ready: async () => (ready ? ready() : false),
    routes: (router) => {
      const current = () => {
        if (services) return services;
        throw new AdapterError("unavailable", "STARTING", `the adapter is starting (waiting for ${waitingFor}); try again later`);
      };
      router.service(BlockchainService, blockchainServiceImpl(current, logger), {
        requestGate: gates(undecodableRequestsAreInvalidArgument, unknownEncodingIsInvalidArgument, requireBearer(config.authToken)),
      });
      registerReflection(router, [file_cashback_blockchain_v1_blockchain], { requestGate: undecodableRequestsAreInvalidArgument });
    },
  });
  logger.info({ host: config.host, port: server.port }, "blockchain adapter listening (gRPC, gRPC-Web, Connect); starting");

  const step = <T>(what: string, fn: () => Promise<T>) => {
    waitingFor = what;
    return retryWhileUnavailable(what, fn, logger, opts.signal);
  };
  let db: ReturnType<typeof createDb> | undefined;
  try {
    await step("the database", async () => {
      await ensureDatabase(config.databaseUrl);
      const { applied } = await migrate({ connectionString: config.databaseUrl, migrationsDir, logger });
      logger.info({ database: redactUrl(config.databaseUrl), applied }, "database ready");
    });
    const chain = await step("the chain", () => ChainClient.connect({ ...config, breaker, metrics, deploymentsDir: opts.deploymentsDir }));
    if (config.usingDevKey && chain.chainId !== LOCAL_CHAIN_ID) {
      throw new Error(devKeyRefused(config));
    }
    logger.info({ chainId: chain.chainId, tokenAddress: chain.token, signer: chain.signerAddress }, "chain connected");

    db = createDb(config.databaseUrl);
    const database = db;
    await step("the database and the chain (records of the chain)", () => ensureChainContinuity(database, chain, logger));
    const completions = new Completions();
    // Mints back from a bounded transaction that reverted: every lane estimates them before sending.
    const needsEstimate = new Set<string>();
    // Mint keys no lane may send now (used by a transaction not yet mined, or a round in doubt).
    const held = new HeldKeys();
    const heldClawbacks = new HeldKeys();
    // Each lane holds one client through its broadcast; spares so a lane never waits on another's
    // nor on the receipts recorded here too.
    const sendStore = new SendStore(config.databaseUrl, config.signerKeys.length + 2);
    const settlement = new Settlement({ db: database, chain, completions, logger, metrics, confirmations: config.confirmations, needsEstimate, sendStore });
    const receipts = new ReceiptWatcher({ chain, settlement, logger, metrics, confirmations: config.confirmations, stuckAfterMs: config.stuckAfterMs });
    // MintToken / MintBatch record and read on a pool of their own, off the lanes' clients.
    const mintCalls = new MintCallStore(config.databaseUrl, 4);
    const lanes: Lane[] = [];
    const sender = { requireChainCheck: () => signers.requireChainCheck() };
    for (const [i, key] of config.signerKeys.entries()) {
      const laneChain = i === 0 ? chain : chain.withSigner(key);
      const nonces = new NonceStore(database, laneChain, logger, metrics);
      await step("the database and the chain (nonce)", () => nonces.resync("start-up"));
      const dispatcher = new MintDispatcher({
        db: database,
        chain: laneChain,
        nonces,
        settlement,
        receipts,
        completions,
        logger,
        metrics,
        batchMax: config.batchMax,
        batchWindowMs: config.batchWindowMs,
        maxBackoffMs: Math.min(5_000, config.breakerHalfOpenAfterMs),
        needsEstimate,
        held,
        heldClawbacks,
        alwaysEstimate: config.gasEstimate === "always",
        sendStore,
      });
      const monitor = new TxMonitor({ db: database, chain: laneChain, settlement, dispatcher: sender, logger, metrics, confirmations: config.confirmations, stuckAfterMs: config.stuckAfterMs, intervalMs: config.monitorIntervalMs, maxFeePerGas: config.maxFeePerGas });
      lanes.push({ chain: laneChain, nonces, dispatcher, monitor });
    }
    const signers = new SignerLanes(lanes);
    const balances = new SignerBalances({ rpcUrl: config.rpcUrl, timeoutMs: config.rpcTimeoutMs, signers: lanes.map((l) => l.chain.signerAddress), intervalMs: 10_000 });
    metrics.sources.balances = () => balances.current;
    if (lanes.length > 1) logger.info({ signers: lanes.map((l) => l.chain.signerAddress) }, `${lanes.length} signer lanes`);
    const dispatcher = signers;
    const monitor = signers;
    settlement.onRequeued = () => signers.requireChainCheck();
    // The chain answers again: queued work goes now, not after the dispatcher's backoff.
    breaker.onStateChange((state) => {
      if (state === CircuitState.Closed) signers.nudge();
    });
    const common = { db: database, breaker, dispatcher, completions, receiptTimeoutMs: config.receiptTimeoutMs, metadataLimits: config.metadata };
    services = {
      mints: new MintService({ ...common, store: mintCalls }),
      clawbacks: new ClawbackService(common),
      transactions: new TransactionLookup({ db: database, chain, confirmations: config.confirmations }),
      chain,
    };
    ready = async () => {
      await database.$queryRaw`SELECT 1`;
      await chain.blockNumber();
      return true;
    };
    signers.start();
    balances.start();
    logger.info({ port: server.port }, "blockchain adapter ready");

    return {
      port: server.port,
      chain,
      db: database,
      breaker,
      metrics,
      monitor,
      dispatcher,
      lanes: signers,
      completions,
      /** Mints to estimate before they are sent again (read by tests). */
      needsEstimate: needsEstimate as ReadonlySet<string>,
      /** Stops taking calls, lets in-flight work finish, closes connections. */
      async stop() {
        await server.close();
        await signers.stop();
        await balances.stop();
        await receipts.stop();
        await sendStore.close();
        await mintCalls.close();
        await database.$disconnect();
      },
    };
  } catch (err) {
    await server.close();
    await db?.$disconnect().catch(() => {});
    throw err;
  }
}

export type Adapter = Awaited<ReturnType<typeof startAdapter>>;

/** A failure that passes: the database or the chain does not answer (now). */
export function isOutage(err: unknown): boolean {
  return isDatabaseUnavailable(err) || isTransportError(err) || isCircuitOpen(err);
}

/** Runs `fn` until it succeeds; outages are retried with backoff (up to 5 s), anything else is thrown. */
async function retryWhileUnavailable<T>(what: string, fn: () => Promise<T>, logger: Logger, signal?: AbortSignal): Promise<T> {
  const streak = new FailureStreak(logger, `start-up (${what})`);
  for (;;) {
    signal?.throwIfAborted();
    try {
      const result = await fn();
      streak.succeeded();
      return result;
    } catch (err) {
      if (!isOutage(err)) throw err;
      streak.failed(what, { err: shortMessage(err) }, `start-up waits for ${what}; retrying`);
      await sleep(backoffMs(streak.count, 200, 5_000), undefined, { signal });
    }
  }
}
