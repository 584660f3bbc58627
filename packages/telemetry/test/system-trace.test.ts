import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { encodeFunctionData, keccak256, toHex, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { cashbackTokenAbi } from "@cashback/token";
import { freePort, freshWallet, httpOk, serviceProcess, startNatsServer, startTestChain, waitFor, type NatsServer, type ServiceProcess, type TestChain } from "@cashback/testing";

/**
 * The three services as real processes, with secrets nobody else uses: one purchase goes from
 * REST to the block. Its trace id (sent by the client as a W3C traceparent) must appear in the
 * API's, the consumer's and the adapter's log lines and on the adapter's mint record; and no log
 * line of any process may contain any of the secrets.
 */
const SECRETS = {
  adminKey: `admin-${randomHex(24)}`,
  adapterToken: `token-${randomHex(24)}`,
  signerKey: generatePrivateKey(),
  databasePassword: `pw${randomHex(16)}`,
};
const TRACE_ID = randomHex(32);
const TRACEPARENT = `00-${TRACE_ID}-${randomHex(16)}-01`;

let chain: TestChain;
let nats: NatsServer;
const dbs: TestDatabase[] = [];
const procs: ServiceProcess[] = [];
const lines: Record<"api" | "consumer" | "adapter", string[]> = { api: [], consumer: [], adapter: [] };
let apiUrl: string;
let adapterDbUrl: string;
const metricsUrls: Record<string, string> = {};
let signerAddress = "";

function randomHex(chars: number): string {
  return Array.from({ length: chars }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");
}

/** The database's URL with the secret password in it (the trust-authenticated server ignores it). */
function withPassword(url: string): string {
  const u = new URL(url);
  u.username ||= "postgres";
  u.password = SECRETS.databasePassword;
  return u.toString();
}

async function service(name: keyof typeof lines, entry: string, env: Record<string, string>, readyUrl: string) {
  const proc = serviceProcess({ name, entry, env: { LOG_LEVEL: "debug", ...env }, ready: () => httpOk(readyUrl), readyTimeoutMs: 120_000, onLine: (l) => lines[name].push(l) });
  procs.push(proc);
  await proc.start();
  return proc;
}

beforeAll(async () => {
  [chain, nats] = await Promise.all([startTestChain(), startNatsServer()]);
  for (const prefix of ["trace_adapter", "trace_consumer", "trace_api"]) dbs.push(await createTestDatabase(prefix));
  const [adapterDb, consumerDb, apiDb] = dbs.map((d) => withPassword(d.url)) as [string, string, string];
  adapterDbUrl = adapterDb;

  // The adapter signs with a key of its own: minter role and gas for it.
  const signer = privateKeyToAccount(SECRETS.signerKey as Hex).address;
  signerAddress = signer;
  const admin = privateKeyToAccount(chain.adminKey).address;
  await chain.rpc("hardhat_setBalance", [signer, "0x56BC75E2D63100000"]);
  await chain.rpc("hardhat_impersonateAccount", [admin]);
  const grant = encodeFunctionData({ abi: cashbackTokenAbi, functionName: "grantRole", args: [keccak256(toHex("MINTER_ROLE")), signer] });
  await chain.reader.waitForTransactionReceipt({ hash: await chain.rpc<Hex>("eth_sendTransaction", [{ from: admin, to: chain.token, data: grant }]) });

  const [adapterPort, consumerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const adapterUrl = `http://127.0.0.1:${adapterPort}`;
  apiUrl = `http://127.0.0.1:${apiPort}`;
  Object.assign(metricsUrls, { adapter: `${adapterUrl}/metrics`, consumer: `http://127.0.0.1:${consumerPort}/metrics`, api: `${apiUrl}/metrics` });
  await service("adapter", "services/blockchain-adapter/src/main.ts", {
    ADAPTER_PORT: String(adapterPort),
    ADAPTER_AUTH_TOKEN: SECRETS.adapterToken,
    ADAPTER_PRIVATE_KEY: SECRETS.signerKey,
    ADAPTER_DATABASE_URL: adapterDb,
    CHAIN_RPC_URL: chain.rpcUrl,
    TOKEN_ADDRESS: chain.token,
    TOKEN_DEPLOY_BLOCK: chain.deployBlock.toString(),
    TX_MONITOR_INTERVAL_MS: "200",
  }, `${adapterUrl}/readyz`);
  const common = { NATS_URL: nats.url, ADAPTER_URL: adapterUrl, ADAPTER_AUTH_TOKEN: SECRETS.adapterToken };
  await Promise.all([
    service("consumer", "services/mint-consumer/src/main.ts", { ...common, CONSUMER_PORT: String(consumerPort), CONSUMER_DATABASE_URL: consumerDb }, `http://127.0.0.1:${consumerPort}/readyz`),
    service("api", "services/cashback-service-api/src/main.ts", { ...common, API_PORT: String(apiPort), API_DATABASE_URL: apiDb, API_ADMIN_KEY: SECRETS.adminKey, CHAIN_RPC_URL: chain.rpcUrl, TOKEN_ADDRESS: chain.token }, `${apiUrl}/readyz`),
  ]);
}, 240_000);

afterAll(async () => {
  if (process.env.DUMP_LINES) (await import("node:fs")).writeFileSync(process.env.DUMP_LINES, JSON.stringify({ TRACE_ID, lines }, null, 1));
  for (const p of procs.reverse()) await p.stop(10_000).catch(() => {});
  await Promise.all(dbs.map((d) => d.drop().catch(() => {})));
  await nats?.close();
  await chain?.close();
});

async function call(path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${apiUrl}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
}

let merchantKey = "";

/** Log lines of any process that contain any of the secrets (in any letter case). */
function leaks(): string[] {
  const secrets = [...Object.values(SECRETS), SECRETS.signerKey.slice(2), merchantKey].filter(Boolean);
  return Object.values(lines).flat().filter((line) => secrets.some((s) => line.toLowerCase().includes(s.toLowerCase())));
}

describe("one purchase, traced through the system, with secrets that never reach a log", () => {
  it("carries the client's trace id to the API's, the consumer's and the adapter's logs and to the adapter's mint record", async () => {
    const merchant = await call("/v1/merchants", SECRETS.adminKey, { name: "Trace Shop" });
    expect(merchant.status).toBe(201);
    const key = await call(`/v1/merchants/${merchant.body.id}/api-keys`, SECRETS.adminKey, { name: "checkout" });
    merchantKey = key.body.key;
    const user = await call("/v1/users", merchantKey, { external_id: "traced", email: "t@example.com", wallet_address: freshWallet() });
    expect(user.status).toBe(201);
    expect((await call("/v1/rules", merchantKey, { name: "all 5%", kind: "percentage", basis_points: 500 })).status).toBe(201);

    const purchase = await call(
      "/v1/purchases",
      merchantKey,
      { user_id: user.body.id, category: "groceries", amount_minor: 10_000, currency: "USD", occurred_at: new Date().toISOString() },
      { traceparent: TRACEPARENT },
    );
    expect(purchase.status).toBe(201);
    expect(purchase.headers.get("x-trace-id")).toBe(TRACE_ID);

    const minted = await waitFor("the purchase's cashback minted", async () => {
      const p = await call(`/v1/purchases/${purchase.body.id}`, merchantKey);
      return p.body.cashback?.status === "minted" ? p.body : undefined;
    }, { timeoutMs: 90_000, intervalMs: 200 });
    expect(minted.cashback.tx_hash).toMatch(/^0x[0-9a-f]{64}$/);
    const trace = await call(`/v1/purchases/${purchase.body.id}/trace`, merchantKey);
    expect(trace.body.outbox[0].trace_id).toBe(TRACE_ID); // from a purchase id to its trace

    const traced = (name: keyof typeof lines) => lines[name].filter((l) => parse(l)?.trace_id === TRACE_ID);
    const tracedMsgs = (name: keyof typeof lines) => traced(name).map((l) => parse(l)!.msg);
    // The services run at debug here: the API logs each result event it applied in the purchase's
    // trace, the consumer each mint it confirmed, the adapter each call it answered (per-event
    // lines are debug; at pipeline rates a line each cost CPU).
    await waitFor(
      "the trace id in all three services' per-event lines",
      () => tracedMsgs("api").includes("result event applied to the ledger") && tracedMsgs("consumer").includes("mint confirmed") && tracedMsgs("adapter").includes("MintToken answered"),
      { timeoutMs: 20_000 },
    );
    // At info, the line per batch (result events applied, mints confirmed) names the trace ids in it.
    const batchLines = (name: keyof typeof lines, msg: string) => lines[name].map(parse).filter((l) => l?.msg === msg && (l.level ?? 0) >= 30);
    expect(batchLines("api", "result events applied to the ledger").flatMap((l) => l!.traceIds ?? [])).toContain(TRACE_ID);
    expect(batchLines("consumer", "mints confirmed").flatMap((l) => l!.traceIds ?? [])).toContain(TRACE_ID);

    const client = new pg.Client({ connectionString: adapterDbUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ traceparent: string; tx_hash: string }>(
        `SELECT m.traceparent, t.tx_hash FROM mints m JOIN blockchain_transactions t ON t.id = m.transaction_id WHERE m.metadata->>'purchase_id' = $1`,
        [purchase.body.id],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.traceparent.slice(3, 35)).toBe(TRACE_ID);
      expect(rows[0]!.tx_hash).toBe(minted.cashback.tx_hash);
    } finally {
      await client.end();
    }
  });

  it("serves the figures an operator watches on /metrics (docs/operations.md)", async () => {
    const text = async (url: string) => (await fetch(url)).text();
    const [adapter, consumer, api] = await Promise.all([text(metricsUrls.adapter!), text(metricsUrls.consumer!), text(metricsUrls.api!)]);
    expect(Number(new RegExp(`^adapter_signer_balance_wei\\{signer="${signerAddress}"\\} (\\S+)$`, "m").exec(adapter)?.[1])).toBeGreaterThan(0);
    for (const name of ["adapter_chain_circuit_state", "adapter_nonce_resyncs_total", "adapter_mint_batch_size_bucket", "adapter_receipt_seconds_bucket"]) expect(adapter).toContain(name);
    expect(consumer).toMatch(/^consumer_stream_pending\{state="pending"\} 0$/m);
    for (const name of ["consumer_redeliveries_total", "consumer_dead_letters_total", "consumer_mint_latency_seconds_bucket", "consumer_mint_batch_size_bucket", "consumer_outbox_oldest_age_seconds"]) expect(consumer).toContain(name);
    expect(api).toMatch(/^api_http_request_duration_seconds_count\{route="\/v1\/purchases",method="POST",status="201"\} 1$/m);
    for (const name of ["api_outbox_backlog", "api_outbox_oldest_age_seconds"]) expect(api).toContain(name);
  });

  it("writes none of the secrets (admin key, adapter token, signer key, database password, merchant key) in any log line", () => {
    expect(Object.values(lines).flat().length).toBeGreaterThan(10);
    expect(merchantKey).not.toBe("");
    expect(leaks()).toEqual([]);
  });
});

describe("graceful shutdown", () => {
  it("each service, sent SIGTERM, stops taking work, closes everything and says so before its grace period ends", async () => {
    for (const p of [...procs].reverse()) await p.stop(20_000); // consumer and API first, then the adapter
    for (const [name, list] of Object.entries(lines)) {
      const from = list.findIndex((l) => parse(l)?.msg === "shutting down");
      expect(from, `${name} logged "shutting down"`).toBeGreaterThanOrEqual(0);
      const after = list.slice(from).map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(after.filter((l) => l.level >= 50), `${name} logged errors while stopping`).toEqual([]);
      expect(after.at(-1)?.msg, `${name} finished closing`).toBe("shut down cleanly");
    }
    expect(leaks()).toEqual([]); // nor in what they wrote while stopping
  }, 90_000);
});

type Line = { trace_id?: string; msg?: string; level?: number; traceIds?: string[] };
function parse(line: string): Line | undefined {
  try {
    return JSON.parse(line) as Line;
  } catch {
    return undefined;
  }
}
