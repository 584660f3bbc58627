/**
 * `npm run bench:consumer`: events/s from the CASHBACK stream to confirmed mints through the mint
 * consumer, the real blockchain adapter (a separate process) and an in-process Hardhat chain
 * (automine), with batching on and, in the same run, one mint per event for comparison.
 *
 * Each scenario: fresh streams on a throwaway nats-server, a fresh adapter process and database,
 * a backlog of BENCH_EVENTS (1,000) cashback.accrued events published before the consumer starts
 * (50 fresh wallets, all amounts distinct) and one untimed warm-up mint through the adapter, then
 * the consumer (in this process, fresh database)
 * is timed from the moment it is up until every event's `cashback.minted` result is on
 * CASHBACK_RESULTS (and, in a separate column, until every request is CONFIRMED in its database).
 *
 *   batched              CONSUMER_MINT_BATCH_MAX=200: whatever is due goes in one MintBatch
 *   per-event            CONSUMER_MINT_BATCH_MAX=1: one MintToken call per event (the adapter
 *                        still packs concurrent calls into one transaction)
 *   per-event-unbatched  as per-event, with the adapter's MINT_BATCH_MAX=1: one transaction per mint
 *
 * Env: BENCH_EVENTS (1000), BENCH_CONCURRENCY (4: CONSUMER_CONCURRENCY, adapter calls in flight),
 * BENCH_TIME_LIMIT_S (120 per scenario), BENCH_SCENARIOS (comma list, default all).
 *
 * After each scenario the chain is checked, read straight from the node: one CashbackMinted per
 * event with its amount and recipient, each wallet's balance the sum of its events, totalSupply
 * grown by the total. Any mismatch marks the row FAILED and the process exits 1. Prints a table
 * and, last, one `BENCH_CONSUMER {json}` line.
 */
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import type { Address, Hex } from "viem";
import { createTestDatabase } from "@cashback/db/testing";
import { BlockchainService, TransactionStatus } from "@cashback/proto/blockchain/v1";
import { mintKey, STREAMS } from "@cashback/events";
import { ensureStreams } from "@cashback/outbox";
import { createLogger } from "@cashback/runtime";
import { cashbackTokenAbi } from "@cashback/token";
import { accruedEvent, chainIdOf, freshWallet, mintedEvents, publishEvent, startAdapterProcess, startNatsServer, startTestChain, type TestChain } from "@cashback/testing";
import { startConsumer } from "../services/mint-consumer/src/app.ts";
import { loadConfig } from "../services/mint-consumer/src/config.ts";
import { formatTable, thousands } from "./support/table.ts";

function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got "${raw}"`);
  return n;
}

const EVENTS = envInt("BENCH_EVENTS", 1_000, 1, 100_000);
const CONCURRENCY = envInt("BENCH_CONCURRENCY", 4, 1, 64);
const TIME_LIMIT_MS = envInt("BENCH_TIME_LIMIT_S", 120, 5, 3_600) * 1_000;
const WALLETS = Math.min(EVENTS, 50);

interface Scenario {
  name: string;
  consumerEnv: Record<string, string>;
  adapterEnv: Record<string, string>;
}
const ALL: Scenario[] = [
  { name: "batched", consumerEnv: { CONSUMER_MINT_BATCH_MAX: "200" }, adapterEnv: {} },
  { name: "per-event", consumerEnv: { CONSUMER_MINT_BATCH_MAX: "1" }, adapterEnv: {} },
  { name: "per-event-unbatched", consumerEnv: { CONSUMER_MINT_BATCH_MAX: "1" }, adapterEnv: { MINT_BATCH_MAX: "1" } },
];

interface Result {
  scenario: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  /** From start until every request was CONFIRMED in the consumer's database (before results were published). */
  confirmedSeconds: number;
  adapterCalls: number;
  mintsPerCall: number;
  transactions: number;
  mintsPerTransaction: number;
  p50LatencyS: number;
  p99LatencyS: number;
  verified: boolean;
  problems: string[];
}

async function runScenario(chain: TestChain, scenario: Scenario): Promise<Result> {
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  const adapterDb = await createTestDatabase("bench_consumer_adapter");
  const consumerDb = await createTestDatabase("bench_consumer");
  const adapter = await startAdapterProcess({ chain, databaseUrl: adapterDb.url, env: { LOG_LEVEL: "warn", ...scenario.adapterEnv } });
  const problems: string[] = [];
  try {
    const wallets = Array.from({ length: WALLETS }, freshWallet);
    const events = Array.from({ length: EVENTS }, (_, i) => accruedEvent({ wallet: wallets[i % WALLETS]!, amount_wei: String(10n ** 15n + BigInt(i)) }));
    await ensureStreams(nc, [STREAMS.cashback, STREAMS.results, STREAMS.deadLetters]);
    for (let i = 0; i < events.length; i += 500) await Promise.all(events.slice(i, i + 500).map((e) => publishEvent(nc, e)));
    // Untimed warm-up of the adapter (connections, JIT, its first round's on-chain id check).
    const warm = await createClient(BlockchainService, createGrpcTransport({ baseUrl: adapter.url, interceptors: [bearer(adapter.token)] })).mintToken({ idempotencyKey: `bench-warm-up-${scenario.name}-${Date.now()}`, to: freshWallet(), amountWei: "1" });
    if (warm.status !== TransactionStatus.CONFIRMED) throw new Error(`${scenario.name}: warm-up mint ended ${TransactionStatus[warm.status]}`);
    const supplyBefore = await totalSupply(chain);
    const transactionsBefore = await countTransactions(adapterDb.url);

    const config = loadConfig({
      CONSUMER_PORT: "0",
      CONSUMER_DATABASE_URL: consumerDb.url,
      NATS_URL: nats.url,
      ADAPTER_URL: adapter.url,
      ADAPTER_AUTH_TOKEN: adapter.token,
      CONSUMER_CONCURRENCY: String(CONCURRENCY),
      CONSUMER_FETCH_BATCH: "500",
      CONSUMER_MAX_ACK_PENDING: String(Math.max(1_000, EVENTS)),
      ...scenario.consumerEnv,
    });
    // Timed from the moment it is up (database migrated, NATS connected): its intake starts last.
    const consumer = await startConsumer(config, createLogger("mint-consumer", "warn"));
    const started = performance.now();
    const jsm = await jetstreamManager(nc);
    let confirmedAt = Number.NaN;
    let timedOut = false;
    let snapshot;
    try {
      for (;;) {
        const published = (await jsm.streams.info(STREAMS.results.name)).state.messages;
        if (Number.isNaN(confirmedAt) && (await consumer.db.mintRequest.count({ where: { status: "CONFIRMED" } })) === EVENTS) confirmedAt = performance.now();
        if (published >= EVENTS) break;
        if (performance.now() - started > TIME_LIMIT_MS) {
          timedOut = true;
          problems.push(`time limit: ${published} of ${EVENTS} results after ${TIME_LIMIT_MS / 1000}s`);
          break;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      snapshot = {
        seconds: (performance.now() - started) / 1000,
        calls: await consumer.metrics.adapterCalls.get(),
        latency: await consumer.metrics.mintLatency.get(),
        statuses: await consumer.db.mintRequest.groupBy({ by: ["status"], _count: { _all: true } }),
      };
    } finally {
      await consumer.stop();
    }
    const { seconds, calls, latency, statuses } = snapshot;
    if (Number.isNaN(confirmedAt)) confirmedAt = performance.now();

    // Verify on chain, reading the node directly.
    const byId = new Map(events.map((e) => [chainIdOf(mintKey(e.payload.entry_id)), e]));
    const logs = (await mintedEvents(chain)).filter((l) => byId.has(l.mintId));
    const seen = new Map<Hex, number>();
    for (const l of logs) {
      seen.set(l.mintId, (seen.get(l.mintId) ?? 0) + 1);
      const e = byId.get(l.mintId)!;
      if (l.to !== e.payload.wallet || l.amount !== BigInt(e.payload.amount_wei)) problems.push(`mint ${l.mintId}: ${l.amount} to ${l.to}, expected ${e.payload.amount_wei} to ${e.payload.wallet}`);
    }
    const twice = [...seen.values()].filter((n) => n > 1).length;
    if (twice) problems.push(`${twice} events minted more than once`);
    if (seen.size !== EVENTS && !timedOut) problems.push(`${EVENTS - seen.size} of ${EVENTS} events not minted`);
    const expected = new Map<Address, bigint>(wallets.map((w) => [w, 0n]));
    let total = 0n;
    for (const e of events) {
      if (!seen.has(chainIdOf(mintKey(e.payload.entry_id)))) continue;
      expected.set(e.payload.wallet as Address, expected.get(e.payload.wallet as Address)! + BigInt(e.payload.amount_wei));
      total += BigInt(e.payload.amount_wei);
    }
    for (const w of wallets) {
      const balance = await chain.balanceOf(w);
      if (balance !== expected.get(w)) problems.push(`balance of ${w} is ${balance}, expected ${expected.get(w)}`);
    }
    const grown = (await totalSupply(chain)) - supplyBefore;
    if (grown !== total) problems.push(`totalSupply grew by ${grown}, expected ${total}`);
    const notConfirmed = statuses.filter((s) => s.status !== "CONFIRMED").reduce((n, s) => n + s._count._all, 0);
    if (notConfirmed && !timedOut) problems.push(`${notConfirmed} requests not CONFIRMED`);

    const adapterCalls = calls.values.filter((v) => v.labels.rpc === "MintBatch" || v.labels.rpc === "MintToken").reduce((n, v) => n + v.value, 0);
    const transactions = (await countTransactions(adapterDb.url)) - transactionsBefore;
    return {
      scenario: scenario.name,
      events: seen.size,
      seconds,
      eventsPerSecond: seen.size / seconds,
      confirmedSeconds: (confirmedAt - started) / 1000,
      adapterCalls,
      mintsPerCall: adapterCalls ? seen.size / adapterCalls : 0,
      transactions,
      mintsPerTransaction: transactions ? seen.size / transactions : 0,
      p50LatencyS: histogramQuantile(latency, 0.5),
      p99LatencyS: histogramQuantile(latency, 0.99),
      verified: problems.length === 0,
      problems,
    };
  } finally {
    await adapter.stop();
    await nc.close();
    await nats.close();
    await adapterDb.drop();
    await consumerDb.drop();
  }
}

const bearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

function totalSupply(chain: TestChain): Promise<bigint> {
  return chain.reader.readContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "totalSupply" });
}

/** Transactions the adapter signed (its own table, read after the run). */
async function countTransactions(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM blockchain_transactions");
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

/** A quantile's upper bucket bound from a prom-client histogram (an upper estimate). */
function histogramQuantile(h: { values: { metricName?: string; labels: Record<string, unknown>; value: number }[] }, q: number): number {
  const buckets = h.values.filter((v) => v.metricName?.endsWith("_bucket")).map((v) => ({ le: Number(v.labels.le), n: v.value })).sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.n ?? 0;
  return buckets.find((b) => b.n >= q * total)?.le ?? Number.NaN;
}

async function main() {
  const wanted = process.env.BENCH_SCENARIOS?.split(",").map((s) => s.trim()).filter(Boolean);
  const scenarios = wanted ? ALL.filter((s) => wanted.includes(s.name)) : ALL;
  if (scenarios.length === 0) throw new Error(`BENCH_SCENARIOS matched none of ${ALL.map((s) => s.name).join(", ")}`);
  const watchdog = setTimeout(() => {
    console.error("bench:consumer watchdog: giving up");
    process.exit(2);
  }, scenarios.length * (TIME_LIMIT_MS + 90_000) + 60_000);
  watchdog.unref();

  const chain = await startTestChain();
  const results: Result[] = [];
  try {
    for (const s of scenarios) {
      process.stderr.write(`bench:consumer ${s.name}...\n`);
      results.push(await runScenario(chain, s));
    }
  } finally {
    await chain.close();
  }

  console.log(`\nMint consumer throughput: ${thousands(EVENTS)} cashback.accrued events per scenario (a backlog on the stream), CONSUMER_CONCURRENCY=${CONCURRENCY}\n`);
  const header = ["scenario", "events", "seconds", "events/s", "all confirmed s", "adapter calls", "mints/call", "txs", "mints/tx", "latency p50 s", "latency p99 s", "verified"];
  const rows = results.map((r) => [
    r.scenario,
    thousands(r.events),
    r.seconds.toFixed(2),
    r.eventsPerSecond.toFixed(1),
    r.confirmedSeconds.toFixed(2),
    thousands(r.adapterCalls),
    r.mintsPerCall.toFixed(1),
    thousands(r.transactions),
    r.mintsPerTransaction.toFixed(1),
    `<= ${r.p50LatencyS}`,
    `<= ${r.p99LatencyS}`,
    r.verified ? "ok" : "FAILED",
  ]);
  console.log(formatTable(header, rows, new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])));
  for (const r of results) for (const p of r.problems.slice(0, 10)) console.log(`  ${r.scenario}: ${p}`);
  const batched = results.find((r) => r.scenario === "batched");
  const perEvent = results.find((r) => r.scenario === "per-event");
  if (batched && perEvent) console.log(`\nbatched / per-event: ${(batched.eventsPerSecond / perEvent.eventsPerSecond).toFixed(1)}x`);
  console.log(
    `\nBENCH_CONSUMER ${JSON.stringify({
      bench: "consumer-throughput",
      date: new Date().toISOString(),
      events: EVENTS,
      concurrency: CONCURRENCY,
      results: results.map((r) => ({ scenario: r.scenario, events: r.events, seconds: +r.seconds.toFixed(3), eventsPerSecond: +r.eventsPerSecond.toFixed(1), adapterCalls: r.adapterCalls, transactions: r.transactions, verified: r.verified })),
    })}`,
  );
  if (results.some((r) => !r.verified)) process.exitCode = 1;
}

await main();
