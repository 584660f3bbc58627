// `npm start` (scripts/start.sh runs this after installing and starting Postgres/NATS): starts the
// local stack in order, each service once the previous one is ready, prefixes their output with
// [name], prints a banner when all are up, and stops them all (last started first) on Ctrl-C or
// SIGTERM, or as soon as any of them exits. Exit code: 0 after a requested stop, 1 on a failure.
//
// Each service runs `sh -c <command>` in the repo root in its own process group, so a stop
// reaches every process under it (npm -> sh -> tsx -> node -> hardhat node) with one signal.
//
// Env: CHAIN_PORT (8545), ADAPTER_PORT (50051), ADAPTER_AUTH_TOKEN (dev-adapter-token on loopback),
// API_PORT (3000), API_ADMIN_KEY (dev-admin-key on loopback).
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import { constants } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { rpcAnswers } from "./rpc-answers.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const chainPort = Number(process.env.CHAIN_PORT ?? 8545);
const rpcUrl = `http://127.0.0.1:${chainPort}`;
const adapterPort = Number(process.env.ADAPTER_PORT ?? 50051);
const adapterUrl = `http://127.0.0.1:${adapterPort}`;
const apiPort = Number(process.env.API_PORT ?? 3000);
const apiUrl = `http://127.0.0.1:${apiPort}`;

interface Service {
  name: string;
  /** Shell command, run in the repo root. */
  command: string;
  env?: Record<string, string>;
  /** Ready once a line of its output matches this (when given)... */
  readyLine?: RegExp;
  /** ...and this answers true (when given); polled every 250 ms. */
  probe?: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** It may exit with 0 once ready (it only had to do a job, e.g. deploy to someone else's node). */
  oneShot?: boolean;
}

// A node already answering on the port (someone's `npm run chain`) is reused: chain.ts then only
// deploys (or reuses the deployment) and exits.
const chainAlreadyRunning = await rpcAnswers(rpcUrl);

// One line per service, in start order. Later: cashback-api and mint-consumer.
const services: Service[] = [
  { name: "chain", command: "npm run chain", env: { CHAIN_PORT: String(chainPort) }, readyLine: /^\{"chainId":/, probe: () => rpcAnswers(rpcUrl), oneShot: chainAlreadyRunning },
  { name: "adapter", command: "npm run start -w @cashback/blockchain-adapter", env: { CHAIN_RPC_URL: rpcUrl, ADAPTER_PORT: String(adapterPort) }, probe: () => httpOk(`${adapterUrl}/readyz`) },
  { name: "api", command: "npm run start -w @cashback/cashback-service-api", env: { API_PORT: String(apiPort), ADAPTER_URL: adapterUrl }, probe: () => httpOk(`${apiUrl}/readyz`) },
  // { name: "mint", command: "npm run start -w @cashback/mint-consumer", probe: () => httpOk("http://127.0.0.1:<port>/readyz") },
];

// ---------------------------------------------------------------------------------------------

interface Running {
  service: Service;
  child: ChildProcess;
  ready: boolean;
  exited: Promise<number>;
  sawReadyLine: boolean;
}

// Our terminal or pipe may go away first (Ctrl-C also ends `npm start | tee log`): keep stopping.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});

const colors = process.stdout.isTTY ? [36, 35, 33, 32, 34] : [];
const width = Math.max(...services.map((s) => s.name.length), "start".length);
const running: Running[] = [];
let stopping = false;

function prefix(name: string, i = -1): string {
  const tag = `[${name}]`.padEnd(width + 2);
  const color = colors.length ? (i < 0 ? 1 : colors[i % colors.length]) : undefined;
  return color ? `\x1b[${color}m${tag}\x1b[0m` : tag;
}
function say(line: string): void {
  process.stdout.write(`${prefix("start")} ${line}\n`);
}

function launch(service: Service, index: number): Running {
  const child = spawn(service.command, {
    cwd: repoRoot,
    shell: true,
    detached: true, // own process group: see the note at the top
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...service.env },
  });
  const r: Running = { service, child, ready: false, sawReadyLine: false, exited: undefined as unknown as Promise<number> };
  for (const [stream, out] of [
    [child.stdout!, process.stdout],
    [child.stderr!, process.stderr],
  ] as const) {
    createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => {
      out.write(`${prefix(service.name, index)} ${line}\n`);
      if (service.readyLine?.test(line)) r.sawReadyLine = true;
    });
  }
  r.exited = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      const c = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 1);
      // let its last lines through first ('close': pipes drained), unless a grandchild holds them
      const t = setTimeout(() => resolve(c), 500);
      child.once("close", () => (clearTimeout(t), resolve(c)));
    }),
  );
  void r.exited.then((code) => onExit(r, code));
  return r;
}

function onExit(r: Running, code: number): void {
  if (stopping) return;
  if (code === 0 && r.service.oneShot && r.ready) {
    say(`${r.service.name} finished its job (exit 0)`);
    return;
  }
  if (!r.ready && r.service.oneShot && code === 0) return; // waitReady sees it
  say(`${r.service.name} exited with code ${code}; stopping the others`);
  void shutdown(1);
}

async function waitReady(r: Running): Promise<void> {
  const { service } = r;
  const deadline = Date.now() + (service.readyTimeoutMs ?? 120_000);
  let exitCode: number | undefined;
  void r.exited.then((c) => (exitCode = c));
  for (;;) {
    if (stopping) throw new Error("stopping");
    const lineOk = !service.readyLine || r.sawReadyLine;
    if (lineOk && (!service.probe || (await service.probe()))) return;
    if (exitCode !== undefined) throw new Error(`${service.name} exited with code ${exitCode} before it was ready`);
    if (Date.now() > deadline) throw new Error(`${service.name} was not ready within ${(service.readyTimeoutMs ?? 120_000) / 1000} s`);
    await sleep(250);
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

async function stop(r: Running): Promise<void> {
  const pid = r.child.pid;
  if (pid === undefined || !groupAlive(pid)) return;
  signalGroup(pid, "SIGTERM");
  const deadline = Date.now() + 15_000;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pid)) {
    say(`${r.service.name} did not stop within 15 s; killing it`);
    signalGroup(pid, "SIGKILL");
  }
}

let shutdownPromise: Promise<never> | undefined;
function shutdown(code: number): Promise<never> {
  stopping = true;
  shutdownPromise ??= (async () => {
    say("stopping...");
    for (const r of [...running].reverse()) await stop(r);
    say(code === 0 ? "stopped" : "stopped after a failure");
    process.exit(code);
  })();
  return shutdownPromise;
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (!stopping) say(`${signal} received`);
    void shutdown(0);
  });
}
// If whatever started us dies (e.g. `kill <npm pid>`: npm's sh dies without telling us), stop too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent && !stopping) {
    say("parent process went away");
    void shutdown(0);
  }
}, 1_000).unref();


async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------

if (chainAlreadyRunning) say(`a node already answers at ${rpcUrl}: using it (deploying the token if needed)`);
try {
  for (const [i, service] of services.entries()) {
    say(`starting ${service.name}: ${service.command}`);
    const r = launch(service, i);
    running.push(r);
    await waitReady(r);
    r.ready = true;
    say(`${service.name} is ready`);
  }
} catch (err) {
  if (!stopping) {
    say(`${(err as Error).message}; stopping`);
    await shutdown(1);
  }
  await shutdownPromise;
}

const chainId = Number(
  JSON.parse(
    await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
    }).then((r) => r.text()),
  ).result,
);
const deployment = JSON.parse(await readFile(path.join(repoRoot, "deployments", `${chainId}.json`), "utf8")) as { address: string };
const token = process.env.ADAPTER_AUTH_TOKEN ?? "dev-adapter-token";
const adminKey = process.env.API_ADMIN_KEY ? "<API_ADMIN_KEY>" : "dev-admin-key";
say(
  [
    "================ cashback stack is ready ================",
    `  chain RPC        ${rpcUrl}   (chain id ${chainId})`,
    `  CashbackToken    ${deployment.address}`,
    `  adapter          ${adapterUrl}   (gRPC, gRPC-Web, Connect; /healthz /readyz /metrics)`,
    `  adapter token    Authorization: Bearer ${token}`,
    `  cashback API     ${apiUrl}   (REST /v1; docs ${apiUrl}/docs; OpenAPI ${apiUrl}/openapi.json)`,
    `  API admin key    Authorization: Bearer ${adminKey}`,
    `  try: npx buf curl --protocol grpc --http2-prior-knowledge -H 'Authorization: Bearer ${token}' \\`,
    `         ${adapterUrl}/cashback.blockchain.v1.BlockchainService/GetBalance \\`,
    `         -d '{"address":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}'`,
    "  Ctrl-C stops everything",
    "=========================================================",
  ].join("\n" + " ".repeat(width + 3)),
);
