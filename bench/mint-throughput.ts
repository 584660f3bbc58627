/**
 * Mint throughput through the real blockchain adapter, over gRPC, against an in-process Hardhat
 * chain (automine: every transaction is mined as it arrives) and a fresh Postgres database per
 * scenario. Reuses the adapter's test harness.
 *
 *   npm run bench:mint
 *
 * First the ceiling: pre-signed mintBatch(200) transactions sent straight to the same chain, one
 * after another, no adapter and no database, with the gas given (and, second figure, with an
 * eth_estimateGas before each). Every scenario's mints/s is printed as a fraction of it.
 *
 * Scenarios (each gets its own adapter and database, and fresh recipients):
 *   single-unbatched  MintToken calls, MINT_BATCH_MAX=1 (one transaction per mint)
 *   single-batched    MintToken calls, default batching (the dispatcher packs queued mints)
 *   single-batched-c200  the same with 200 callers in flight
 *   mint-batch-200    MintBatch calls of 200 entries each (MINT_BATCH_MAX=200)
 *   ...-4-lanes       the same with 4 signer lanes (ADAPTER_SIGNER_KEYS)
 *   lanes-1/2/4       MintToken calls with 1, 2, 4 signer lanes (ADAPTER_SIGNER_KEYS) on a second
 *                     chain with automine off and a block every BENCH_BLOCK_MS (1000): throughput
 *                     and p50/p99 latency at a real chain's pace
 *
 * Env: BENCH_MINTS (per scenario: 300 unbatched, 2000 batched, 4000 MintBatch, 1500 lanes),
 * BENCH_CONCURRENCY (50; lanes 200) callers in flight, BENCH_CEILING_BATCHES (10),
 * BENCH_TIME_LIMIT_S (60) per scenario, BENCH_SCENARIOS (comma list, default all),
 * BENCH_RPC_STATS=1 to count the adapter's JSON-RPC calls by method (adds a proxy hop).
 *
 * After each scenario the recipients' on-chain balances and the token's totalSupply are checked
 * against what the adapter reports as minted; any mismatch makes the process exit non-zero.
 * Prints a table and, last, one line `BENCH_MINT {json}` for CI logs.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createPublicClient, encodeFunctionData, http, keccak256, toHex, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { cashbackTokenAbi } from "@cashback/token";
import { freshMinter, startTestChain, type TestChain } from "@cashback/testing";
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

const MINTS_OVERRIDE = process.env.BENCH_MINTS ? envInt("BENCH_MINTS", 500, 1, 100_000) : undefined;
const CONCURRENCY_OVERRIDE = process.env.BENCH_CONCURRENCY ? envInt("BENCH_CONCURRENCY", 50, 1, 1_000) : undefined;
const TIME_LIMIT_MS = envInt("BENCH_TIME_LIMIT_S", 60, 1, 3_600) * 1_000;
const CEILING_BATCHES = envInt("BENCH_CEILING_BATCHES", 10, 1, 1_000);
const BLOCK_MS = envInt("BENCH_BLOCK_MS", 1_000, 100, 60_000);
const BATCH_ENTRIES = 200;
const RECIPIENTS = 50;
const DRAIN_LIMIT_MS = 30_000;
const RPC_STATS = process.env.BENCH_RPC_STATS === "1";

interface Scenario {
  name: string;
  description: string;
  env: Record<string, string>;
  /** Mints per gRPC call: 1 uses MintToken, more uses MintBatch. */
  perCall: number;
  mints: number;
  concurrency: number;
  /** Signer lanes: that many fresh keys with MINTER_ROLE in ADAPTER_SIGNER_KEYS (0: the default key). */
  lanes: number;
  /** "interval": the chain with automine off and a block every BENCH_BLOCK_MS. */
  chain: "automine" | "interval";
}

const scenario = (s: Omit<Scenario, "mints" | "concurrency" | "lanes" | "chain"> & Partial<Scenario> & { mints: number }): Scenario => ({
  lanes: 0,
  chain: "automine",
  ...s,
  mints: MINTS_OVERRIDE ?? s.mints,
  concurrency: CONCURRENCY_OVERRIDE ?? s.concurrency ?? 50,
});

const ALL_SCENARIOS: Scenario[] = [
  scenario({ name: "single-unbatched", description: "MintToken, MINT_BATCH_MAX=1", env: { MINT_BATCH_MAX: "1" }, perCall: 1, mints: 300 }),
  scenario({ name: "single-batched", description: "MintToken, default batching", env: {}, perCall: 1, mints: 2_000 }),
  scenario({ name: "single-batched-c200", description: "MintToken, default batching, 200 callers", env: {}, perCall: 1, mints: 4_000, concurrency: 200 }),
  scenario({ name: "mint-batch-200", description: `MintBatch of ${BATCH_ENTRIES}`, env: { MINT_BATCH_MAX: "200" }, perCall: BATCH_ENTRIES, mints: 4_000 }),
  scenario({ name: "single-batched-c200-4-lanes", description: "MintToken, 200 callers, 4 signer lanes", env: {}, perCall: 1, mints: 4_000, concurrency: 200, lanes: 4 }),
  scenario({ name: "mint-batch-200-4-lanes", description: `MintBatch of ${BATCH_ENTRIES}, 4 signer lanes`, env: { MINT_BATCH_MAX: "200" }, perCall: BATCH_ENTRIES, mints: 8_000, lanes: 4 }),
  ...[1, 2, 4].map((lanes) =>
    scenario({ name: `lanes-${lanes}`, description: `MintToken, ${lanes} signer lane(s), ${BLOCK_MS} ms blocks`, env: {}, perCall: 1, mints: 1_500, concurrency: 200, lanes, chain: "interval" }),
  ),
];

interface Result {
  scenario: string;
  /** The gas-given ceiling measured right before this scenario (automine only). */
  ceilingNow?: number;
  chain: Scenario["chain"];
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
  /** Mean ms per round of each phase (adapter_round_phase_seconds). */
  phases: Record<string, number>;
}

/** The adapter's own per-phase round times: mean ms per mint transaction. */
async function roundPhases(adapter: { metrics: { roundPhaseSeconds: { get(): Promise<{ values: { metricName?: string; labels: Record<string, string | number>; value: number }[] }> } } }) {
  const { values } = await adapter.metrics.roundPhaseSeconds.get();
  const sums = new Map<string, { sum: number; count: number }>();
  for (const v of values) {
    const phase = String(v.labels.phase);
    const entry = sums.get(phase) ?? { sum: 0, count: 0 };
    if (v.metricName?.endsWith("_sum")) entry.sum = v.value;
    if (v.metricName?.endsWith("_count")) entry.count = v.value;
    sums.set(phase, entry);
  }
  return Object.fromEntries([...sums].filter(([, e]) => e.count > 0).map(([p, e]) => [p, (1000 * e.sum) / e.count]));
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


interface Ceiling {
  gasGiven: number;
  estimated: number;
  verified: boolean;
  problems: string[];
}

/**
 * The chain's own speed: CEILING_BATCHES mintBatch(200) transactions from a fresh minter straight
 * to the node, sent one after another in nonce order (as one sender must under automine), no
 * adapter and no database. First signed up front with the gas given, then each estimated first.
 * Balances are checked like the scenarios'.
 */
async function measureCeiling(chain: TestChain, runId: string, label = "", withEstimate = true): Promise<Ceiling> {
  const node = createPublicClient({ transport: http(chain.nodeUrl) });
  const key = await freshMinter(chain);
  const account = privateKeyToAccount(key);
  const recipients = Array.from({ length: RECIPIENTS }, freshAddress);
  const chainId = await node.getChainId();
  const fees = await node.estimateFeesPerGas();
  let nonce = await node.getTransactionCount({ address: account.address, blockTag: "pending" });
  const expected = new Map<Address, bigint>(recipients.map((r) => [r, 0n]));
  const batchData = (kindLabel: string, b: number) => {
    const entries = Array.from({ length: BATCH_ENTRIES }, (_, i) => {
      const to = recipients[(b * BATCH_ENTRIES + i) % RECIPIENTS]!;
      const amount = BigInt(b * BATCH_ENTRIES + i + 1);
      expected.set(to, expected.get(to)! + amount);
      return { to, amount, id: keccak256(toHex(`bench-${runId}-ceiling${label}-${kindLabel}-${b}-${i}`)) };
    });
    return encodeFunctionData({ abi: cashbackTokenAbi, functionName: "mintBatch", args: [entries.map((e) => e.to), entries.map((e) => e.amount), entries.map((e) => e.id)] });
  };
  const sign = (data: Hex, gas: bigint) =>
    account.signTransaction({ type: "eip1559", chainId, nonce: nonce++, to: chain.token, data, gas, ...fees });

  // Gas given: everything signed before the clock starts.
  const signed: Hex[] = [];
  for (let b = 0; b < CEILING_BATCHES; b++) signed.push(await sign(batchData("given", b), 12_000_000n));
  let t0 = performance.now();
  const receipts: Hex[] = [];
  for (const raw of signed) receipts.push(await node.sendRawTransaction({ serializedTransaction: raw }));
  await node.waitForTransactionReceipt({ hash: receipts.at(-1)!, pollingInterval: 5 });
  const gasGiven = (CEILING_BATCHES * BATCH_ENTRIES) / ((performance.now() - t0) / 1000);

  // Estimated: eth_estimateGas, sign, send, per batch.
  if (!withEstimate) return { gasGiven, estimated: Number.NaN, ...verify(await balancesOf()) };
  const datas = Array.from({ length: CEILING_BATCHES }, (_, b) => batchData("estimated", b));
  t0 = performance.now();
  let last: Hex | undefined;
  for (const data of datas) {
    const gas = await node.estimateGas({ account: account.address, to: chain.token, data });
    last = await node.sendRawTransaction({ serializedTransaction: await sign(data, gas) });
  }
  await node.waitForTransactionReceipt({ hash: last!, pollingInterval: 5 });
  const estimated = (CEILING_BATCHES * BATCH_ENTRIES) / ((performance.now() - t0) / 1000);

  return { gasGiven, estimated, ...verify(await balancesOf()) };

  function balancesOf() {
    return Promise.all(recipients.map((r) => node.readContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [r] })));
  }
  function verify(balances: bigint[]) {
    const problems: string[] = [];
    recipients.forEach((r, i) => {
      if (balances[i] !== expected.get(r)) problems.push(`ceiling: balance of ${r} is ${balances[i]}, expected ${expected.get(r)}`);
    });
    return { verified: problems.length === 0, problems };
  }
}

async function runScenario(chain: TestChain, scenario: Scenario, runId: string, rpcUrl: string | undefined, rpcStats: Awaited<ReturnType<typeof startRpcStatsProxy>> | undefined): Promise<Result> {
  const MINTS = scenario.mints;
  const node = createPublicClient({ transport: http(chain.nodeUrl) });
  const totalSupply = () => node.readContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "totalSupply" });
  const balanceOf = (a: Address) => node.readContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [a] });

  const laneKeys: string[] = [];
  for (let i = 0; i < scenario.lanes; i++) laneKeys.push(await freshMinter(chain));
  const running = await startTestAdapter(chain, {
    // A saturated shared machine can take seconds to answer a JSON-RPC call; the test harness's
    // 2 s would open the breaker and end calls early with SUBMITTED, which measures nothing.
    RPC_TIMEOUT_MS: "15000",
    ...scenario.env,
    ...(laneKeys.length ? { ADAPTER_SIGNER_KEYS: laneKeys.join(",") } : {}),
    ...(rpcUrl ? { CHAIN_RPC_URL: rpcUrl } : {}),
  });
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
    const concurrency = Math.min(scenario.concurrency, calls.length);

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
    const phases = await roundPhases(adapter);
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

    // A replaced transaction (stuck behind a slow block) is fine; anything else open or failed is not.
    const notConfirmed = await adapter.db.blockchainTransaction.count({ where: { status: { notIn: ["CONFIRMED", "REPLACED", "DROPPED"] } } });
    if (notConfirmed > 0) problems.push(`${notConfirmed} blockchain_transactions rows neither CONFIRMED nor superseded`);

    latencies.sort((a, b) => a - b);
    const mints = confirmedByResponse.size;
    return {
      scenario: scenario.name,
      chain: scenario.chain,
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
      phases,
    };
  } finally {
    await running.stop();
    await running.dropDatabase();
  }
}

function printResults(ceiling: Ceiling | undefined, results: Result[]) {
  if (ceiling) {
    console.log(`\nCeiling (no adapter, no database; ${CEILING_BATCHES} pre-signed mintBatch(${BATCH_ENTRIES}) sent in nonce order, automine):`);
    console.log(`  gas given: ${ceiling.gasGiven.toFixed(0)} mints/s   estimated first: ${ceiling.estimated.toFixed(0)} mints/s   ${ceiling.verified ? "balances ok" : "FAILED"}`);
    for (const p of ceiling.problems) console.log(`  ${p}`);
  }
  const header = ["scenario", "chain", "calls", "conc", "mints", "seconds", "mints/s", "of ceiling", "ceiling now", "of it", "txs sent", "mints/tx", "p50 ms", "p99 ms", "max ms", "cpu %", "verified"];
  const rows = results.map((r) => [
    r.scenario,
    r.chain,
    thousands(r.calls),
    String(r.concurrency),
    thousands(r.mints),
    r.seconds.toFixed(2),
    r.mintsPerSecond.toFixed(1),
    ceiling && r.chain === "automine" ? `${((100 * r.mintsPerSecond) / ceiling.gasGiven).toFixed(0)}%` : "-",
    r.ceilingNow ? r.ceilingNow.toFixed(0) : "-",
    r.ceilingNow ? `${((100 * r.mintsPerSecond) / r.ceilingNow).toFixed(0)}%` : "-",
    thousands(r.transactions),
    r.mintsPerTransaction.toFixed(1),
    r.p50Ms.toFixed(1),
    r.p99Ms.toFixed(1),
    r.maxMs.toFixed(1),
    r.cpuPercent.toFixed(0),
    (r.verified ? "ok" : "FAILED") + (r.timedOut ? " (time limit)" : "") + (r.errors ? ` (${r.errors} errors)` : ""),
  ]);
  console.log(`\nMint throughput via gRPC (fraction of the gas-given ceiling for automine scenarios; interval = ${BLOCK_MS} ms blocks), limit ${TIME_LIMIT_MS / 1000}s per scenario\n`);
  console.log(formatTable(header, rows, new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])));
  for (const r of results) for (const p of r.problems) console.log(`  ${r.scenario}: ${p}`);
  console.log(`\nWhere a mint round's time goes (mean ms per transaction; receipt = recording it, after the commit):`);
  for (const r of results) {
    const total = Object.entries(r.phases).reduce((n, [p, ms]) => (p === "receipt" ? n : n + ms), 0);
    const parts = Object.entries(r.phases).map(([p, ms]) => `${p} ${ms.toFixed(1)}${p === "receipt" ? "" : ` (${((100 * ms) / total).toFixed(0)}%)`}`);
    console.log(`  ${r.scenario.padEnd(28)} round ${total.toFixed(1)} ms: ${parts.join(", ")}`);
  }
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
  const results: Result[] = [];
  let ceiling: Ceiling | undefined;
  for (const kind of ["automine", "interval"] as const) {
    const todo = scenarios.filter((s) => s.chain === kind);
    if (todo.length === 0) continue;
    const chain = await startTestChain(kind === "interval" ? { blockTimeMs: BLOCK_MS } : {});
    const rpcStats = RPC_STATS ? await startRpcStatsProxy(chain.rpcUrl) : undefined;
    try {
      if (kind === "automine") {
        process.stderr.write(`bench:mint ceiling...\n`);
        await measureCeiling(chain, runId, "-warm-up", false); // a cold node (JIT, caches) runs at a fraction of its speed
        ceiling = await measureCeiling(chain, runId);
      }
      for (const scenario of todo) {
        process.stderr.write(`bench:mint ${scenario.name}...\n`);
        // The machine is shared: the ceiling is measured again right before each scenario, and
        // the scenario is also given as a fraction of that one.
        const local = kind === "automine" ? await measureCeiling(chain, runId, `-${scenario.name}`, false) : undefined;
        if (local && !local.verified) ceiling = { ...ceiling!, verified: false, problems: [...ceiling!.problems, ...local.problems] };
        results.push({ ...(await runScenario(chain, scenario, runId, rpcStats?.url, rpcStats)), ceilingNow: local?.gasGiven });
      }
    } finally {
      await rpcStats?.close();
      await chain.close();
    }
  }

  printResults(ceiling, results);
  const json = {
    bench: "mint-throughput",
    date: new Date().toISOString(),
    timeLimitSeconds: TIME_LIMIT_MS / 1000,
    blockMs: BLOCK_MS,
    ceiling: ceiling && { gasGiven: round(ceiling.gasGiven, 0), estimated: round(ceiling.estimated, 0), verified: ceiling.verified },
    results: results.map((r) => ({
      scenario: r.scenario,
      chain: r.chain,
      ofCeiling: ceiling && r.chain === "automine" ? round(r.mintsPerSecond / ceiling.gasGiven, 3) : null,
      ceilingNow: r.ceilingNow ? round(r.ceilingNow, 0) : null,
      ofCeilingNow: r.ceilingNow ? round(r.mintsPerSecond / r.ceilingNow, 3) : null,
      concurrency: r.concurrency,
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
  if (results.some((r) => !r.verified) || (ceiling && !ceiling.verified)) process.exitCode = 1;
}

const round = (n: number, digits: number) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : null);

await main();
