// `npm run bench:api`: the cashback API's purchase write path and its outbox relay, measured
// against the real service (a separate process, as in production) and the local Postgres.
//
//  1. ceiling: bare fastify + ONE INSERT per request (bench/support/bare-insert-server.ts), same
//     load, same Postgres: what this machine gives any write endpoint. Measured before and after
//     the API's rows; the API's "of ceiling" is against their mean.
//  2. POST /v1/purchases, unique Idempotency-Key per request, rules without per-user caps
//     (the one-statement path, no guard).
//  3. the same with a rule that has daily and monthly per-user caps (the guarded path: usage
//     read from the writer's cache, cap_version checked in the statement).
//  4. the relay inside the API draining a backlog of BENCH_RELAY_EVENTS (50,000) events that
//     were written while the API was stopped.
//
// Load: autocannon (in this process) with BENCH_CONNECTIONS (32) connections for BENCH_SECONDS
// (10) per scenario after a 3 s warm-up; users round-robin over BENCH_USERS (1,000). Everything
// is on 127.0.0.1: a fresh database on the local Postgres, a throwaway nats-server. Prints a table
// and, last, a `BENCH_API {...}` line. Exits 1 if a check fails (rows written != 2xx answers,
// events lost or duplicated).
import { randomUUID } from "node:crypto";
import autocannon from "autocannon";
import pg from "pg";
import { jetstreamManager } from "@nats-io/jetstream";
import { newEvent, STREAMS } from "@cashback/events";
import { createTestDatabase } from "@cashback/db/testing";
import { connectNats, insertOutboxSql, outboxRecord } from "@cashback/outbox";
import { createLogger } from "@cashback/runtime";
import { freePort, httpOk, serviceProcess, startNatsServer } from "@cashback/testing";
import { formatTable, thousands } from "./support/table.ts";

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const CONNECTIONS = env("BENCH_CONNECTIONS", 32);
const SECONDS = env("BENCH_SECONDS", 10);
const USERS = env("BENCH_USERS", 1_000);
const RELAY_EVENTS = env("BENCH_RELAY_EVENTS", 50_000);
/** Comma list of ceiling, uncapped, capped, relay (default: all). */
const only = process.env.BENCH_SCENARIOS?.split(",");
const ADMIN_KEY = "bench-admin-key-0123456789";
const WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const logger = createLogger("bench-api", "warn");

const loadStart = (await import("node:os")).loadavg()[0]!.toFixed(2);
const db = await createTestDatabase("bench_api");
const nats = await startNatsServer();
const failures: string[] = [];
const PURCHASE_HEADER = ["scenario", "2xx", "non-2xx", "req/s", "of ceiling", "p50 ms", "p99 ms", "avg batch", "check"];
const rows: string[][] = [];
const figures: Record<string, number> = {};

// Whatever happens, no process, nats-server or database is left behind.
const children: { stop: () => Promise<void> }[] = [];
let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const child of children.reverse()) await child.stop().catch(() => {});
  await nats.close().catch(() => {});
  await db.drop().catch(() => {});
}
process.on("uncaughtException", (err) => {
  console.error(err);
  void cleanup().finally(() => process.exit(1));
});

async function load(name: string, url: string, path: string, body: (i: number) => unknown, headers: Record<string, string>, seconds: number) {
  let i = 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: "POST",
        path,
        setupRequest: (req) => {
          const n = i++;
          return { ...req, headers: { ...req.headers, ...headers, "content-type": "application/json", "idempotency-key": randomUUID() }, body: JSON.stringify(body(n)) };
        },
      },
    ],
  });
  return { name, result };
}

function report(label: string, r: autocannon.Result, written?: number, batch?: number) {
  const ok = r["2xx"];
  const rps = ok / r.duration;
  // requests still in flight when autocannon's clock stopped are written but not counted
  const consistent = written === undefined || (written >= ok && written <= ok + CONNECTIONS);
  rows.push([
    label,
    thousands(ok),
    thousands(r.non2xx),
    thousands(Math.round(rps)),
    "-", // of ceiling: filled in once both ceilings are measured
    r.latency.p50.toFixed(1),
    r.latency.p99.toFixed(1),
    batch === undefined ? "-" : batch.toFixed(1),
    written === undefined ? "-" : consistent ? "ok" : `MISMATCH ${written}`,
  ]);
  if (r.non2xx > 0 || r.errors > 0) failures.push(`${label}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
  if (!consistent) failures.push(`${label}: ${written} rows written for ${ok} answers (+ at most ${CONNECTIONS} in flight)`);
  return rps;
}

// 1. ceiling (measured before and after the API's rows: the machine is shared, and the ratio
//    should compare like with like) ----------------------------------------------------------
async function measureCeiling(label: string): Promise<number> {
  const port = await freePort();
  const bare = serviceProcess({ name: "bare", entry: "bench/support/bare-insert-server.ts", env: { PORT: String(port), DATABASE_URL: db.url }, ready: () => httpOk(`http://127.0.0.1:${port}/readyz`) });
  children.push(bare);
  await bare.start();
  const url = `http://127.0.0.1:${port}`;
  const user = randomUUID();
  const body = () => ({ user_id: user, category: "groceries", amount_minor: 12_999, currency: "USD", occurred_at: new Date().toISOString() });
  await load("warm-up", url, "/purchases", body, {}, 3);
  const { result } = await load("ceiling", url, "/purchases", body, {}, SECONDS);
  await bare.stop();
  const rps = report(label, result);
  rows[rows.length - 1]![4] = "-";
  return rps;
}
const ceilings: number[] = [];
if (!only || only.includes("ceiling")) {
  ceilings.push(await measureCeiling("bare fastify + 1 INSERT (ceiling, before)"));
  figures["ceiling_rps"] = Math.round(ceilings[0]!);
}

// The API ------------------------------------------------------------------------------------
const apiPort = await freePort();
const apiUrl = `http://127.0.0.1:${apiPort}`;
const api = serviceProcess({
  name: "api",
  entry: "services/cashback-service-api/src/main.ts",
  env: {
    API_PORT: String(apiPort),
    API_DATABASE_URL: db.url,
    API_ADMIN_KEY: ADMIN_KEY,
    NATS_URL: nats.url,
    API_RATE_LIMIT_MAX: "100000000",
    LOG_LEVEL: "warn",
    // e.g. BENCH_API_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/api-prof" to profile the API
    ...(process.env.BENCH_API_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_API_NODE_OPTIONS } : {}),
    ...(process.env.BENCH_API_RELAY === "off" ? { API_RELAY_ENABLED: "false" } : {}),
    // e.g. BENCH_API_ENV="API_WRITE_STATEMENTS=2,API_WRITE_BATCH_MAX=32" to try the API's knobs
    ...Object.fromEntries((process.env.BENCH_API_ENV ?? "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string])),
  },
  ready: () => httpOk(`${apiUrl}/readyz`),
  onLine: (line) => {
    if (/"level":(50|60)/.test(line)) console.error(`[api] ${line}`);
  },
});
children.push(api);
async function startApi() {
  await api.start().catch((err: unknown) => {
    console.error(api.output());
    throw err;
  });
}
await startApi();

async function rest(method: string, path: string, key: string, body?: unknown) {
  const res = await fetch(`${apiUrl}${path}`, { method, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) }).catch((err: unknown) => {
    console.error(`${api.running ? "api running" : "api not running"}:\n${api.output()}`);
    throw err;
  });
  const json = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}\n${api.output()}`);
  return json;
}

async function merchantWithUsers(name: string) {
  const m = await rest("POST", "/v1/merchants", ADMIN_KEY, { name });
  const { key } = await rest("POST", `/v1/merchants/${m.id}/api-keys`, ADMIN_KEY, {});
  const users: string[] = [];
  for (let i = 0; i < USERS; i += 50) {
    users.push(...(await Promise.all(Array.from({ length: Math.min(50, USERS - i) }, (_, j) => rest("POST", "/v1/users", key, { external_id: `u${i + j}`, email: `u${i + j}@example.com`, wallet_address: WALLET }).then((u) => u.id as string)))));
  }
  return { id: m.id as string, key: key as string, users };
}

const pool = new pg.Pool({ connectionString: db.url, max: 2 });
const count = async (sql: string, values: unknown[] = []) => (await pool.query<{ n: number }>(sql, values)).rows[0]!.n;

await rest("POST", "/v1/rules", ADMIN_KEY, { name: "platform 1%", kind: "percentage", basis_points: 100 });
const scenarios = [
  {
    label: "POST /v1/purchases, uncapped rules",
    key: "uncapped",
    setup: async (m: { key: string }) => rest("POST", "/v1/rules", m.key, { name: "groceries 2.5%", kind: "percentage", basis_points: 250, categories: ["groceries"], priority: 10 }),
  },
  {
    label: "POST /v1/purchases, capped rule (guarded)",
    key: "capped",
    // caps high enough never to bind: the guard's cost is what this measures
    setup: async (m: { key: string }) =>
      rest("POST", "/v1/rules", m.key, { name: "5% capped", kind: "percentage", basis_points: 500, priority: 10, user_daily_cap_wei: "1000000000000000000000000", user_monthly_cap_wei: "10000000000000000000000000" }),
  },
];

for (const s of scenarios.filter((x) => !only || only.includes(x.key))) {
  const m = await merchantWithUsers(`bench ${s.key}`);
  await s.setup(m);
  const body = (i: number) => ({ user_id: m.users[i % m.users.length], category: "groceries", amount_minor: 12_999, currency: "USD", occurred_at: new Date().toISOString() });
  await load("warm-up", apiUrl, "/v1/purchases", body, { authorization: `Bearer ${m.key}` }, 3);
  await new Promise((r) => setTimeout(r, 1_000)); // the warm-up's last requests land before we count
  const before = await count("SELECT count(*)::int AS n FROM purchases WHERE merchant_id = $1", [m.id]);
  const { result } = await load(s.key, apiUrl, "/v1/purchases", body, { authorization: `Bearer ${m.key}` }, SECONDS);
  const written = (await count("SELECT count(*)::int AS n FROM purchases WHERE merchant_id = $1", [m.id])) - before;
  const metrics = await (await fetch(`${apiUrl}/metrics`)).text();
  const batchSum = Number(/^api_purchase_batch_size_sum (\S+)$/m.exec(metrics)?.[1] ?? 0);
  const batchCount = Number(/^api_purchase_batch_size_count (\S+)$/m.exec(metrics)?.[1] ?? 0);
  const batch = batchSum / Math.max(1, batchCount); // since the API started, warm-up included
  figures[`${s.key}_avg_batch`] = Math.round(batch * 10) / 10;
  figures[`${s.key}_rps`] = Math.round(report(s.label, result, written, batch));
  figures[`${s.key}_p50_ms`] = result.latency.p50;
  figures[`${s.key}_p99_ms`] = result.latency.p99;
}

// 4. relay: a backlog written while the API is down, drained by the API's relay ----------------
await api.stop();
if (ceilings.length) {
  ceilings.push(await measureCeiling("bare fastify + 1 INSERT (ceiling, after)"));
  const mean = (ceilings[0]! + ceilings[1]!) / 2;
  figures["ceiling_rps"] = Math.round(mean);
  figures["ceiling_after_rps"] = Math.round(ceilings[1]!);
  // the API's rows as a share of the mean of the two ceilings
  for (const r of rows) if (r[0]!.startsWith("POST")) r[4] = `${Math.round((Number(r[3]!.replace(/,/g, "")) / mean) * 100)}%`;
}
if (only && !only.includes("relay")) {
  console.log(formatTable(PURCHASE_HEADER, rows, new Set([1, 2, 3, 4, 5, 6, 7])));
  for (const f of failures) console.log(`FAILED: ${f}`);
  console.log(`\nBENCH_API ${JSON.stringify(figures)}`);
  await pool.end();
  await cleanup();
  process.exit(failures.length ? 1 : 0);
}
const nc = await connectNats({ url: nats.url, name: "bench-api", logger });
const jsm = await jetstreamManager(nc);
const streamBefore = (await jsm.streams.info(STREAMS.cashback.name)).state.messages;
const unpublishedBefore = await count("SELECT count(*)::int AS n FROM outbox_events WHERE published_at IS NULL");
for (let i = 0; i < RELAY_EVENTS; i += 1000) {
  const batch = Array.from({ length: Math.min(1000, RELAY_EVENTS - i) }, (_, j) =>
    outboxRecord(
      newEvent("cashback.accrued", { entry_id: randomUUID(), purchase_id: randomUUID(), merchant_id: randomUUID(), user_id: randomUUID(), wallet: WALLET, amount_wei: String(10n ** 15n + BigInt(i + j)) }, { correlationId: randomUUID() }),
      { aggregateId: randomUUID() },
    ),
  );
  const { text, values } = insertOutboxSql(batch);
  await pool.query(text, values);
}
await pool.query("ANALYZE outbox_events");
const backlog = unpublishedBefore + RELAY_EVENTS;
await startApi();
let firstDrop = 0;
const deadline = Date.now() + 300_000;
for (;;) {
  const left = await count("SELECT count(*)::int AS n FROM outbox_events WHERE published_at IS NULL");
  if (!firstDrop && left < backlog) firstDrop = performance.now();
  if (left === 0) break;
  if (Date.now() > deadline) {
    failures.push(`relay: ${left} events still unpublished after 300 s`);
    break;
  }
  await new Promise((r) => setTimeout(r, 20));
}
const relaySeconds = (performance.now() - firstDrop) / 1000;
const published = (await jsm.streams.info(STREAMS.cashback.name)).state.messages - streamBefore;
const relayRate = backlog / relaySeconds;
figures["relay_events_per_s"] = Math.round(relayRate);
const relayRow = [`relay in the API draining a ${thousands(backlog)} backlog`, thousands(published), relaySeconds.toFixed(2), thousands(Math.round(relayRate)), published === backlog ? "ok" : "MISMATCH"];
if (published !== backlog) failures.push(`relay: ${published} messages in the stream for ${backlog} events`);

await nc.close();
await pool.end();
await cleanup();

const load1 = (await import("node:os")).loadavg()[0]!.toFixed(2);
console.log(`\ncashback API: autocannon -c ${CONNECTIONS} for ${SECONDS} s per row (after a 3 s warm-up), ${USERS} users per merchant, Postgres 127.0.0.1:5432, ${(await import("node:os")).cpus().length} cores, load average ${loadStart} at the start, ${load1} at the end\n`);
console.log(formatTable(PURCHASE_HEADER, rows, new Set([1, 2, 3, 4, 5, 6, 7])));
console.log("");
console.log(formatTable(["scenario", "events published", "seconds", "events/s", "check"], [relayRow], new Set([1, 2, 3])));
for (const f of failures) console.log(`FAILED: ${f}`);
console.log(`\nBENCH_API ${JSON.stringify(figures)}`);
process.exit(failures.length ? 1 : 0);
