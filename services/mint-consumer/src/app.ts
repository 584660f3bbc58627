import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Transport } from "@connectrpc/connect";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureDatabase, migrate } from "@cashback/db";
import { STREAMS } from "@cashback/events";
import { connectNats, ensureStreams, OutboxRelay } from "@cashback/outbox";
import { redactUrl, type Logger } from "@cashback/runtime";
import { AdapterCalls, createAdapterClient } from "./adapter/adapter-calls.ts";
import type { ConsumerConfig } from "./config.ts";
import { createDb, createPool } from "./db.ts";
import { startHttpServer } from "./http/server.ts";
import { DURABLE_NAME, ensureDurable, Intake } from "./intake/intake.ts";
import { createMetrics } from "./metrics.ts";
import { Dispatcher } from "./requests/dispatcher.ts";
import { RequestStore } from "./requests/store.ts";

export const migrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../prisma/migrations");

/**
 * Wires the consumer together: database, HTTP probes, NATS (streams, durable consumer), then the
 * outbox relay, the dispatcher and the intake. `opts.adapterTransport` replaces the gRPC
 * transport (tests).
 */
export async function startConsumer(config: ConsumerConfig, logger: Logger, opts: { adapterTransport?: Transport } = {}) {
  await ensureDatabase(config.databaseUrl);
  const { applied } = await migrate({ connectionString: config.databaseUrl, migrationsDir, logger });
  logger.info({ database: redactUrl(config.databaseUrl), applied }, "database ready");

  const metrics = createMetrics();
  // Intake, the dispatcher's workers and the relay's passes each hold a connection at times.
  const pool = createPool(config.databaseUrl, config.concurrency + 8);
  const db = createDb(config.databaseUrl);
  // The outbox table has no NOTIFY trigger (it would serialize commits): the store wakes the relay.
  const store = new RequestStore({ pool, policy: config.retry, onOutboxWritten: () => relay?.wake() });
  const calls = new AdapterCalls({
    client: createAdapterClient({ baseUrl: config.adapterUrl, token: config.adapterToken, transport: opts.adapterTransport }),
    timeoutMs: config.adapterTimeoutMs,
    observe: (rpc, outcome, seconds) => {
      metrics.adapterCalls.inc({ rpc, outcome });
      metrics.adapterSeconds.observe({ rpc }, seconds);
    },
  });

  let nats: NatsConnection | undefined;
  let relay: OutboxRelay | undefined;
  let started = false;
  const http = await startHttpServer({
    host: config.host,
    port: config.port,
    metrics: metrics.registry,
    notReady: async () => {
      const checks = await Promise.all([
        withTimeout(pool.query("SELECT 1").then(() => true), 2_000).catch(() => false),
        nats && !nats.isClosed() ? withTimeout(nats.flush().then(() => true), 2_000).catch(() => false) : false,
        calls.reachable(),
      ]);
      const missing = ["database", "nats", "adapter"].filter((_, i) => !checks[i]);
      if (!started) missing.push("starting");
      return missing;
    },
    beforeScrape: async () => {
      const [mints, clawbacks] = await Promise.all([
        db.mintRequest.groupBy({ by: ["status"], _count: { _all: true } }),
        db.clawback.groupBy({ by: ["status"], _count: { _all: true } }),
      ]);
      metrics.requests.reset();
      for (const r of mints) metrics.requests.set({ kind: "mint", status: r.status }, r._count._all);
      for (const r of clawbacks) metrics.requests.set({ kind: "clawback", status: r.status }, r._count._all);
      if (relay) {
        const backlog = await relay.backlog();
        metrics.outboxUnpublished.set(backlog.unpublished);
        metrics.outboxOldestAge.set(backlog.oldestAgeSeconds);
      }
      if (nats && !nats.isClosed()) {
        const info = await withTimeout(jetstreamManager(nats).then((jsm) => jsm.consumers.info(STREAMS.cashback.name, DURABLE_NAME)), 2_000).catch(() => undefined);
        if (info) {
          metrics.streamPending.set({ state: "pending" }, info.num_pending);
          metrics.streamPending.set({ state: "ack_pending" }, info.num_ack_pending);
        }
      }
    },
  });
  logger.info({ host: config.host, port: http.port }, "probes listening (/healthz, /readyz, /metrics)");

  nats = await connectNats({ url: config.natsUrl, name: "mint-consumer", logger });
  // CASHBACK too, though the API writes it: either service may start first.
  await ensureStreams(nats, [STREAMS.cashback, STREAMS.results, STREAMS.deadLetters]);
  await ensureDurable(await jetstreamManager(nats), config);

  relay = new OutboxRelay({ pool, nats, logger });
  const dispatcher = new Dispatcher({
    store,
    calls,
    logger,
    metrics,
    concurrency: config.concurrency,
    mintBatchMax: config.mintBatchMax,
    // A claim outlives the call it was made for (bounded by the call's deadline); after a crash
    // the requests it held are taken up again once it ends.
    leaseMs: config.adapterTimeoutMs + 5_000,
    pollIntervalMs: config.pollIntervalMs,
  });
  const intake = new Intake({
    nats,
    store,
    logger,
    metrics,
    settings: { maxDeliver: config.maxDeliver, ackWaitMs: config.ackWaitMs, maxAckPending: config.maxAckPending, fetchBatch: config.fetchBatch },
    onRecorded: () => dispatcher.nudge(),
  });

  // Reconciliation at start-up: whatever was left SUBMITTED is asked about first.
  const reconciling = await store.reconcileNow();
  relay.start();
  dispatcher.start();
  intake.start();
  started = true;
  logger.info({ adapter: redactUrl(config.adapterUrl), reconciling, concurrency: config.concurrency, mintBatchMax: config.mintBatchMax }, "mint consumer started");

  const nc = nats;
  const outbox = relay;
  return {
    port: http.port,
    config,
    db,
    pool,
    store,
    metrics,
    nats: nc,
    intake,
    dispatcher,
    relay: outbox,
    /** Stops taking events, lets calls under way finish, publishes what it can, closes connections. */
    async stop() {
      started = false;
      await http.close();
      await intake.stop();
      // Half the process's shutdown budget (onShutdown: 10 s) for calls under way, then they are
      // aborted and handed back; the rest of the stop must still fit in it.
      await dispatcher.stop(5_000);
      await outbox.stop();
      await nc.drain().catch(() => {});
      await pool.end().catch(() => {});
      await db.$disconnect();
    },
  };
}

export type Consumer = Awaited<ReturnType<typeof startConsumer>>;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timed out")), ms).unref())]);
}
