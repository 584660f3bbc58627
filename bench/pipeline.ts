// `npm run bench:pipeline`: purchases through the whole system, from POST /v1/purchases to a
// minted ledger entry, every part a separate process as in production (packages/testing
// startStack): a `hardhat node` with the token (automine; the adapter reaches it through the
// stack's TCP proxy), a throwaway nats-server, the adapter, the mint consumer and the API, each on
// a fresh database of the local Postgres.
//
//  1. rate:  BENCH_RATE (500) purchases/s, open loop, for BENCH_SECONDS (10)
//  2. full:  BENCH_CONCURRENCY (64) closed-loop senders for BENCH_SECONDS: as fast as it accepts
//  3. naive: the baseline, same machine, same chain: one synchronous, unbatched mint per purchase
//     (MintToken on an adapter with MINT_BATCH_MAX=1), BENCH_NAIVE_CONCURRENCY (32) callers each
//     waiting for its mint, for BENCH_NAIVE_SECONDS (10). It skips the API and NATS, so it
//     flatters the baseline: the ratio is a lower bound. Its latency is per call.
//
// For each: purchases/s accepted (201), cashbacks/s confirmed (ledger entries `minted`, from the
// first send to the last entry minted) and purchase-to-confirmed latency (from the moment the
// purchase was due to be sent, so a queue in front of the API counts, to the ledger entry's
// `updated_at` when the API applied `cashback.minted`). Then where the time went, per stage (p50
// and p99 over entries, from each service's own rows): API write, outbox relay to the consumer's
// intake, intake to the adapter's record, adapter to mined, mined to the consumer knowing it, the
// consumer's relay publishing the result, JetStream and the API's queue, the API applying it. Finally the chain is checked: totalSupply equals the sum
// of the minted ledger entries and each minted entry's mint id was minted exactly once.
//
// Knobs: BENCH_RATE, BENCH_SECONDS, BENCH_CONCURRENCY, BENCH_USERS (200), BENCH_NAIVE_SECONDS,
// BENCH_DRAIN_S (120: how long a phase may take to mint what it accepted), BENCH_SCENARIOS
// (comma list of rate,full,naive), BENCH_CONSUMER_ENV / BENCH_ADAPTER_ENV / BENCH_API_ENV
// ("A=1,B=2": a service's settings). The last line is `BENCH_PIPELINE {json}`; exit 1 on a failed check.
import os from "node:os";
import pg from "pg";
import { createPublicClient, http, type Hex } from "viem";
import { cashbackTokenAbi } from "@cashback/token";
import { jetstreamManager } from "@nats-io/jetstream";
import { createTestDatabase } from "@cashback/db/testing";
import { STREAMS } from "@cashback/events";
import { connectNats } from "@cashback/outbox";
import { createLogger } from "@cashback/runtime";
import { createMerchant, startAdapterProcess, startStack } from "@cashback/testing";
import { formatTable, thousands } from "./support/table.ts";
import { cpuSeconds, findPid, percentile, Progress, type Sample } from "./support/pipeline-stats.ts";

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const RATE = num("BENCH_RATE", 500);
const SECONDS = num("BENCH_SECONDS", 10);
const CONCURRENCY = num("BENCH_CONCURRENCY", 64);
const USERS = num("BENCH_USERS", 200);
const NAIVE_SECONDS = num("BENCH_NAIVE_SECONDS", 10);
const NAIVE_CONCURRENCY = num("BENCH_NAIVE_CONCURRENCY", 32);
const DRAIN_MS = num("BENCH_DRAIN_S", 120) * 1_000;
const only = process.env.BENCH_SCENARIOS?.split(",");
const wanted = (s: string) => !only || only.includes(s);
const envList = (name: string) => Object.fromEntries((process.env[name] ?? "").split(",").filter(Boolean).map((kv) => kv.split(/=(.*)/s, 2) as [string, string]));
const MAX_IN_FLIGHT = 256; // the open-loop sender queues beyond this (latency still counts from the due time)

const load = () => os.loadavg()[0]!.toFixed(1);
console.log(`bench:pipeline on ${os.cpus().length} cores, load average ${load()} at start; rate ${RATE}/s and full speed (${CONCURRENCY} senders) for ${SECONDS} s each, naive ${NAIVE_SECONDS} s`);

// Everything started is stopped on the way out, whatever happens.
const cleanup: (() => Promise<unknown>)[] = [];
async function closeAll() {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
  cleanup.length = 0;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void closeAll().then(() => process.exit(130)));
const watchdog = setTimeout(() => {
  console.error("bench:pipeline: watchdog: giving up");
  void closeAll().then(() => process.exit(2));
}, (SECONDS * 2 + NAIVE_SECONDS + (DRAIN_MS / 1_000) * 3 + 300) * 1_000);
watchdog.unref();

const failures: string[] = [];
const rows: string[][] = [];
const stageRows: string[][] = [];
const cpuRows: string[][] = [];
const figures: Record<string, unknown> = { rate: RATE, seconds: SECONDS, concurrency: CONCURRENCY, loadStart: Number(load()) };

try {
  // The whole system as separate processes (packages/testing startStack): its own chain and
  // nats-server, fresh databases on the local Postgres, one instance of each service.
  const quiet = { LOG_LEVEL: "warn" };
  const stackProcs = await startStack({
    postgres: "shared",
    env: { adapter: { ...quiet, ...envList("BENCH_ADAPTER_ENV") }, consumer: { ...quiet, ...envList("BENCH_CONSUMER_ENV") }, api: { ...quiet, API_RATE_LIMIT_MAX: "100000000", ...envList("BENCH_API_ENV") } },
  });
  cleanup.push(() => stackProcs.close());
  const { chain, nats } = stackProcs;
  const naiveDb = await createTestDatabase("bench_pipeline_naive");
  cleanup.push(() => naiveDb.drop());
  const reader = createPublicClient({ transport: http(chain.nodeUrl) });
  const pools: pg.Pool[] = [];
  const pool = (url: string) => {
    const p = new pg.Pool({ connectionString: url, max: 2 });
    pools.push(p);
    return p;
  };
  cleanup.push(() => Promise.all(pools.map((p) => p.end())));
  const ADMIN_KEY = stackProcs.adminKey;
  const stack = { adapter: stackProcs.adapters[0]!, consumer: stackProcs.consumers[0]!, api: stackProcs.apis[0]!, apiUrl: stackProcs.apiUrl };
  const ourDbs = [...Object.values(stackProcs.databaseUrls), naiveDb.url].map((u) => new URL(u).pathname.slice(1));

  if (wanted("rate") || wanted("full")) {
    const { key, addShopper } = await createMerchant(stack.apiUrl, ADMIN_KEY, { name: "bench shop", basisPoints: 250 });
    const users: string[] = [];
    for (let i = 0; i < USERS; i++) users.push(await addShopper(`0x${(0x1000 + i).toString(16).padStart(40, "b")}`));
    const apiDb = pool(stackProcs.databaseUrls.api);
    // CPU per process over a phase (/proc): which part of the machine each minted entry costs.
    const chainPid = findPid(["hardhat", "node", "--port", new URL(chain.nodeUrl).port]);
    const natsPid = findPid(["nats-server", new URL(nats.url).port]);
    const cpuSnapshot = async () => {
      const { rows: backends } = await apiDb.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])`, [ourDbs]);
      const sum = (pids: (number | undefined)[]) => pids.reduce<number>((t, pid) => t + (pid ? cpuSeconds(pid) : 0), 0);
      return {
        api: sum([stack.api.pid]),
        consumer: sum([stack.consumer.pid]),
        adapter: sum([stack.adapter.pid]),
        chain: sum([chainPid]),
        postgres: 0, // per backend below
        backendCpu: new Map(backends.map((b) => [b.pid, cpuSeconds(b.pid)])),
        nats: sum([natsPid]),
        bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
        at: Date.now(),
      };
    };
    // Queue depths on the two streams each second: not yet delivered (num_pending) and delivered
    // but not yet acked (num_ack_pending), for the consumer's durable and the API's.
    const nc = await connectNats({ url: nats.url, name: "bench-pipeline", logger: createLogger("bench-pipeline", "warn") });
    cleanup.push(() => nc.close());
    const jsm = await jetstreamManager(nc);
    const queues = [
      { label: "CASHBACK -> mint-consumer", stream: STREAMS.cashback.name, durable: "mint-consumer" },
      { label: "CASHBACK_RESULTS -> API", stream: STREAMS.results.name, durable: "cashback-service-api" },
    ];
    const queueMax = () => new Map(queues.map((q) => [q.label, { pending: 0, ackPending: 0 }]));
    let queueSeen = queueMax();
    const queueTicker = setInterval(() => {
      for (const q of queues) {
        void jsm.consumers.info(q.stream, q.durable).then(
          (info) => {
            const m = queueSeen.get(q.label)!;
            m.pending = Math.max(m.pending, info.num_pending);
            m.ackPending = Math.max(m.ackPending, info.num_ack_pending);
          },
          () => {},
        );
      }
    }, 1_000);
    cleanup.push(async () => clearInterval(queueTicker));
    let seq = 0;
    const sendPurchase = async (phase: string): Promise<string> => {
      const i = seq++;
      const res = await fetch(`${stack.apiUrl}/v1/purchases`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "idempotency-key": `${phase}-${i}` },
        body: JSON.stringify({ user_id: users[i % users.length], category: "groceries", amount_minor: 1_000 + (i % 9_000), currency: "USD", occurred_at: new Date().toISOString() }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`POST /v1/purchases answered ${res.status}: ${text.slice(0, 200)}`);
      return (JSON.parse(text) as { cashback: { entry_id: string } }).cashback.entry_id;
    };

    for (const phase of ["rate", "full"] as const) {
      if (!wanted(phase)) continue;
      const due = new Map<string, number>(); // entry id -> when its purchase was due to be sent
      let errors = 0;
      const progress = new Progress(phase, phase === "rate" ? RATE * SECONDS : undefined);
      const counts = async () => {
        // phases do not overlap (each drains first): what was created since this one began is its own
        const { rows: [c] } = await apiDb.query<{ minted: string }>(`SELECT count(*) FILTER (WHERE status = 'minted') AS minted FROM cashback_ledger WHERE kind = 'accrual' AND created_at >= to_timestamp($1 / 1000.0)`, [t0 - 1_000]);
        return Number(c!.minted);
      };
      const startSeq = seq;
      queueSeen = queueMax();
      const cpuBefore = await cpuSnapshot();
      const t0 = Date.now();
      const ticker = setInterval(() => void counts().then((minted) => progress.update({ sent: seq - startSeq, accepted: due.size, minted, errors }), () => {}), 500);
      const fire = (dueAt: number) =>
        sendPurchase(phase).then(
          (entry) => void due.set(entry, dueAt),
          (err: Error) => {
            // fetch's own message is "fetch failed": the reason is in its cause
            if (errors++ < 3) progress.note(err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message);
          },
        );
      if (phase === "rate") {
        const total = RATE * SECONDS;
        const inFlight = new Set<Promise<void>>();
        for (let i = 0; i < total; i++) {
          const dueAt = t0 + (i * 1_000) / RATE;
          const wait = dueAt - Date.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
          const p = fire(dueAt).finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
        await Promise.all(inFlight);
      } else {
        const deadline = t0 + SECONDS * 1_000;
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (Date.now() < deadline) await fire(Date.now());
          }),
        );
      }
      const sendMs = Date.now() - t0;
      // Drain: wait until every accepted purchase is minted (or the limit).
      const drainDeadline = Date.now() + DRAIN_MS;
      while ((await counts()) < due.size && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 250));
      clearInterval(ticker);
      const cpuAfter = await cpuSnapshot();
      progress.update({ sent: seq - startSeq, accepted: due.size, minted: await counts(), errors });
      progress.done();

      const { rows: minted } = await apiDb.query<{ id: string; updated_ms: string }>(
        `SELECT id, (extract(epoch FROM updated_at) * 1000)::bigint AS updated_ms FROM cashback_ledger WHERE kind = 'accrual' AND status = 'minted' AND id = ANY($1::uuid[])`,
        [[...due.keys()]],
      );
      const latencies = minted.map((r) => Number(r.updated_ms) - due.get(r.id)!).sort((a, b) => a - b);
      const lastMinted = Math.max(...minted.map((r) => Number(r.updated_ms)));
      const sample: Sample = {
        accepted: due.size,
        acceptedPerS: due.size / (sendMs / 1_000),
        confirmed: minted.length,
        confirmedPerS: minted.length / ((lastMinted - t0) / 1_000),
        p50: percentile(latencies, 0.5),
        p99: percentile(latencies, 0.99),
        errors,
      };
      if (sample.confirmed < sample.accepted) failures.push(`${phase}: ${sample.accepted - sample.confirmed} of ${sample.accepted} accepted purchases not minted within ${DRAIN_MS / 1_000} s`);
      if (errors > 0) failures.push(`${phase}: ${errors} purchases refused or failed`);
      rows.push(sampleRow(phase === "rate" ? `pipeline @ ${RATE}/s` : `pipeline, full speed (${CONCURRENCY} senders)`, sample));
      figures[phase] = sample;
      {
        // a Postgres backend that connected during the phase counts whole (its start is in it)
        const parts = ["api", "consumer", "adapter", "chain", "postgres", "nats", "bench"] as const;
        const used = Object.fromEntries(parts.map((k) => [k, cpuAfter[k] - cpuBefore[k]])) as Record<(typeof parts)[number], number>;
        // per backend; one that ended during the phase is lost (pools keep theirs open)
        for (const [pid, after] of cpuAfter.backendCpu) used.postgres += after - (cpuBefore.backendCpu.get(pid) ?? 0);
        const wall = (cpuAfter.at - cpuBefore.at) / 1_000;
        const total = parts.reduce((t, k) => t + used[k], 0);
        cpuRows.push([phase, wall.toFixed(1), ...parts.map((k) => used[k].toFixed(1)), total.toFixed(1), ((total / wall) * 100).toFixed(0) + "%", ((total * 1_000) / Math.max(1, sample.confirmed)).toFixed(2)]);
        figures[`${phase}Cpu`] = { wallS: wall, ...used };
      }
      for (const [label, m] of queueSeen) stageRows.push([phase, `queue ${label}: max ${m.pending} waiting, ${m.ackPending} unacked`, "", ""]);
      figures[`${phase}Queues`] = Object.fromEntries(queueSeen);
      stageRows.push(...(await stages(phase, [...due.entries()], { api: apiDb, consumer: pool(stackProcs.databaseUrls.consumer), adapter: pool(stackProcs.databaseUrls.adapter) })));
    }

    // The chain agrees with the ledger: what was minted, once each.
    const { rows: [sum] } = await apiDb.query<{ wei: string; n: string }>(`SELECT coalesce(sum(amount_wei), 0)::text AS wei, count(*) AS n FROM cashback_ledger WHERE kind = 'accrual' AND status = 'minted'`);
    const supply = await reader.readContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "totalSupply" });
    const events = await reader.getContractEvents({ address: chain.token, abi: cashbackTokenAbi, eventName: "CashbackMinted", fromBlock: chain.deployBlock, toBlock: "latest" });
    const ids = new Set(events.map((e) => e.args.mintId as Hex));
    if (supply !== BigInt(sum!.wei)) failures.push(`totalSupply ${supply} != minted ledger entries ${sum!.wei}`);
    if (ids.size !== events.length || ids.size !== Number(sum!.n)) failures.push(`${events.length} CashbackMinted events, ${ids.size} distinct mint ids, ${sum!.n} minted entries`);
    figures.chain = { mintedEntries: Number(sum!.n), events: events.length, blocks: Number(await reader.getBlockNumber()), supplyMatches: supply === BigInt(sum!.wei) };
  }

  if (wanted("naive")) {
    for (const instance of stackProcs.all) await instance.stop(); // the naive adapter uses the same signer
    const naive = await startAdapterProcess({ chain, databaseUrl: naiveDb.url, env: { ...quiet, MINT_BATCH_MAX: "1" } });
    cleanup.push(() => naive.stop());
    const mint = async (i: number): Promise<void> => {
      const res = await fetch(`${naive.url}/cashback.blockchain.v1.BlockchainService/MintToken`, {
        method: "POST",
        headers: { authorization: `Bearer ${naive.token}`, "content-type": "application/json" },
        body: JSON.stringify({ idempotency_key: `naive-${i}`, to: `0x${(0x1000 + (i % USERS)).toString(16).padStart(40, "c")}`, amount_wei: String(25_000_000_000_000_000n + BigInt(i)) }),
        signal: AbortSignal.timeout(120_000),
      });
      const body = (await res.json()) as { status?: string };
      if (!res.ok || body.status !== "TRANSACTION_STATUS_CONFIRMED") throw new Error(`MintToken: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    };
    // Closed loop: NAIVE_CONCURRENCY callers (as many requests as a server would hold open),
    // each waiting for its mint before the next; offered more than it can do, it would only queue.
    const progress = new Progress("naive");
    const latencies: number[] = [];
    let errors = 0;
    let next = 0;
    const t0 = Date.now();
    const deadline = t0 + NAIVE_SECONDS * 1_000;
    const ticker = setInterval(() => progress.update({ sent: next, accepted: next - errors, minted: latencies.length, errors }), 500);
    await Promise.all(
      Array.from({ length: NAIVE_CONCURRENCY }, async () => {
        while (Date.now() < deadline) {
          const i = next++;
          const start = Date.now();
          await mint(i).then(
            () => void latencies.push(Date.now() - start),
            (err: Error) => {
              if (errors++ < 3) progress.note(err.message);
            },
          );
        }
      }),
    );
    clearInterval(ticker);
    progress.update({ sent: next, accepted: next - errors, minted: latencies.length, errors });
    progress.done();
    const done = latencies.length;
    const ms = Date.now() - t0;
    latencies.sort((a, b) => a - b);
    const sample: Sample = { accepted: done, acceptedPerS: done / (ms / 1_000), confirmed: done, confirmedPerS: done / (ms / 1_000), p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), errors };
    rows.push(sampleRow(`naive (${NAIVE_CONCURRENCY} callers, sync MintToken, MINT_BATCH_MAX=1)`, sample));
    figures.naive = sample;
    if (errors > 0) failures.push(`naive: ${errors} mints failed`);
  }
} catch (err) {
  failures.push(`aborted: ${(err as Error).stack ?? err}`);
} finally {
  await closeAll();
}

function sampleRow(name: string, s: Sample): string[] {
  return [name, thousands(s.accepted), s.acceptedPerS.toFixed(0), thousands(s.confirmed), s.confirmedPerS.toFixed(0), s.p50.toFixed(0), s.p99.toFixed(0), String(s.errors)];
}

/**
 * Per stage, p50 / p99 over the phase's entries, from each service's own timestamps (one machine,
 * one clock): the purchase due -> its ledger row (API write), -> the consumer's intake row (relay
 * + JetStream), -> the adapter's mint row, -> its transaction mined, -> the consumer's request
 * finished, -> the API's ledger entry minted (result event back).
 */
async function stages(phase: string, entries: [string, number][], db: { api: pg.Pool; consumer: pg.Pool; adapter: pg.Pool }): Promise<string[][]> {
  const ids = entries.map(([id]) => id);
  const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::bigint`;
  const api = new Map(
    (
      await db.api.query<{ id: string; created: string; received: string; minted: string }>(
        `SELECT l.id, ${ms("l.created_at")} AS created, ${ms("p.received_at")} AS received, ${ms("l.updated_at")} AS minted
           FROM cashback_ledger l JOIN processed_events p ON p.entry_id = l.id AND p.type = 'cashback.minted'
          WHERE l.id = ANY($1::uuid[]) AND l.status = 'minted'`,
        [ids],
      )
    ).rows.map((r) => [r.id, r]),
  );
  // when the consumer's relay published each cashback.minted (its outbox, aggregate = entry id)
  const published = new Map(
    (await db.consumer.query<{ entry: string; at: string }>(`SELECT aggregate_id AS entry, ${ms("published_at")} AS at FROM outbox_events WHERE subject = 'cashback.minted' AND aggregate_id = ANY($1::text[])`, [ids])).rows.map((r) => [r.entry, Number(r.at)]),
  );
  const consumer = new Map((await db.consumer.query<{ entry_id: string; key: string; intake: string; finished: string | null }>(`SELECT entry_id, idempotency_key AS key, ${ms("created_at")} AS intake, ${ms("finished_at")} AS finished FROM mint_requests WHERE entry_id = ANY($1::uuid[])`, [ids])).rows.map((r) => [r.entry_id, r]));
  const keys = [...consumer.values()].map((r) => r.key);
  const adapter = new Map(
    (await db.adapter.query<{ key: string; created: string; mined: string | null }>(`SELECT m.idempotency_key AS key, ${ms("m.created_at")} AS created, ${ms("t.mined_at")} AS mined FROM mints m LEFT JOIN blockchain_transactions t ON t.id = m.transaction_id WHERE m.idempotency_key = ANY($1::text[])`, [keys])).rows.map((r) => [r.key, r]),
  );
  const { rows: [tx] } = await db.adapter.query<{ txs: string; mints: string }>(`SELECT count(DISTINCT m.transaction_id) AS txs, count(*) AS mints FROM mints m WHERE m.idempotency_key = ANY($1::text[])`, [keys]);
  const spans: Record<string, number[]> = {
    "API write (due -> ledger row)": [],
    "relay + JetStream (-> consumer intake)": [],
    "consumer (-> adapter mint row)": [],
    "adapter (-> tx mined)": [],
    "receipt (-> consumer finished)": [],
    "consumer's relay (-> minted published)": [],
    "JetStream + API queue (-> apply starts)": [],
    "API apply (-> ledger minted)": [],
  };
  const lists = Object.values(spans);
  for (const [id, dueAt] of entries) {
    const a = api.get(id);
    const c = consumer.get(id);
    const m = c && adapter.get(c.key);
    const out = published.get(id);
    if (!a || !c || !m || !m.mined || !c.finished || !out) continue;
    const points = [dueAt, Number(a.created), Number(c.intake), Number(m.created), Number(m.mined), Number(c.finished), out, Number(a.received), Number(a.minted)];
    for (let i = 0; i < lists.length; i++) lists[i]!.push(points[i + 1]! - points[i]!);
  }
  figures[`${phase}MintsPerTx`] = Number(tx!.mints) / Math.max(1, Number(tx!.txs));
  return [
    ...Object.entries(spans).map(([name, list]) => {
      list.sort((x, y) => x - y);
      return [phase, name, percentile(list, 0.5).toFixed(0), percentile(list, 0.99).toFixed(0)];
    }),
    [phase, `(${tx!.txs} transactions, ${(Number(tx!.mints) / Math.max(1, Number(tx!.txs))).toFixed(1)} mints each)`, "", ""],
  ];
}

console.log();
console.log(formatTable(["scenario", "accepted", "accepted/s", "minted", "cashbacks/s", "p50 ms", "p99 ms", "errors"], rows, new Set([1, 2, 3, 4, 5, 6, 7])));
if (stageRows.length) {
  console.log();
  console.log("where the time goes (ms per entry, each service's own timestamps):");
  console.log(formatTable(["phase", "stage", "p50 ms", "p99 ms"], stageRows, new Set([2, 3])));
}
if (cpuRows.length) {
  console.log();
  console.log("CPU seconds per process over each phase (sending + draining; 2 cores = 200% of the wall time; other jobs on the machine are not counted):");
  console.log(formatTable(["phase", "wall s", "api", "consumer", "adapter", "chain", "postgres", "nats", "bench", "total", "of 1 core", "ms CPU/minted"], cpuRows, new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])));
}
const best = Math.max(...["rate", "full"].map((p) => (figures[p] as Sample | undefined)?.confirmedPerS ?? 0));
const naive = (figures.naive as Sample | undefined)?.confirmedPerS;
const rate = figures.rate as Sample | undefined;
console.log();
console.log(`goal: >= 2,000 cashbacks/s confirmed (best here ${best.toFixed(0)}), >= 20x naive (${naive ? (best / naive).toFixed(1) + "x" : "not measured"}), at ${RATE}/s p50 <= 150 ms and p99 <= 1,000 ms (${rate ? `${rate.p50.toFixed(0)} / ${rate.p99.toFixed(0)} ms` : "not measured"}); load average ${load()} at the end`);
figures.ratio = naive ? best / naive : null;
figures.loadEnd = Number(load());
if (failures.length) {
  console.log("FAILED:");
  for (const f of failures) console.log(`  - ${f}`);
}
console.log(`BENCH_PIPELINE ${JSON.stringify(figures)}`);
process.exit(failures.length ? 1 : 0);
