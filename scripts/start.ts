// `npm start` (scripts/start.sh runs this after installing and starting Postgres/NATS): the whole
// local stack in the foreground, one line per service below. Each service starts once the one
// before it is ready, a crashed one is restarted with backoff while the others keep running,
// a banner lists every URL once all are ready, and Ctrl-C / SIGTERM stops everything (last
// started first). Exit code: 0 after a requested stop, 1 when the stack could not start.
//
// Env: CHAIN_PORT (8545), ADAPTER_PORT (50051), API_PORT (3000), CONSUMER_PORT (3100),
// ADAPTER_AUTH_TOKEN, API_ADMIN_KEY (local dev defaults), START_KEEP_DATABASES=1 (do not start the
// local databases afresh with a new chain); any service variable is passed through.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";
import { archiveDatabase } from "@cashback/db";
import { rpcAnswers } from "./rpc-answers.ts";
import { httpOk, Supervisor, type ServiceSpec } from "./supervisor.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const chainPort = Number(env.CHAIN_PORT ?? 8545);
const rpcUrl = `http://127.0.0.1:${chainPort}`;
const adapterUrl = `http://127.0.0.1:${env.ADAPTER_PORT ?? 50051}`;
const apiUrl = `http://127.0.0.1:${env.API_PORT ?? 3000}`;
const consumerUrl = `http://127.0.0.1:${env.CONSUMER_PORT ?? 3100}`;
const adapterToken = env.ADAPTER_AUTH_TOKEN ?? "dev-adapter-token";
const adminKey = env.API_ADMIN_KEY ?? "dev-admin-key";

// A node already answering on the port (someone's `npm run chain`) is used as it is: we only
// deploy the token to it (or reuse the deployment) and do not supervise it.
const chainAlreadyRunning = await rpcAnswers(rpcUrl);

const chain: ServiceSpec = { name: "chain", entry: "scripts/chain.ts", env: { CHAIN_PORT: String(chainPort) }, ready: () => deployed(), restartWarning: "the chain lived in memory: it starts again empty (balances are gone); the adapter restarts with it" };
// The API reads the token's address from deployments/<chain id>.json, as the adapter does.
const services: ServiceSpec[] = [
  ...(chainAlreadyRunning ? [] : [chain]),
  { name: "adapter", entry: "services/blockchain-adapter/src/main.ts", env: { CHAIN_RPC_URL: rpcUrl, ADAPTER_PORT: new URL(adapterUrl).port }, ready: () => httpOk(`${adapterUrl}/readyz`), restartWith: ["chain"] },
  { name: "api", entry: "services/cashback-service-api/src/main.ts", env: { API_PORT: new URL(apiUrl).port, ADAPTER_URL: adapterUrl, CHAIN_RPC_URL: rpcUrl }, ready: () => httpOk(`${apiUrl}/readyz`) },
  { name: "consumer", entry: "services/mint-consumer/src/main.ts", env: { CONSUMER_PORT: new URL(consumerUrl).port, ADAPTER_URL: adapterUrl }, ready: () => httpOk(`${consumerUrl}/readyz`) },
].filter((s) => existsSync(path.join(repoRoot, s.entry)));

/** The chain answers and the token is deployed on it (scripts/chain.ts deploys after the node is up). */
async function deployed(): Promise<boolean> {
  if (!(await rpcAnswers(rpcUrl))) return false;
  const record = await readFile(path.join(repoRoot, "deployments", "31337.json"), "utf8").catch(() => "");
  if (!record) return false;
  const { address } = JSON.parse(record) as { address: string };
  const code = await rpc<string>("eth_getCode", [address, "latest"]).catch(() => "0x");
  return code !== "0x";
}

async function rpc<T>(method: string, params: unknown[]): Promise<T> {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    signal: AbortSignal.timeout(2_000),
  });
  return ((await res.json()) as { result: T }).result;
}

// Our terminal or pipe may go away first (Ctrl-C also ends `npm start | tee log`): keep stopping.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});

const supervisor = new Supervisor(services, {
  cwd: repoRoot,
  baseEnv: { ...env, ADAPTER_AUTH_TOKEN: adapterToken, API_ADMIN_KEY: adminKey },
});

let shuttingDown: Promise<never> | undefined;
function shutdown(code: number, reason: string): Promise<never> {
  shuttingDown ??= (async () => {
    supervisor.say(`${reason}; stopping...`);
    await supervisor.stopAll();
    supervisor.say(code === 0 ? "stopped" : "stopped after a failure");
    process.exit(code);
  })();
  return shuttingDown;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void shutdown(0, `${signal} received`));
// If whatever started us dies (e.g. `kill <npm pid>`: npm's sh dies without telling us), stop too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void shutdown(0, "parent process went away");
}, 1_000).unref();

if (chainAlreadyRunning) {
  supervisor.say(`a node already answers at ${rpcUrl}: using it as it is (deploying the token if needed)`);
  const code = await new Promise<number>((resolve) =>
    spawn(process.execPath, ["--import", "tsx", "deploy/deploy.ts"], { cwd: repoRoot, stdio: "inherit", env: { ...env, CHAIN_RPC_URL: rpcUrl } }).on("exit", (c) => resolve(c ?? 1)),
  );
  if (code !== 0) await shutdown(1, "deploying the token failed");
}

// A chain we start is new and empty: the books of the last one (ledger, mint requests, nonces)
// would describe balances that are gone, so the local databases start afresh with it. The old
// ones stay readable as <name>_previous. Databases named in the env are never touched.
if (!chainAlreadyRunning && env.START_KEEP_DATABASES !== "1") {
  const defaults = { API_DATABASE_URL: "cashback_api", CONSUMER_DATABASE_URL: "mint_consumer", ADAPTER_DATABASE_URL: "blockchain_adapter" };
  const moved: string[] = [];
  for (const [variable, name] of Object.entries(defaults)) {
    if (env[variable] || env[`${variable}_FILE`]) continue;
    try {
      const previous = await archiveDatabase(`postgresql://postgres@127.0.0.1:5432/${name}`);
      if (previous) moved.push(`${name} -> ${previous}`);
    } catch (err) {
      supervisor.say(`could not set ${name} aside (${(err as Error).message}); keeping it`);
    }
  }
  if (moved.length) supervisor.say(`new chain, fresh books: the last run's databases are kept as ${moved.join(", ")} (START_KEEP_DATABASES=1 keeps using them)`);
}

try {
  await supervisor.startAll();
} catch (err) {
  await shutdown(1, (err as Error).message);
}

const chainId = Number(await rpc<string>("eth_chainId", []));
const { address: token } = JSON.parse(await readFile(path.join(repoRoot, "deployments", `${chainId}.json`), "utf8")) as { address: string };
const started = new Set(services.map((s) => s.name));
const lines = [
  "================ cashback stack is ready ================",
  `  chain RPC        ${rpcUrl}   (chain id ${chainId}; MetaMask: add this network, currency ETH)`,
  `  CashbackToken    ${token}   (CBK, 18 decimals; MetaMask: import this token)`,
  `  adapter          ${adapterUrl}   (gRPC, gRPC-Web, Connect; Authorization: Bearer ${adapterToken})`,
];
if (started.has("api")) {
  lines.push(
    `  REST API         ${apiUrl}/v1   (docs ${apiUrl}/docs, OpenAPI ${apiUrl}/openapi.json)`,
    `  shopper page     ${apiUrl}/app   (sign in with a wallet registered as a user)`,
    `  admin key        ${adminKey}   (local only: Authorization: Bearer ${adminKey})`,
    `  try it           ${demoCommand()}   (a merchant, shoppers, purchases, a refund: cashback minted on chain)`,
  );
}
if (started.has("consumer")) lines.push(`  mint consumer    ${consumerUrl}/readyz   (/metrics)`);
lines.push("  Ctrl-C stops everything", "=========================================================");
for (const line of lines) supervisor.say(line);

/** `npm run demo`, with the URLs it needs when the ports are not the defaults. */
function demoCommand(): string {
  const vars = [
    ...(apiUrl !== "http://127.0.0.1:3000" ? [`API_URL=${apiUrl}`] : []),
    ...(rpcUrl !== "http://127.0.0.1:8545" ? [`CHAIN_RPC_URL=${rpcUrl}`] : []),
    ...(adminKey !== "dev-admin-key" ? ["API_ADMIN_KEY=…"] : []),
  ];
  return [...vars, "npm run demo"].join(" ");
}
