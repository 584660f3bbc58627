import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { cashbackTokenAbi } from "@cashback/token";
import { clawedBackEvents, createMerchant, freshWallet, mintedEvents, repoRoot, startStack, waitFor, type ServiceName, type Stack } from "@cashback/testing";
import { loadReconcileConfig, runReconcile } from "../../scripts/reconcile/run.ts";
import { formatReport } from "../../scripts/reconcile/compare.ts";
import { drivePurchases } from "./chaos/load.ts";
import { planChaos, seededRandom, SERVICES, type ChaosAction } from "./chaos/plan.ts";

// The bounded chaos run (issue 15): purchases over REST while every service's instances (two of
// each) are SIGKILLed and restarted, stopped with SIGTERM under load, NATS and Postgres restarted
// and the chain's JSON-RPC cut; then everything must add up. CI defaults below; the documented
// full run: CHAOS_PURCHASES=10000 CHAOS_KILLS=5 CHAOS_RPC_CUT_MS=30000 CHAOS_DURATION_MS=240000.
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const PURCHASES = env("CHAOS_PURCHASES", 2_000);
const KILLS = env("CHAOS_KILLS", 2);
const SIGTERMS = env("CHAOS_SIGTERMS", 1);
const RPC_CUT_MS = env("CHAOS_RPC_CUT_MS", 8_000);
const DURATION_MS = env("CHAOS_DURATION_MS", 45_000);
const SEED = env("CHAOS_SEED", Math.floor(Math.random() * 1e9));
const REFUND_SHARE = env("CHAOS_REFUND_SHARE", 0.1); // purchases refunded by half: clawbacks under the same faults
const INSTANCES = 2;
const LOG_DIR = path.join(repoRoot, "test-results", `chaos-${SEED}`);

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    postgres: "own",
    logDir: LOG_DIR,
    instances: { adapter: INSTANCES, api: INSTANCES, consumer: INSTANCES },
    env: {
      // Ride out every outage (never give up on a mint), and notice recoveries quickly. A killed
      // consumer's claimed requests wait out their lease (adapter call deadline + 5 s, 65 s by
      // default): 15 s calls keep the drain short; the adapter answers SUBMITTED after 10 s.
      consumer: { CONSUMER_RETRY_MAX_ATTEMPTS: "1000", CONSUMER_RETRY_BASE_MS: "200", CONSUMER_RETRY_CAP_MS: "2000", CONSUMER_ACK_WAIT_MS: "5000", CONSUMER_RECONCILE_INTERVAL_MS: "1000", CONSUMER_POLL_INTERVAL_MS: "500", CONSUMER_ADAPTER_TIMEOUT_MS: "15000" },
      adapter: { BREAKER_HALF_OPEN_AFTER_MS: "1000", RPC_TIMEOUT_MS: "3000", RECEIPT_TIMEOUT_MS: "10000" },
    },
  });
});
afterAll(async () => {
  await stack?.close();
});

/** The first column of the first row, as text. */
async function scalar(url: string, sql: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    return String(Object.values((await client.query(sql)).rows[0] as object)[0]);
  } finally {
    await client.end();
  }
}
const count = async (url: string, sql: string) => Number(await scalar(url, sql));

it(`${PURCHASES} purchases (and refunds) while every service is killed and restarted, NATS and Postgres restart and the chain's RPC is cut: every purchase minted once, every refund clawed back once, the books equal the chain`, async () => {
  const random = seededRandom(SEED);
  const shop = await createMerchant(stack.apiUrl, stack.adminKey, { basisPoints: 250 });
  const users: string[] = [];
  for (let i = 0; i < 50; i++) users.push(await shop.addShopper(freshWallet()));

  const figures = { kills: {} as Record<ServiceName, number>, sigterms: {} as Record<ServiceName, number>, natsRestarts: 0, postgresRestarts: 0, rpcCutMs: 0, uncleanStops: [] as string[] };
  for (const s of SERVICES) figures.kills[s] = figures.sigterms[s] = 0;
  const plan = planChaos(random, { durationMs: DURATION_MS, killsPerService: KILLS, sigtermsPerService: SIGTERMS, instancesPerService: INSTANCES, rpcCutMs: RPC_CUT_MS });
  const instanceOf = (a: { service: ServiceName; instance: number }) => ({ adapter: stack.adapters, api: stack.apis, consumer: stack.consumers })[a.service][a.instance]!;
  const log = (what: string) => console.log(`[chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}`);

  const t0 = Date.now();
  const cuts: Promise<void>[] = [];
  const perform = async (action: ChaosAction) => {
    switch (action.kind) {
      case "kill": {
        const instance = instanceOf(action);
        await instance.kill();
        figures.kills[action.service]++;
        log(`SIGKILL ${instance.name}`);
        await sleep(500 + Math.floor(random() * 1_500));
        await instance.start();
        log(`${instance.name} back`);
        return;
      }
      case "sigterm": {
        const instance = instanceOf(action);
        log(`SIGTERM ${instance.name}`);
        const exit = await instance.terminate(30_000);
        log(`${instance.name} exited after SIGTERM in ${exit?.ms} ms (code ${exit?.code}, signal ${exit?.signal})`);
        if (exit && exit.code !== 0) figures.uncleanStops.push(`${instance.name}: ${exit.signal ?? `code ${exit.code}`} after ${exit.ms} ms`);
        figures.sigterms[action.service]++;
        await instance.start();
        log(`${instance.name} back`);
        return;
      }
      case "nats-restart":
        log("NATS restart");
        await stack.nats.restart();
        figures.natsRestarts++;
        return;
      case "postgres-restart":
        log("Postgres restart");
        await stack.pg!.restart();
        figures.postgresRestarts++;
        return;
      case "rpc-cut":
        log(`chain JSON-RPC cut for ${action.ms / 1000} s`);
        await stack.chain.proxy.down();
        cuts.push(sleep(action.ms).then(async () => {
          await stack.chain.proxy.up();
          figures.rpcCutMs += action.ms;
          log("chain JSON-RPC back");
        }));
        return;
    }
  };
  // One lane per service and one for NATS/Postgres/RPC, side by side; within a lane one action at
  // a time, so at most one instance of a service is down (a restart takes seconds on 2 cores).
  const lanes = new Map<string, typeof plan>();
  for (const step of plan) {
    const lane = "service" in step.action ? step.action.service : "infrastructure";
    lanes.set(lane, [...(lanes.get(lane) ?? []), step]);
  }
  const chaos = (async () => {
    await Promise.all(
      [...lanes.values()].map(async (steps) => {
        for (const { atMs, action } of steps) {
          const wait = t0 + atMs - Date.now();
          if (wait > 0) await sleep(wait);
          await perform(action);
        }
      }),
    );
    await Promise.all(cuts);
  })();
  chaos.catch(() => {}); // awaited below

  let lastReport = 0;
  const load = await drivePurchases({
    count: PURCHASES,
    perSecond: PURCHASES / (DURATION_MS * 0.8 / 1000),
    apiUrls: () => stack.apis.map((a) => a.url),
    key: shop.key,
    users,
    random,
    refundShare: REFUND_SHARE,
    onProgress: (done) => {
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        log(`${done}/${PURCHASES} purchases accepted`);
      }
    },
  });
  const loadDoneAt = Date.now();
  await chaos;
  const chaosDoneAt = Date.now();
  log(`load done after ${((loadDoneAt - t0) / 1000).toFixed(1)} s (${load.retries} client retries), chaos done after ${((chaosDoneAt - t0) / 1000).toFixed(1)} s`);
  for (const instance of stack.all) if (!instance.running) await instance.start();

  // Quiescence: no entry in flight, no event waiting in any outbox, no request open anywhere.
  const { api, consumer, adapter } = stack.databaseUrls;
  let lastState = "";
  await waitFor("quiescence", async () => {
    const state = {
      ledgerPending: await count(api, "SELECT count(*)::int AS n FROM cashback_ledger WHERE status IN ('pending', 'clawback_pending')"),
      apiOutbox: await count(api, "SELECT count(*)::int AS n FROM outbox_events WHERE published_at IS NULL"),
      consumerOutbox: await count(consumer, "SELECT count(*)::int AS n FROM outbox_events WHERE published_at IS NULL"),
      requestsOpen: await count(consumer, "SELECT count(*)::int AS n FROM mint_requests WHERE status IN ('PENDING', 'SUBMITTED')"),
      adapterOpen: await count(adapter, "SELECT count(*)::int AS n FROM mints WHERE status IN ('PENDING', 'SUBMITTED')"),
      clawbacksOpen: await count(consumer, "SELECT count(*)::int AS n FROM clawbacks WHERE status IN ('WAITING', 'PENDING', 'SUBMITTED')"),
      consumerRequests: await scalar(consumer, "SELECT coalesce(string_agg(s, ', '), '') FROM (SELECT status || ' ' || count(*) || ' (' || coalesce(max(last_error_reason), '-') || ', due in ' || round(extract(epoch FROM max(next_attempt_at) - now())) || ' s)' AS s FROM mint_requests WHERE status IN ('PENDING', 'SUBMITTED') GROUP BY status) x"),
    };
    const text = JSON.stringify(state);
    const gist = text.replace(/due in -?\d+ s/g, ""); // log changes, not the clock
    if (gist !== lastState) log(`draining: ${text}`);
    lastState = gist;
    return Object.values(state).every((n) => n === 0 || n === "");
  }, { timeoutMs: 300_000, intervalMs: 500 });
  const drainMs = Date.now() - chaosDoneAt;

  // Every purchase accepted once, with exactly one ledger entry, minted.
  const accepted = load.accepted;
  expect(new Set(accepted.map((a) => a.id)).size).toBe(PURCHASES);
  expect(await count(api, "SELECT count(*)::int AS n FROM purchases")).toBe(PURCHASES);
  expect(await count(api, "SELECT count(*)::int AS n FROM (SELECT purchase_id FROM cashback_ledger WHERE kind = 'accrual' GROUP BY purchase_id HAVING count(*) = 1) x")).toBe(PURCHASES);
  const failed = await count(api, "SELECT count(*)::int AS n FROM cashback_ledger WHERE status = 'failed'");
  expect(failed).toBe(0);
  expect(await count(api, "SELECT count(*)::int AS n FROM cashback_ledger WHERE status = 'minted'")).toBe(PURCHASES);

  // Every refund with a share of cashback: exactly one clawback entry, clawed back.
  const refunds = accepted.filter((a) => a.refund && a.refund.clawbackWei > 0n);
  expect(await count(api, "SELECT count(*)::int AS n FROM cashback_ledger WHERE kind = 'clawback'")).toBe(refunds.length);
  expect(await count(api, "SELECT count(*)::int AS n FROM cashback_ledger WHERE kind = 'clawback' AND status = 'clawed_back'")).toBe(refunds.length);

  // No mint id (or ref id) twice on chain; the sums on chain are the sums of the final entries.
  const events = await mintedEvents(stack.chain);
  expect(new Set(events.map((e) => e.mintId)).size).toBe(events.length);
  expect(events).toHaveLength(PURCHASES);
  const onChain = events.reduce((sum, e) => sum + e.amount, 0n);
  const ledgerSum = BigInt(await scalar(api, "SELECT sum(amount_wei)::text FROM cashback_ledger WHERE status = 'minted'"));
  expect(onChain).toBe(ledgerSum);
  expect(ledgerSum).toBe(accepted.reduce((sum, a) => sum + a.amountWei, 0n));
  const clawed = await clawedBackEvents(stack.chain);
  expect(new Set(clawed.map((e) => e.refId)).size).toBe(clawed.length);
  expect(clawed).toHaveLength(refunds.length);
  const clawedOnChain = clawed.reduce((sum, e) => sum + e.amount, 0n);
  expect(clawedOnChain).toBe(BigInt(await scalar(api, "SELECT coalesce(sum(amount_wei), 0)::text FROM cashback_ledger WHERE status = 'clawed_back'")));
  expect(clawedOnChain).toBe(refunds.reduce((sum, a) => sum + a.refund!.clawbackWei, 0n));

  // Nothing stuck in the adapter either.
  expect(await count(adapter, "SELECT count(*)::int AS n FROM mints WHERE status IN ('PENDING', 'SUBMITTED')")).toBe(0);
  expect(await count(adapter, "SELECT count(*)::int AS n FROM blockchain_transactions WHERE status = 'SUBMITTED'")).toBe(0);

  const report = await runReconcile(loadReconcileConfig(stack.reconcileEnv));
  if (report.differences.length) console.log(formatReport(report));
  expect(report.differences).toEqual([]);
  expect(report.matched).toBe(PURCHASES + refunds.length);

  // Figures.
  const skipped = await stack.chain.reader.getContractEvents({ address: stack.chain.token, abi: cashbackTokenAbi, eventName: "MintSkipped", fromBlock: stack.chain.deployBlock, toBlock: "latest" });
  const reverted = await count(adapter, "SELECT count(*)::int AS n FROM blockchain_transactions WHERE status = 'FAILED'");
  const restarts = stack.all.reduce((n, i) => n + i.starts - 1, 0);
  const mintTxs = new Set(events.map((e) => e.txHash)).size;
  console.log(
    [
      `chaos figures (seed ${SEED}; ${INSTANCES} instances of each service; shared 2-core machine):`,
      `  purchases ${PURCHASES} and refunds ${refunds.length} accepted (${load.retries} client retries); all minted / clawed back once; ${mintTxs} mint transactions`,
      `  SIGKILLs: adapter ${figures.kills.adapter}, consumer ${figures.kills.consumer}, api ${figures.kills.api}; SIGTERMs under load: adapter ${figures.sigterms.adapter}, consumer ${figures.sigterms.consumer}, api ${figures.sigterms.api}; restarts ${restarts}`,
      `  NATS restarts ${figures.natsRestarts}, Postgres restarts ${figures.postgresRestarts}, chain JSON-RPC cut ${figures.rpcCutMs / 1000} s`,
      `  duplicates refused by the contract: ${skipped.length} MintSkipped, ${reverted} reverted transactions`,
      `  load ${((loadDoneAt - t0) / 1000).toFixed(1)} s, chaos ${((chaosDoneAt - t0) / 1000).toFixed(1)} s, drain after the last fault ${(drainMs / 1000).toFixed(1)} s`,
      `  reconcile: ${report.matched} matched, 0 differences`,
      `  SIGTERMs that did not end in a clean exit: ${figures.uncleanStops.join("; ") || "none"}`,
    ].join("\n"),
  );
  // No service fell over by itself: every exit was one of ours (a crash logs "fatal error").
  const crashes: string[] = [];
  for (const file of await readdir(LOG_DIR)) {
    for (const line of (await readFile(path.join(LOG_DIR, file), "utf8")).split("\n")) {
      if (line.includes('"level":60') || line.includes("fatal error")) crashes.push(`${file}: ${line.slice(0, 300)}`);
    }
  }
  expect(crashes).toEqual([]);
  expect(figures.natsRestarts + figures.postgresRestarts).toBe(2);
  for (const s of SERVICES) expect(figures.kills[s]).toBe(KILLS);
});
