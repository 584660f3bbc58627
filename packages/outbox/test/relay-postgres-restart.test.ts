import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import type { NatsConnection } from "@nats-io/transport-node";
import { newEvent, STREAMS } from "@cashback/events";
import { createLogger } from "@cashback/runtime";
import { startNatsServer, startPgCluster, streamMessages, waitFor, type NatsServer, type PgCluster } from "@cashback/testing";
import { connectNats, ensureStreams, insertOutboxSql, OutboxRelay, outboxRecord } from "../src/index.ts";

// Own Postgres cluster and NATS: this test restarts both.
const logger = createLogger("outbox-pg-restart-test", process.env.TEST_LOG_LEVEL ?? "silent");
let cluster: PgCluster;
let nats: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  [cluster, nats] = await Promise.all([startPgCluster(), startNatsServer()]);
  nc = await connectNats({ url: nats.url, name: "outbox-pg-restart-test", logger });
  await ensureStreams(nc, [STREAMS.cashback]);
});
afterAll(async () => {
  await nc?.close();
  await nats?.close();
  await cluster?.close();
});

it("a Postgres restart while a pass holds its connection (waiting for JetStream) does not crash the process; every event is published once afterwards", async () => {
  const pool = new pg.Pool({ connectionString: cluster.url(), max: 4 });
  pool.on("error", () => {}); // idle clients: the pool replaces them
  await pool.query(await readFile(new URL("../sql/outbox_events.sql", import.meta.url), "utf8"));
  const records = Array.from({ length: 20 }, (_, i) =>
    outboxRecord(newEvent("cashback.accrued", { entry_id: crypto.randomUUID(), purchase_id: crypto.randomUUID(), merchant_id: crypto.randomUUID(), user_id: crypto.randomUUID(), wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", amount_wei: "1" }, { correlationId: `agg-${i}` }), { aggregateId: `agg-${i}` }),
  );
  const { text, values } = insertOutboxSql(records);
  await pool.query(text, values);

  await nats.stop(); // the pass's publishes now wait (up to publishTimeoutMs) with its rows claimed
  const relay = new OutboxRelay({ pool, nats: nc, logger, workers: 1, publishTimeoutMs: 4_000 });
  relay.start();
  try {
    const watcher = new pg.Client({ connectionString: cluster.url() });
    await watcher.connect();
    await waitFor("the pass to hold its transaction open", async () => {
      const { rows } = await watcher.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'idle in transaction'");
      return rows[0]!.n > 0;
    });
    await watcher.end();
    await cluster.restart(); // the server tells every session it is going away (57P01)

    await nats.start();
    await waitFor("the outbox to drain", async () => (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox_events WHERE published_at IS NULL")).rows[0]!.n === 0, { timeoutMs: 60_000, intervalMs: 200 });
    const ids = (await streamMessages(nc, STREAMS.cashback.name)).map((m) => (m.json as { id: string }).id);
    expect(ids.sort()).toEqual(records.map((r) => r.id).sort());
  } finally {
    await relay.stop();
    await pool.end();
  }
});
