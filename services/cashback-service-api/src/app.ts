import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import type pg from "pg";
import { STREAMS } from "@cashback/events";
import { connectNats, ensureStreams, OutboxRelay } from "@cashback/outbox";
import { ensureDatabase, migrate } from "@cashback/db";
import { redactUrl, type Logger } from "@cashback/runtime";
import type { ApiConfig } from "./config.ts";
import { createDb, createPool } from "./db.ts";
import { KeyResolver } from "./http/auth.ts";
import { Idempotency } from "./http/idempotency.ts";
import { buildServer } from "./http/server.ts";
import { BalanceReader } from "./ledger/balance.ts";
import { registerLedgerRoutes } from "./ledger/routes.ts";
import { LedgerEntrySchema } from "./ledger/schemas.ts";
import { registerMerchantRoutes } from "./merchants/routes.ts";
import { createMetrics } from "./metrics.ts";
import { PurchaseSchema } from "./purchases/purchase-view.ts";
import { PurchaseWriter } from "./purchases/purchase-writer.ts";
import { RefundSchema } from "./purchases/refunds.ts";
import { registerPurchaseRoutes } from "./purchases/routes.ts";
import { RESULT_POOL_SIZE, ResultConsumer } from "./results/result-consumer.ts";
import { ResultHandler } from "./results/result-handler.ts";
import { RuleCache } from "./rules/rule-cache.ts";
import { registerRuleRoutes, RuleSchema } from "./rules/routes.ts";
import { CacheListener } from "./support/cache-listener.ts";
import { registerUserRoutes, UserSchema } from "./users/routes.ts";
import { registerPageRoutes } from "./shopper/page.ts";
import { HistoryEntrySchema, registerShopperRoutes } from "./shopper/routes.ts";
import { ShopperSessions } from "./shopper/session-store.ts";

export const migrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../prisma/migrations");

/**
 * Wires the API together: database (migrated at start), caches, the REST server, then, in the
 * background, NATS: the outbox relay and the result consumer. The API takes purchases while NATS
 * is down (events wait in the outbox); /readyz says 503 until both Postgres and NATS answer.
 */
export async function startApi(config: ApiConfig, logger: Logger, opts: { deploymentsDir?: string; webDir?: string } = {}) {
  await ensureDatabase(config.databaseUrl);
  const { applied } = await migrate({ connectionString: config.databaseUrl, migrationsDir, logger });
  logger.info({ database: redactUrl(config.databaseUrl), applied }, "database ready");
  // Not a warning: config refuses the development key off loopback, so here it is always safe.
  if (config.usingDevAdminKey) logger.info("using the development admin key (loopback only; set API_ADMIN_KEY for anything shared)");

  const metrics = createMetrics();
  // Prisma's pool: REST reads, and the result events applied one by one (a batch that can not be
  // applied whole); batches go through resultPool.
  const db = createDb(config.databaseUrl, 8);
  const pool = createPool(config.databaseUrl, config.dbPoolSize);
  const relayPool = createPool(config.databaseUrl, 3);
  const resultPool = createPool(config.databaseUrl, RESULT_POOL_SIZE);
  const keys = new KeyResolver({ db, adminKey: config.adminKey });
  const rules = new RuleCache({ db, logger });
  const idempotency = new Idempotency({ db, ttlMs: config.idempotencyTtlMs, logger });
  let relay: OutboxRelay | undefined;
  const wakeRelay = () => relay?.wake();
  const writer = new PurchaseWriter({ pool, rules, rates: config.rates, idempotency, metrics, logger, userCacheSize: config.userCacheSize, onEventWritten: wakeRelay, batchMax: config.writeBatchMax, statementsInFlight: Math.min(config.writeStatements, config.dbPoolSize - 1), optimisticAttempts: config.capOptimisticAttempts });
  const sessions = new ShopperSessions({ db, nonceTtlMs: config.shopper.nonceTtlMs, sessionTtlMs: config.shopper.sessionTtlMs });
  const balances = new BalanceReader({ adapterUrl: config.adapterUrl, token: config.adapterAuthToken, timeoutMs: config.adapterTimeoutMs, logger, metrics });

  await rules.reload();
  const listener = new CacheListener({
    connectionString: config.databaseUrl,
    tables: ["merchants", "api_keys", "cashback_rules"],
    logger,
    onChange: async (table) => {
      if (table === "api_keys") keys.invalidate();
      else if (table === "merchants") rules.merchantsChanged();
      else if (table === "cashback_rules") await rules.reload();
    },
  });
  await listener.start();

  // NATS in the background: connectNats waits for a server that is not up yet.
  let nats: NatsConnection | undefined;
  let consumer: ResultConsumer | undefined;
  let stopping = false;
  const natsStarted = (async () => {
    const nc = await connectNats({ url: config.natsUrl, name: "cashback-service-api", logger });
    if (stopping) return void (await nc.close());
    nats = nc;
    for (;;) {
      try {
        await ensureStreams(nc, [STREAMS.cashback, STREAMS.results, STREAMS.deadLetters]);
        break;
      } catch (err) {
        if (stopping) return;
        logger.warn({ err: String(err) }, "could not create the JetStream streams yet; retrying");
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    if (stopping || !config.relayEnabled) return;
    relay = new OutboxRelay({ pool: relayPool, nats: nc, logger, retentionMs: config.outboxRetentionMs, lingerMs: config.relayLingerMs, onPublished: (n) => metrics.outboxPublished.inc(n) });
    relay.start();
    consumer = new ResultConsumer({ nats: nc, handler: new ResultHandler({ db, logger, pool: resultPool }), logger, metrics });
    consumer.start();
    logger.info("outbox relay and result consumer running");
  })().catch((err: unknown) => logger.error({ err }, "NATS start-up failed"));

  const collectBacklog = async () => {
    const b = await outboxBacklog(relayPool);
    metrics.outboxBacklog.set(b.unpublished);
    metrics.outboxOldestAge.set(b.oldestAgeSeconds);
  };

  const pruneTimer = setInterval(() => {
    idempotency.prune().catch((err: unknown) => logger.warn({ err: String(err) }, "idempotency key pruning failed"));
    sessions.prune().catch((err: unknown) => logger.warn({ err: String(err) }, "shopper session pruning failed"));
  }, 60_000);
  pruneTimer.unref();

  const app = await buildServer({ logger, metrics, keys, bodyLimitBytes: config.bodyLimitBytes, rateLimitMax: config.rateLimitMax, rateLimitWindowMs: config.rateLimitWindowMs });
  for (const schema of [PurchaseSchema, RefundSchema, RuleSchema, UserSchema, LedgerEntrySchema, HistoryEntrySchema]) app.addSchema(schema);

  app.get("/healthz", { schema: { tags: ["operations"], summary: "Alive" }, config: { rateLimit: false } }, async (_req, reply) => reply.type("text/plain").send("ok\n"));
  app.get("/readyz", { schema: { tags: ["operations"], summary: "Ready: Postgres and NATS answer (503 otherwise)" }, config: { rateLimit: false } }, async (_req, reply) => {
    // Each check bounded: a Postgres or NATS that hangs (rather than refuses) must not hang the probe.
    const [database, natsOk] = await Promise.all([
      withTimeout(pool.query("SELECT 1"), 2_000).then(() => true, () => false),
      nats !== undefined && !nats.isClosed() ? withTimeout(nats.flush(), 2_000).then(() => true, () => false) : false,
    ]);
    const checks = { database, nats: natsOk };
    return reply.status(checks.database && checks.nats ? 200 : 503).send(checks);
  });
  app.get("/metrics", { schema: { tags: ["operations"], summary: "Prometheus metrics" }, config: { rateLimit: false } }, async (_req, reply) => {
    await collectBacklog().catch(() => {});
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  registerMerchantRoutes(app, { db, idempotency, onMerchantsChanged: () => rules.merchantsChanged(), onKeysChanged: () => keys.invalidate() });
  registerUserRoutes(app, { db, idempotency });
  registerPurchaseRoutes(app, { db, idempotency, writer, onEventWritten: wakeRelay });
  registerRuleRoutes(app, { db, idempotency, rules, logger });
  registerLedgerRoutes(app, { db, balances });
  // Sign-in messages must be for this site: the configured origins, or this port on loopback.
  let port = config.port;
  const origins = () => config.shopper.publicOrigins ?? [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
  registerShopperRoutes(app, { db, sessions, config: config.shopper, origins, deploymentsDir: opts.deploymentsDir, logger });
  registerPageRoutes(app, { dir: opts.webDir });

  await app.listen({ host: config.host, port: config.port });
  port = (app.server.address() as { port: number }).port;
  logger.info({ host: config.host, port, shopperOrigins: origins() }, "cashback API listening (REST /v1, docs at /docs, shopper page at /app)");

  return {
    port,
    app,
    db,
    pool,
    metrics,
    idempotency,
    sessions,
    get relay() {
      return relay;
    },
    /** Stops taking requests, lets in-flight ones finish, stops the background work, closes connections. */
    async stop() {
      stopping = true;
      clearInterval(pruneTimer);
      await app.close();
      await consumer?.stop();
      await relay?.stop();
      await listener.stop();
      if (nats) await nats.drain().catch(() => nats?.close());
      await Promise.race([natsStarted, new Promise((r) => setTimeout(r, 100))]);
      await pool.end();
      await relayPool.end();
      await resultPool.end();
      await db.$disconnect();
    },
  };
}

export type Api = Awaited<ReturnType<typeof startApi>>;

/** Unpublished outbox rows and the age of the oldest (what OutboxRelay.backlog() reports), for /metrics. */
async function outboxBacklog(pool: pg.Pool): Promise<{ unpublished: number; oldestAgeSeconds: number }> {
  const { rows } = await pool.query<{ n: number; age: number }>(
    `SELECT count(*)::int AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS age FROM outbox_events WHERE published_at IS NULL`,
  );
  return { unpublished: rows[0]!.n, oldestAgeSeconds: rows[0]!.age };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timed out")), ms).unref())]);
}
