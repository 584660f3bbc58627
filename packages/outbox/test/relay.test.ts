import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { newEvent, STREAMS } from "@cashback/events";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { createLogger } from "@cashback/runtime";
import { startNatsServer, type NatsServer } from "@cashback/testing";
import { connectNats, ensureStreams, insertOutboxSql, OutboxRelay, outboxRecord } from "../src/index.ts";

const logger = createLogger("outbox-test", process.env.TEST_LOG_LEVEL ?? "silent");
const ddl = await readFile(new URL("../sql/outbox_events.sql", import.meta.url), "utf8");

let nats: NatsServer;
let nc: NatsConnection;
let db: TestDatabase;
let pool: pg.Pool;
const relays: OutboxRelay[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ url: nats.url, name: "outbox-test", logger });
});
afterAll(async () => {
  await nc?.close();
  await nats?.close();
});
afterEach(async () => {
  for (const r of relays.splice(0)) await r.stop();
  await pool?.end();
  await db?.drop();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(STREAMS.cashback.name).catch(() => {});
});

async function setup() {
  db = await createTestDatabase("outbox");
  pool = new pg.Pool({ connectionString: db.url, max: 12 });
  // pool.end() does not wait for its clients to close: the DROP ... WITH (FORCE) after it may end
  // a session still closing, and the pool reports that as an 'error' (flaky unhandled error).
  pool.on("error", () => {});
  await pool.query(ddl);
  await ensureStreams(nc, [STREAMS.cashback]);
}

const uuid = () => randomUUID();
function accrued(aggregateId: string, n: number) {
  const event = newEvent(
    "cashback.accrued",
    { entry_id: uuid(), purchase_id: uuid(), merchant_id: uuid(), user_id: uuid(), wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", amount_wei: String(n + 1) },
    { correlationId: aggregateId },
  );
  return outboxRecord(event, { aggregateId, headers: { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01`, "x-n": String(n) } });
}

async function insert(records: ReturnType<typeof accrued>[]) {
  for (let i = 0; i < records.length; i += 500) {
    const { text, values } = insertOutboxSql(records.slice(i, i + 500));
    await pool.query(text, values);
  }
}

function startRelay(opts: Partial<ConstructorParameters<typeof OutboxRelay>[0]> = {}) {
  const relay = new OutboxRelay({ pool, nats: nc, logger, batchSize: 200, ...opts });
  relay.start();
  relays.push(relay);
  return relay;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every message in the stream, in stream order: its msg id, aggregate (correlation id), n header. */
async function streamContents() {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(STREAMS.cashback.name);
  const consumer = await jetstream(nc).consumers.get(STREAMS.cashback.name);
  const out: { id: string; aggregate: string; n: number; traceparent: string | undefined }[] = [];
  if (info.state.messages === 0) return out;
  const messages = await consumer.fetch({ max_messages: info.state.messages, expires: 5_000 });
  for await (const m of messages) {
    const envelope = m.json<{ id: string; correlation_id: string }>();
    out.push({ id: envelope.id, aggregate: envelope.correlation_id, n: Number(m.headers?.get("x-n")), traceparent: m.headers?.get("traceparent") });
    if (out.length === info.state.messages) break;
  }
  return out;
}

const unpublished = async () => (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox_events WHERE published_at IS NULL")).rows[0]!.n;

describe("OutboxRelay", () => {
  it("publishes each event exactly once, in order per aggregate, with three relays at once", async () => {
    await setup();
    // 600 aggregates with 1-3 events each, interleaved as concurrent writers would leave them.
    const records: ReturnType<typeof accrued>[] = [];
    for (let round = 0; round < 3; round++) {
      for (let a = 0; a < 600; a++) if (a % 3 >= round) records.push(accrued(`agg-${a}`, round));
    }
    await insert(records);
    for (let i = 0; i < 3; i++) startRelay();

    await until("the outbox to drain", async () => (await unpublished()) === 0);
    const messages = await streamContents();
    expect(messages).toHaveLength(records.length);
    expect(new Set(messages.map((m) => m.id)).size).toBe(records.length);
    const lastN = new Map<string, number>();
    for (const m of messages) {
      expect(m.n, `order of ${m.aggregate}`).toBe((lastN.get(m.aggregate) ?? -1) + 1);
      lastN.set(m.aggregate, m.n);
    }
    expect(messages[0]!.traceparent).toMatch(/^00-a{32}-b{16}-01$/);
  });

  it("wakes at once when its producer calls wake(), without waiting for its poll", async () => {
    await setup();
    const relay = startRelay({ pollIntervalMs: 10 * 60_000 });
    await insert([accrued("wake", 0)]);
    relay.wake();
    await until("the first event to be published", async () => (await unpublished()) === 0, 30_000);
    // Every worker has now found the table empty and sleeps for 10 minutes: only a wake can get
    // the next event published within the deadline.
    await new Promise((r) => setTimeout(r, 300));
    await insert([accrued("wake", 1)]);
    relay.wake();
    await until("the second event to be published", async () => (await unpublished()) === 0, 30_000);
  });

  it("lingers between back-to-back passes, so rows written one by one go out in one batch", async () => {
    await setup();
    const batches: number[] = [];
    const relay = startRelay({ workers: 1, lingerMs: 3_000, pollIntervalMs: 10 * 60_000, onPublished: (n) => batches.push(n) });
    await insert([accrued("linger", 0)]);
    relay.wake();
    await until("the first event", async () => (await unpublished()) === 0, 30_000);
    // The pass that published it was followed by a wake (ours), so the relay lingers: every row
    // written in the meantime, one statement and one wake each, goes out in its next pass.
    for (let i = 1; i <= 30; i++) {
      await insert([accrued(`linger-${i}`, 0)]); // distinct aggregates: one pass may take them all
      relay.wake();
    }
    await until("the other thirty", async () => (await unpublished()) === 0, 30_000);
    expect(batches).toEqual([1, 30]);
  });

  it("wakes on a NOTIFY from another process", async () => {
    await setup();
    startRelay({ pollIntervalMs: 10 * 60_000 });
    await new Promise((r) => setTimeout(r, 500)); // idle, listening
    await insert([accrued("notify", 0)]);
    await pool.query("NOTIFY outbox_events");
    await until("the event to be published", async () => (await unpublished()) === 0, 30_000);
  });

  it("leaves inserts alone: the table has no trigger (a NOTIFY per commit would serialize them)", async () => {
    await setup();
    const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'outbox_events'::regclass AND NOT tgisinternal");
    expect(rows[0]!.n).toBe(0);
  });

  it("waits out a NATS outage and then publishes everything once", async () => {
    await setup();
    await nats.stop();
    startRelay({ publishTimeoutMs: 500 });
    await insert(Array.from({ length: 300 }, (_, i) => accrued(`outage-${i % 50}`, Math.floor(i / 50))));
    await until("failed attempts to be recorded", async () => {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox_events WHERE attempts > 0 AND last_error IS NOT NULL");
      return rows[0]!.n > 0;
    });
    expect(await unpublished()).toBe(300);

    await nats.start();
    await until("the outbox to drain", async () => (await unpublished()) === 0);
    const messages = await streamContents();
    expect(messages).toHaveLength(300);
    expect(new Set(messages.map((m) => m.id)).size).toBe(300);
  });

  it("does not publish twice what a crashed relay published but never marked", async () => {
    await setup();
    const record = accrued("crash", 0);
    await insert([record]);
    // The crashed relay got this far: published, then died before its UPDATE committed.
    await jetstream(nc).publish(record.subject, Buffer.from(JSON.stringify(record.payload)), { msgID: record.id });
    startRelay();
    await until("the outbox to drain", async () => (await unpublished()) === 0);
    expect(await streamContents()).toHaveLength(1);
  });

  it("reports its backlog and the age of the oldest event", async () => {
    await setup();
    await insert([accrued("b", 0), accrued("b", 1)]);
    await pool.query("UPDATE outbox_events SET created_at = now() - interval '90 seconds'");
    const relay = new OutboxRelay({ pool, nats: nc, logger });
    const backlog = await relay.backlog();
    expect(backlog.unpublished).toBe(2);
    expect(backlog.oldestAgeSeconds).toBeGreaterThanOrEqual(90);
  });
});
