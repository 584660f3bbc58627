/**
 * Mint throughput through the real blockchain adapter, over gRPC, against an in-process Hardhat
 * chain (automine: every transaction is mined as it arrives) and a fresh Postgres database per
 * scenario. Reuses the adapter's test harness.
 *
 *   npm run bench:mint
 *
 * Scenarios (each gets its own adapter and database, and fresh recipients):
 *   single-unbatched  MintToken calls, MINT_BATCH_MAX=1 (one transaction per mint)
 *   single-batched    MintToken calls, default batching (the dispatcher packs queued mints)
 *   mint-batch-100    MintBatch calls of 100 entries each
 *
 * Env: BENCH_MINTS (500) mints per scenario, BENCH_CONCURRENCY (50) callers in flight,
 * BENCH_TIME_LIMIT_S (60) per scenario, BENCH_SCENARIOS (comma list, default all),
 * BENCH_RPC_STATS=1 to count the adapter's JSON-RPC calls by method (adds a proxy hop).
 *
 * After each scenario the recipients' on-chain balances and the token's totalSupply are checked
 * against what the adapter reports as minted; any mismatch makes the process exit non-zero.
 * Prints a table and, last, one line `BENCH_MINT {json}` for CI logs.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createPublicClient, http, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { cashbackTokenAbi } from "@cashback/token";
import { startTestChain, type TestChain } from "@cashback/testing";
import { startTestAdapter } from "../services/blockchain-adapter/test/support/adapter.ts";
import { startRpcStatsProxy, type MethodStats } from "./support/rpc-stats.ts";
import { formatTable, thousands } from "./support/table.ts";

function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got "${raw}"`);
  return n;
}

const MINTS = envInt("BENCH_MINTS", 500, 1, 100_000);
const CONCURRENCY = envInt("BENCH_CONCURRENCY", 50, 1, 1_000);
const TIME_LIMIT_MS = envInt("BENCH_TIME_LIMIT_S", 60, 1, 3_600) * 1_000;
const BATCH_ENTRIES = 100;
const RECIPIENTS = Math.min(MINTS, 50);
const DRAIN_LIMIT_MS = 30_000;
const RPC_STATS = process.env.BENCH_RPC_STATS === "1";

interface Scenario {
  name: string;
  description: string;
  env: Record<string, string>;
  /** Mints per gRPC call: 1 uses MintToken, more uses MintBatch. */
  perCall: number;
}

const ALL_SCENARIOS: Scenario[] = [
  { name: "single-unbatched", description: "MintToken, MINT_BATCH_MAX=1", env: { MINT_BATCH_MAX: "1" }, perCall: 1 },
  { name: "single-batched", description: "MintToken, default batching", env: {}, perCall: 1 },
  { name: "mint-batch-100", description: `MintBatch of ${BATCH_ENTRIES}`, env: {}, perCall: BATCH_ENTRIES },
];

interface Result {
  scenario: string;
  description: string;
  calls: number;
  concurrency: number;
  /** Mints the adapter answered CONFIRMED within the time limit. */
  mints: number;
  seconds: number;
  mintsPerSecond: number;
  /** Rows added to blockchain_transactions (transactions signed and sent). */
  transactions: number;
  mintsPerTransaction: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  timedOut: boolean;
  /** Process CPU (user + system) over wall time: bench client, adapter and node share it. */
  cpuPercent: number;
  verified: boolean;
  problems: string[];
  rpc?: Record<string, MethodStats>;
}

const freshAddress = (): Address => privateKeyToAccount(generatePrivateKey()).address;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function assertLoopbackDatabase() {
  const url = process.env.TEST_DATABASE_URL;
  if (url && new URL(url).hostname !== "127.0.0.1") throw new Error(`TEST_DATABASE_URL must point at 127.0.0.1, got ${new URL(url).hostname}`);
}

async function runScenario(chain: TestChain, scenario: Scenario, runId: string, rpcUrl: string | undefined, rpcStats: Awaited<ReturnType<typeof startRpcStatsProxy>> | undefined): Promise<Result> {
  const node = createPublicClient({ transport: http(chain.nodeUrl) });
  const totalSupply = () => node.readContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "totalSupply" });
  const balanceOf = (a: Address) => node.readContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [a] });

  const running = await startTestAdapter(chain, { ...scenario.env, ...(rpcUrl ? { CHAIN_RPC_URL: rpcUrl } : {}) });
  const { client, adapter } = running;
  try {
    // Untimed warm-up: connections, JIT, and the dispatcher's first-round on-chain id check.
    const warm = await client.mintToken({ idempotencyKey: `bench-${runId}-${scenario.name}-warmup`, to: freshAddress(), amountWei: "1" });
    if (warm.status !== TransactionStatus.CONFIRMED) throw new Error(`${scenario.name}: warm-up mint ended ${TransactionStatus[warm.status]}`);

    const recipients = Array.from({ length: RECIPIENTS }, freshAddress);
    const plan = Array.from({ length: MINTS }, (_, i) => ({
      idempotencyKey: `bench-${runId}-${scenario.name}-${i}`,
      to: recipients[i % RECIPIENTS]!,
      amountWei: String(i + 1), // distinct amounts: a lost or doubled mint changes the sums
    }));
    const calls: (typeof plan)[] = [];
    for (let i = 0; i < plan.length; i += scenario.perCall) calls.push(plan.slice(i, i + scenario.perCall));
    const concurrency = Math.min(CONCURRENCY, calls.length);

    const supplyBefore = await totalSupply();
    const txsBefore = await adapter.db.blockchainTransaction.count();
    rpcStats?.take();

    const abort = new AbortController();
    let timedOut = false;
    const limit = setTimeout(() => {
      timedOut = true;
      abort.abort(new Error(`time limit of ${TIME_LIMIT_MS / 1000}s reached`));
    }, TIME_LIMIT_MS);

    const latencies: number[] = [];
    const confirmedByResponse = new Set<string>();
    const problems: string[] = [];
    let errors = 0;
    let next = 0;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();

    async function worker() {
      while (!abort.signal.aborted && next < calls.length) {
        const batch = calls[next++]!;
        const t0 = performance.now();
        try {
          const results =
            batch.length === 1 && scenario.perCall === 1
              ? [await client.mintToken(batch[0]!, { signal: abort.signal })]
              : (await client.mintBatch({ mints: batch }, { signal: abort.signal })).results;
          latencies.push(performance.now() - t0);
          for (const r of results) {
            if (r.status === TransactionStatus.CONFIRMED && !r.replayed) confirmedByResponse.add(r.idempotencyKey);
            else if (problems.length < 10) problems.push(`${r.idempotencyKey}: ${TransactionStatus[r.status]}${r.replayed ? " (replayed)" : ""}${r.error ? ` ${r.error.reason}` : ""}`);
          }
        } catch (err) {
          if (abort.signal.aborted) break;
          errors++;
          if (problems.length < 10) problems.push(`call failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    clearTimeout(limit);
    // Counted at the end of the timed window (after a time limit, draining sends more).
    const transactions = (await adapter.db.blockchainTransaction.count()) - txsBefore;
    const rpc = rpcStats ? Object.fromEntries([...rpcStats.take()].sort((a, b) => b[1].calls - a[1].calls)) : undefined;

    // After a timeout or failed calls, let the adapter finish what it accepted before checking.
    const open = () => adapter.db.mint.count({ where: { status: { in: ["PENDING", "SUBMITTED"] } } });
    const drainUntil = Date.now() + DRAIN_LIMIT_MS;
    while ((await open()) > 0 && Date.now() < drainUntil) await sleep(100);

    // Verify: chain balances == what the adapter's database says it minted == what callers were told.
    const keys = plan.map((p) => p.idempotencyKey);
    const rows = await adapter.db.mint.findMany({ where: { idempotencyKey: { in: keys } }, select: { idempotencyKey: true, status: true } });
    const confirmedInDb = new Set(rows.filter((r) => r.status === "CONFIRMED").map((r) => r.idempotencyKey));
    const complete = !timedOut && errors === 0;
    if (complete && confirmedByResponse.size !== MINTS) problems.push(`${MINTS - confirmedByResponse.size} of ${MINTS} mints not answered CONFIRMED`);
    for (const key of confirmedByResponse) if (!confirmedInDb.has(key)) problems.push(`${key} answered CONFIRMED but is not CONFIRMED in the database`);
    const stillOpen = await open();
    if (stillOpen > 0) problems.push(`${stillOpen} mints still PENDING/SUBMITTED after draining`);

    const expected = new Map<Address, bigint>(recipients.map((r) => [r, 0n]));
    let expectedSupply = 0n;
    for (const p of plan) {
      if (!confirmedInDb.has(p.idempotencyKey)) continue;
      expected.set(p.to, expected.get(p.to)! + BigInt(p.amountWei));
      expectedSupply += BigInt(p.amountWei);
    }
    const balances = await Promise.all(recipients.map(balanceOf));
    recipients.forEach((r, i) => {
      if (balances[i] !== expected.get(r)) problems.push(`balance of ${r} is ${balances[i]}, expected ${expected.get(r)}`);
    });
    const minted = (await totalSupply()) - supplyBefore;
    if (minted !== expectedSupply) problems.push(`totalSupply grew by ${minted}, expected ${expectedSupply}`);

    const notConfirmed = await adapter.db.blockchainTransaction.count({ where: { status: { not: "CONFIRMED" } } });
    if (notConfirmed > 0) problems.push(`${notConfirmed} blockchain_transactions rows not CONFIRMED`);

    latencies.sort((a, b) => a - b);
    const mints = confirmedByResponse.size;
    return {
      scenario: scenario.name,
      description: scenario.description,
      calls: calls.length,
      concurrency,
      mints,
      seconds,
      mintsPerSecond: mints / seconds,
      transactions,
      mintsPerTransaction: transactions ? mints / transactions : 0,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1) ?? Number.NaN,
      errors,
      timedOut,
      cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
      verified: problems.length === 0,
      problems,
      rpc,
    };
  } finally {
    await running.stop();
    await running.dropDatabase();
  }
}

function printResults(results: Result[]) {
  const header = ["scenario", "calls", "mints", "seconds", "mints/s", "txs sent", "mints/tx", "p50 ms", "p99 ms", "max ms", "cpu %", "verified"];
  const rows = results.map((r) => [
    r.scenario,
    thousands(r.calls),
    thousands(r.mints),
    r.seconds.toFixed(2),
    r.mintsPerSecond.toFixed(1),
    thousands(r.transactions),
    r.mintsPerTransaction.toFixed(1),
    r.p50Ms.toFixed(1),
    r.p99Ms.toFixed(1),
    r.maxMs.toFixed(1),
    r.cpuPercent.toFixed(0),
    (r.verified ? "ok" : "FAILED") + (r.timedOut ? " (time limit)" : "") + (r.errors ? ` (${r.errors} errors)` : ""),
  ]);
  console.log(`\nMint throughput via gRPC: ${MINTS} mints per scenario, ${CONCURRENCY} concurrent callers, limit ${TIME_LIMIT_MS / 1000}s\n`);
  console.log(formatTable(header, rows, new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])));
  for (const r of results) for (const p of r.problems) console.log(`  ${r.scenario}: ${p}`);
  for (const r of results) {
    if (!r.rpc) continue;
    const entries = Object.entries(r.rpc);
    const total = entries.reduce((n, [, s]) => n + s.calls, 0);
    console.log(`\nJSON-RPC calls by the adapter, ${r.scenario}: ${total} calls, ${(total / Math.max(1, r.mints)).toFixed(2)} per mint`);
    console.log(formatTable(["method", "calls", "per mint", "avg ms"], entries.map(([m, s]) => [m, thousands(s.calls), (s.calls / Math.max(1, r.mints)).toFixed(2), (s.totalMs / s.calls).toFixed(2)]), new Set([1, 2, 3])));
  }
  console.log();
}

async function main() {
  assertLoopbackDatabase();
  const wanted = process.env.BENCH_SCENARIOS?.split(",").map((s) => s.trim()).filter(Boolean);
  const scenarios = wanted ? ALL_SCENARIOS.filter((s) => wanted.includes(s.name)) : ALL_SCENARIOS;
  if (scenarios.length === 0) throw new Error(`BENCH_SCENARIOS matched none of ${ALL_SCENARIOS.map((s) => s.name).join(", ")}`);

  // Whatever hangs, the process ends: time limit + drain + set-up per scenario, plus slack.
  const watchdog = setTimeout(() => {
    console.error("bench:mint watchdog: giving up");
    process.exit(2);
  }, scenarios.length * (TIME_LIMIT_MS + DRAIN_LIMIT_MS + 60_000) + 60_000);
  watchdog.unref();

  const runId = Date.now().toString(36); // mint ids live on the shared chain: keys must never repeat
  const chain = await startTestChain();
  const rpcStats = RPC_STATS ? await startRpcStatsProxy(chain.rpcUrl) : undefined;
  const results: Result[] = [];
  try {
    for (const scenario of scenarios) {
      process.stderr.write(`bench:mint ${scenario.name}...\n`);
      results.push(await runScenario(chain, scenario, runId, rpcStats?.url, rpcStats));
    }
  } finally {
    await rpcStats?.close();
    await chain.close();
  }

  printResults(results);
  const json = {
    bench: "mint-throughput",
    date: new Date().toISOString(),
    mintsPerScenario: MINTS,
    concurrency: CONCURRENCY,
    timeLimitSeconds: TIME_LIMIT_MS / 1000,
    results: results.map((r) => ({
      scenario: r.scenario,
      calls: r.calls,
      mints: r.mints,
      seconds: round(r.seconds, 3),
      mintsPerSecond: round(r.mintsPerSecond, 1),
      transactions: r.transactions,
      p50Ms: round(r.p50Ms, 1),
      p99Ms: round(r.p99Ms, 1),
      maxMs: round(r.maxMs, 1),
      cpuPercent: round(r.cpuPercent, 0),
      errors: r.errors,
      timedOut: r.timedOut,
      verified: r.verified,
      ...(r.rpc ? { rpcCalls: Object.fromEntries(Object.entries(r.rpc).map(([m, s]) => [m, s.calls])) } : {}),
    })),
  };
  console.log(`BENCH_MINT ${JSON.stringify(json)}`);
  if (results.some((r) => !r.verified)) process.exitCode = 1;
}

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : null);

await main();
