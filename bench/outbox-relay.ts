// `npm run bench:relay`: how fast @cashback/outbox's relay drains a backlog into JetStream.
// Writes BENCH_RELAY_EVENTS (50,000) cashback.accrued rows into a fresh database's outbox, then
// times relays publishing them to a throwaway nats-server (file storage, msgID de-duplication on),
// for 1 and 2 relays. The baseline in the same run: the same messages published by a bare loop
// with no database at all (publish + await acks in batches), the ceiling of this NATS on this
// machine. Prints a table and a BENCH_RELAY {...} line. Everything on 127.0.0.1.
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { newEvent, STREAMS, subjectOf } from "@cashback/events";
import { createTestDatabase } from "@cashback/db/testing";
import { createLogger } from "@cashback/runtime";
import { startNatsServer } from "@cashback/testing";
import { connectNats, ensureStreams, insertOutboxSql, OutboxRelay, outboxRecord } from "@cashback/outbox";
import { formatTable, thousands } from "./support/table.ts";

const total = Number(process.env.BENCH_RELAY_EVENTS ?? 50_000);
const logger = createLogger("bench-relay", "warn");
const ddl = await readFile(new URL("../packages/outbox/sql/outbox_events.sql", import.meta.url), "utf8");

const nats = await startNatsServer();
const nc = await connectNats({ url: nats.url, name: "bench-relay", logger });
const jsm = await jetstreamManager(nc);

function records(n: number) {
  return Array.from({ length: n }, (_, i) =>
    outboxRecord(
      newEvent(
        "cashback.accrued",
        { entry_id: randomUUID(), purchase_id: randomUUID(), merchant_id: randomUUID(), user_id: randomUUID(), wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", amount_wei: String(10n ** 15n + BigInt(i)) },
        { correlationId: randomUUID() },
      ),
      { aggregateId: randomUUID(), headers: { traceparent: `00-${randomUUID().replaceAll("-", "")}-${"b".repeat(16)}-01` } },
    ),
  );
}

async function freshStream() {
  await jsm.streams.delete(STREAMS.cashback.name).catch(() => {});
  await ensureStreams(nc, [STREAMS.cashback]);
}

async function streamCount() {
  return (await jsm.streams.info(STREAMS.cashback.name)).state.messages;
}

const rows: Record<string, string>[] = [];
const results: Record<string, number> = {};

// Ceiling: JetStream alone, acks awaited in batches of 500 (what one relay pass does).
{
  await freshStream();
  const js = jetstream(nc);
  const batch = records(total);
  const started = performance.now();
  for (let i = 0; i < batch.length; i += 500) {
    await Promise.all(batch.slice(i, i + 500).map((r) => js.publish(subjectOf(r.payload.type), Buffer.from(JSON.stringify(r.payload)), { msgID: r.id })));
  }
  const seconds = (performance.now() - started) / 1000;
  results["jetstream-only"] = total / seconds;
  rows.push({ scenario: "JetStream publish only (ceiling)", events: thousands(await streamCount()), seconds: seconds.toFixed(2), "events/s": thousands(Math.round(total / seconds)), "of ceiling": "100%" });
}

for (const relaysCount of [1, 2]) {
  await freshStream();
  const db = await createTestDatabase("bench_relay");
  const pool = new pg.Pool({ connectionString: db.url, max: 10 });
  await pool.query(ddl);
  const batch = records(total);
  for (let i = 0; i < batch.length; i += 1000) {
    const { text, values } = insertOutboxSql(batch.slice(i, i + 1000));
    await pool.query(text, values);
  }
  await pool.query("ANALYZE outbox_events");
  const relays = Array.from({ length: relaysCount }, () => new OutboxRelay({ pool, nats: nc, logger }));
  const started = performance.now();
  relays.forEach((r) => r.start());
  for (;;) {
    const { rows: left } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox_events WHERE published_at IS NULL");
    if (left[0]!.n === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(relays.map((r) => r.stop()));
  const published = await streamCount();
  const name = `relay x${relaysCount}`;
  results[name] = total / seconds;
  rows.push({
    scenario: `${relaysCount} relay${relaysCount > 1 ? "s" : ""} draining a ${thousands(total)} backlog`,
    events: thousands(published) + (published === total ? "" : " MISMATCH"),
    seconds: seconds.toFixed(2),
    "events/s": thousands(Math.round(total / seconds)),
    "of ceiling": `${Math.round(((total / seconds) / results["jetstream-only"]!) * 100)}%`,
  });
  await pool.end();
  await db.drop();
  if (published !== total) process.exitCode = 1;
}

console.log(`\noutbox relay: ${thousands(total)} cashback.accrued events, Postgres 127.0.0.1:5432 -> throwaway nats-server (file storage)\n`);
const header = ["scenario", "events", "seconds", "events/s", "of ceiling"];
console.log(formatTable(header, rows.map((r) => header.map((h) => r[h]!)), new Set([1, 2, 3, 4])));
console.log(`\nBENCH_RELAY ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(v)])))}`);
await nc.close();
await nats.close();
