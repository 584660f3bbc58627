// The adapter as a separate process, under load from callers that retry with the same keys until
// a final answer, while the chain's JSON-RPC is refused, hung and restored (a TCP proxy), Postgres
// is restarted (a throwaway cluster this test owns), and the adapter is SIGKILLed between a
// broadcast and its commit. Each ends with every key minted exactly once on chain (read from the
// CashbackMinted events by mint id, with a viem client of the test's own), nothing stuck, and the
// callers having seen only retryable errors. Prints one line of figures per scenario.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import pg from "pg";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema, TransactionStatus } from "@cashback/proto/blockchain/v1";
import { httpOk, startPgCluster, startTestChain, type PgCluster, type TestChain } from "@cashback/testing";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Address } from "viem";
import { adapterProcess, CallerLog, mb, metric, mintedOnChain, mintUntilFinal, rssSampler, startRpcInterceptor, until, type AdapterClient } from "./support.ts";

const KEYS_PER_SCENARIO = 150;
const CALLERS = 16;
/** Short timeouts so that faults are felt (and recovered from) quickly. */
const ENV = {
  RPC_TIMEOUT_MS: "1000",
  BREAKER_FAILURES: "3",
  BREAKER_HALF_OPEN_AFTER_MS: "500",
  RECEIPT_TIMEOUT_MS: "2000",
  TX_STUCK_AFTER_MS: "5000",
};

let chain: TestChain;
let cluster: PgCluster;
let databaseUrl: string;
let adapter: Awaited<ReturnType<typeof adapterProcess>> | undefined;
let client: AdapterClient;
let errorLines = 0;
const errorSamples: string[] = [];
const recipients: Address[] = Array.from({ length: 5 }, () => privateKeyToAccount(generatePrivateKey()).address);
const figures: string[] = [];

/** Log lines at error level (pino level 50+): expected none, whatever the faults. */
const countErrors = (line: string) => {
  if (/"level":(5\d|60)/.test(line)) {
    errorLines++;
    if (errorSamples.length < 5) errorSamples.push(line.slice(0, 500));
  }
};

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

const keysFor = (scenario: string) => Array.from({ length: KEYS_PER_SCENARIO }, (_, i) => `fault-${scenario}-${i}`);
const toOf = (key: string) => recipients[Number(key.split("-").at(-1)) % recipients.length]!;
const amountOf = (key: string) => BigInt(Number(key.split("-").at(-1)) + 1);

/**
 * After the load: every key CONFIRMED exactly once on chain, for the right holder and amount, in
 * the transaction the caller was told; no row left PENDING/SUBMITTED; only retryable errors.
 * Returns the figures.
 */
async function verify(keys: string[], log: CallerLog) {
  expect(log.failed).toEqual(new Map());
  expect(log.nonRetryable()).toEqual([]);
  expect(log.confirmed.size).toBe(keys.length);
  const onChain = await mintedOnChain(chain, keys);
  const duplicates = [...onChain.values()].filter((events) => events.length > 1).length;
  const missing = [...onChain.values()].filter((events) => events.length === 0).length;
  expect({ duplicates, missing }).toEqual({ duplicates: 0, missing: 0 });
  for (const key of keys) {
    const [event] = onChain.get(key)!;
    expect({ key, to: event!.to, amount: event!.amount, tx: event!.txHash }).toEqual({ key, to: toOf(key), amount: amountOf(key), tx: log.confirmed.get(key)!.txHash });
  }
  let stuck = 0;
  await until("no open mint or transaction in the adapter's database", async () => {
    const [row] = await sql<{ mints: string; txs: string }>(
      `SELECT (SELECT count(*) FROM mints WHERE idempotency_key = ANY($1) AND status <> 'CONFIRMED') AS mints,
              (SELECT count(*) FROM blockchain_transactions WHERE status = 'SUBMITTED') AS txs`,
      [keys],
    );
    stuck = Number(row!.mints) + Number(row!.txs);
    return stuck === 0;
  });
  return { duplicates, stuck };
}

beforeAll(async () => {
  chain = await startTestChain();
  cluster = await startPgCluster();
  databaseUrl = cluster.url("blockchain_adapter");
}, 120_000);

afterAll(async () => {
  await adapter?.stop();
  await cluster?.close();
  await chain?.close();
  for (const line of figures) console.log(line);
});

describe("blockchain adapter under faults", () => {
  it("starts while the database and the chain are down: stays up, not ready, then ready once they are back", async () => {
    await cluster.stop();
    await chain.proxy.down();
    adapter = await adapterProcess({ chain, databaseUrl, env: ENV, readiness: "listening", onLine: countErrors });
    await adapter.start(); // listening: /healthz answers while start-up waits
    client = adapter.client();

    expect((await fetch(`${adapter.url}/readyz`)).status).toBe(503);
    const err = ConnectError.from(await client.getBalance({ address: recipients[0]! }).catch((e: unknown) => e));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.findDetails(ErrorDetailSchema)[0]).toMatchObject({ retryable: true, reason: "STARTING" });
    await until("start-up retrying for the database", () => /start-up waits for the database/.test(adapter!.output()));

    await cluster.start();
    await until("start-up retrying for the chain", () => /start-up waits for the chain/.test(adapter!.output()));
    expect((await fetch(`${adapter.url}/readyz`)).status).toBe(503);
    expect(adapter.running).toBe(true);

    const restored = Date.now();
    await chain.proxy.up();
    await until("ready", () => httpOk(`${adapter!.url}/readyz`));
    expect(adapter.starts).toBe(1); // never exited
    figures.push(`[adapter faults] start-up with database and chain down: stayed up (1 process), ready ${Date.now() - restored} ms after both were back`);
  }, 120_000);

  it("(a) chain JSON-RPC refused, then hung, then restored, under load", async () => {
    const keys = keysFor("chain");
    const log = new CallerLog();
    const rss = rssSampler(() => adapter?.pid);
    try {
      const load = mintUntilFinal({ keys, to: toOf, amount: amountOf, concurrency: CALLERS, client: () => client, log, deadline: Date.now() + 120_000 });
      load.catch(() => {});
      await until("some mints confirmed", () => log.confirmed.size >= 10);

      const refused = Date.now();
      await chain.proxy.down();
      // Callers whose key is recorded keep hearing SUBMITTED; new keys are refused (CIRCUIT_OPEN).
      await until("the circuit breaker open", async () => (await metric(adapter!.url, "adapter_chain_circuit_state")) === 1);
      // New work is refused at once, retryable: it waits in the caller's queue.
      const refusal = ConnectError.from(await client.mintToken({ idempotencyKey: "fault-chain-new", to: recipients[0]!, amountWei: "1" }).catch((e: unknown) => e));
      expect(refusal.code).toBe(Code.Unavailable);
      expect(refusal.findDetails(ErrorDetailSchema)[0]).toMatchObject({ retryable: true, reason: "CIRCUIT_OPEN" });
      // The database answers what it holds, chain or no chain.
      const [known] = log.confirmed;
      const view = await client.getTransaction({ lookup: { case: "idempotencyKey", value: known![0] } });
      expect(view).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: known![1].txHash });
      const replay = await client.mintToken({ idempotencyKey: known![0], to: toOf(known![0]), amountWei: amountOf(known![0]).toString() });
      expect(replay).toMatchObject({ status: TransactionStatus.CONFIRMED, replayed: true, txHash: known![1].txHash });

      // Hung: connections are accepted and never answered; the adapter's calls time out.
      const failedCalls = await metric(adapter!.url, "adapter_chain_calls_total", 'outcome="error"');
      const hung = Date.now();
      await chain.proxy.hang();
      await until("chain calls timing out", async () => (await metric(adapter!.url, "adapter_chain_calls_total", 'outcome="error"')) >= failedCalls + 3);
      const confirmedBeforeRestore = log.confirmed.size;

      const restored = Date.now();
      await chain.proxy.up();
      await load;
      const drainMs = Date.now() - restored;
      const { duplicates, stuck } = await verify(keys, log);
      expect(adapter!.starts).toBe(1); // the process survived it all
      figures.push(
        `[adapter faults] (a) chain refused+hung+restored: mints=${keys.length} faults=2 (refused ${hung - refused} ms, hung ${restored - hung} ms) ` +
          `confirmedBeforeRestore=${confirmedBeforeRestore} duplicates=${duplicates} stuck=${stuck} drainMs=${drainMs} ` +
          `callerErrors=${JSON.stringify(log.summary())} nonRetryable=0 rssPeak=${mb(rss.peak)} rssFinal=${mb(rss.now())}`,
      );
    } finally {
      rss.stop();
      await chain.proxy.up();
    }
  }, 180_000);

  it("(b) Postgres restarted under load", async () => {
    const keys = keysFor("postgres");
    const log = new CallerLog();
    const rss = rssSampler(() => adapter?.pid);
    const errorsBefore = errorLines;
    try {
      const load = mintUntilFinal({ keys, to: toOf, amount: amountOf, concurrency: CALLERS, client: () => client, log, deadline: Date.now() + 120_000 });
      load.catch(() => {});
      await until("some mints confirmed", () => log.confirmed.size >= 10);

      const stopped = Date.now();
      await cluster.stop(); // clients are disconnected (57P01), then refused
      await until("callers saw the database go", () => log.errorsSince(stopped) >= 5);
      await cluster.start();
      const restored = Date.now();
      await load;
      const drainMs = Date.now() - restored;
      const { duplicates, stuck } = await verify(keys, log);
      expect(adapter!.starts).toBe(1);
      expect(log.errors.filter((e) => e.at >= stopped).map((e) => e.reason)).toContain("DATABASE_UNAVAILABLE");
      expect({ errorLines: errorLines - errorsBefore, samples: errorSamples }).toEqual({ errorLines: 0, samples: [] }); // no stack per retry
      figures.push(
        `[adapter faults] (b) Postgres stopped+started: mints=${keys.length} faults=1 (down ${restored - stopped} ms) duplicates=${duplicates} stuck=${stuck} ` +
          `drainMs=${drainMs} callerErrors=${JSON.stringify(log.summary())} nonRetryable=0 rssPeak=${mb(rss.peak)} rssFinal=${mb(rss.now())}`,
      );
    } finally {
      rss.stop();
      await cluster.start().catch(() => {}); // already running unless the test failed while it was down
    }
  }, 180_000);

  it("(c) SIGKILL between broadcast and commit, three times, under load", async () => {
    await adapter!.stop();
    const interceptor = await startRpcInterceptor(chain.nodeUrl);
    try {
      adapter = await adapterProcess({ chain, databaseUrl, env: { ...ENV, CHAIN_RPC_URL: interceptor.url }, onLine: countErrors });
      await adapter.start();
      client = adapter.client();
      const proc = adapter;
      const keys = keysFor("sigkill");
      const log = new CallerLog();
      const rss = rssSampler(() => proc.pid);
      onTestFinished(() => rss.stop());
      const [recoveredBefore] = await sql<{ n: string }>("SELECT count(*) AS n FROM blockchain_transactions WHERE kind = 'recovered'");
      const load = mintUntilFinal({ keys, to: toOf, amount: amountOf, concurrency: CALLERS, client: () => client, log, deadline: Date.now() + 120_000 });
      load.catch(() => {});

      const firstKill = Date.now();
      for (let kill = 1; kill <= 3; kill++) {
        const progress = log.confirmed.size;
        await until(`progress before kill ${kill}`, () => log.confirmed.size >= Math.min(keys.length - 20, progress + 10));
        interceptor.killOnBroadcast(() => proc.kill());
        await until(`kill ${kill} between broadcast and commit`, () => interceptor.kills === kill && !proc.running);
        await proc.start(); // same database, same key: recovers what the killed round broadcast
      }
      const restored = Date.now();
      await load;
      const drainMs = Date.now() - restored;
      const { duplicates, stuck } = await verify(keys, log);
      const [recovered] = await sql<{ n: string }>("SELECT count(*) AS n FROM blockchain_transactions WHERE kind = 'recovered'");
      const recoveredTxs = Number(recovered!.n) - Number(recoveredBefore!.n);
      expect(recoveredTxs).toBeGreaterThanOrEqual(1); // a killed round's broadcast, found on chain
      expect(proc.starts).toBe(4);
      figures.push(
        `[adapter faults] (c) SIGKILL between broadcast and commit: mints=${keys.length} faults=${interceptor.kills} kills (${restored - firstKill} ms) ` +
          `recoveredFromChain=${recoveredTxs} txs duplicates=${duplicates} stuck=${stuck} drainMs=${drainMs} callerErrors=${JSON.stringify(log.summary())} ` +
          `nonRetryable=0 rssPeak=${mb(rss.peak)} rssFinal=${mb(rss.now())}`,
      );
    } finally {
      await adapter?.stop();
      adapter = undefined;
      await interceptor.close();
    }
    expect({ errorLines, samples: errorSamples }).toEqual({ errorLines: 0, samples: [] });
  }, 180_000);
});
