// Helpers for the adapter's fault and hostile-client tests: callers that retry until a final
// answer, a JSON-RPC interceptor that can SIGKILL the adapter right after a broadcast, the chain
// checked without any of the adapter's code, and the child process's memory.
import http from "node:http";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BlockchainService, ErrorDetailSchema, TransactionStatus } from "@cashback/proto/blockchain/v1";
import { cashbackTokenAbi } from "@cashback/token";
import { adapterProcess as testingAdapterProcess, freePort, TEST_ADAPTER_TOKEN, type TestChain } from "@cashback/testing";
import { keccak256, stringToHex, type Address, type Hex } from "viem";

export type AdapterClient = Client<typeof BlockchainService>;

/** The adapter as a separate process (packages/testing's adapterProcess, not started), with a client. */
export async function adapterProcess(opts: Parameters<typeof testingAdapterProcess>[0]) {
  const proc = await testingAdapterProcess(opts);
  return Object.assign(proc, { client: () => adapterClient(proc.url) });
}

export function adapterClient(baseUrl: string): AdapterClient {
  return createClient(
    BlockchainService,
    createGrpcTransport({
      baseUrl,
      interceptors: [
        (next) => async (req) => {
          req.header.set("authorization", `Bearer ${TEST_ADAPTER_TOKEN}`);
          return next(req);
        },
      ],
    }),
  );
}

const TRANSPORT_FAILURES = new Set([Code.Unavailable, Code.Aborted, Code.Canceled, Code.DeadlineExceeded]);

/** What callers saw: each error by code/reason and whether it was retryable, and when. */
export class CallerLog {
  readonly errors: { at: number; code: string; reason: string; retryable: boolean; message: string }[] = [];
  readonly confirmed = new Map<string, { txHash: string; at: number }>();
  readonly failed = new Map<string, string>();

  record(err: unknown): void {
    const e = ConnectError.from(err);
    const detail = e.findDetails(ErrorDetailSchema)[0];
    // The adapter puts an ErrorDetail on every error it answers. Without one, the call never got
    // an answer: the client's transport reports a refused connection as UNAVAILABLE, a connection
    // reset as ABORTED, an HTTP/2 session that died mid-call as CANCELED, its own deadline as
    // DEADLINE_EXCEEDED; all of them mean "try again with the same key". Anything else is not.
    const retryable = detail ? detail.retryable : TRANSPORT_FAILURES.has(e.code);
    this.errors.push({ at: Date.now(), code: Code[e.code], reason: detail?.reason ?? "", retryable, message: e.rawMessage.slice(0, 200) });
  }

  errorsSince(t: number): number {
    return this.errors.filter((e) => e.at >= t).length;
  }

  nonRetryable() {
    return this.errors.filter((e) => !e.retryable);
  }

  /** "UNAVAILABLE/CIRCUIT_OPEN": 12, ... */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.errors) {
      const k = `${e.code}${e.reason ? `/${e.reason}` : ""}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }
}

/**
 * `concurrency` callers share `keys`; each calls MintToken with the same key (and parameters)
 * until it gets a final answer (CONFIRMED or FAILED), whatever happens in between, as the mint
 * consumer does. `client()` is asked again after each error (the adapter may have restarted).
 */
export function mintUntilFinal(opts: {
  keys: string[];
  to: (key: string) => Address;
  amount: (key: string) => bigint;
  concurrency: number;
  client: () => AdapterClient;
  log: CallerLog;
  deadline: number;
}): Promise<void> {
  const queue = [...opts.keys];
  const worker = async () => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      let attempt = 0;
      for (;;) {
        if (Date.now() > opts.deadline) throw new Error(`key ${key} has no final answer by the deadline`);
        try {
          const res = await opts.client().mintToken(
            { idempotencyKey: key, to: opts.to(key), amountWei: opts.amount(key).toString() },
            { timeoutMs: 30_000 },
          );
          if (res.status === TransactionStatus.CONFIRMED) {
            opts.log.confirmed.set(key, { txHash: res.txHash, at: Date.now() });
            break;
          }
          if (res.status === TransactionStatus.FAILED) {
            opts.log.failed.set(key, `${res.error?.reason}: ${res.error?.message}`);
            break;
          }
          attempt = 0; // SUBMITTED: it is on its way; ask again soon
          await sleep(50);
        } catch (err) {
          opts.log.record(err);
          attempt++;
          await sleep(Math.min(1_000, 25 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2));
        }
      }
    }
  };
  return Promise.all(Array.from({ length: opts.concurrency }, worker)).then(() => undefined);
}

/** Waits until `condition` holds (polled), or throws after `timeoutMs` naming `what`. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export const mintIdOf = (key: string): Hex => keccak256(stringToHex(key));

/**
 * The CashbackMinted events for these keys' mint ids, read straight from the node with the test
 * chain's own viem client (no adapter code): key -> the transactions that minted it.
 */
export async function mintedOnChain(chain: TestChain, keys: string[]): Promise<Map<string, { txHash: string; amount: bigint; to: string }[]>> {
  const byId = new Map(keys.map((k) => [mintIdOf(k), k]));
  const found = new Map<string, { txHash: string; amount: bigint; to: string }[]>(keys.map((k) => [k, []]));
  const ids = [...byId.keys()];
  for (let i = 0; i < ids.length; i += 100) {
    const logs = await chain.reader.getContractEvents({
      address: chain.token,
      abi: cashbackTokenAbi,
      eventName: "CashbackMinted",
      args: { mintId: ids.slice(i, i + 100) },
      fromBlock: chain.deployBlock,
      toBlock: "latest",
    });
    for (const log of logs) {
      const key = byId.get(log.args.mintId!);
      if (key) found.get(key)!.push({ txHash: log.transactionHash, amount: log.args.amount!, to: log.args.to! });
    }
  }
  return found;
}

/** Resident memory of a process in bytes (VmRSS), or undefined when it is gone. */
export function rssOf(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every 100 ms; `peak` is the highest seen since start or reset. */
export function rssSampler(pid: () => number | undefined) {
  let peak = 0;
  const sample = () => {
    const rss = rssOf(pid());
    if (rss !== undefined && rss > peak) peak = rss;
    return rss;
  };
  const timer = setInterval(sample, 100);
  timer.unref();
  return {
    get peak() {
      sample();
      return peak;
    },
    now: () => sample(),
    reset() {
      peak = 0;
    },
    stop: () => clearInterval(timer),
  };
}

/** A counter or gauge from the adapter's /metrics (summed over labels matching `labels`). */
export async function metric(baseUrl: string, name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (labels && !line.includes(labels)) continue;
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

export const mb = (bytes: number | undefined) => (bytes === undefined ? "?" : `${(bytes / 1024 / 1024).toFixed(0)} MB`);

/**
 * An HTTP JSON-RPC proxy in front of the node. Armed with `killOnBroadcast(fn)`, it forwards the
 * next eth_sendRawTransaction to the node, lets the node accept it (and, under automine, mine it),
 * then runs `fn` (SIGKILL the adapter) before the adapter hears back: the adapter dies exactly
 * between broadcast and commit.
 */
export async function startRpcInterceptor(targetUrl: string) {
  let onBroadcast: (() => Promise<void>) | undefined;
  let kills = 0;
  const methods = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString();
        for (const [, m] of body.matchAll(/"method":"(\w+)"/g)) methods.set(m!, (methods.get(m!) ?? 0) + 1);
        const upstream = await fetch(targetUrl, { method: "POST", headers: { "content-type": "application/json" }, body }).catch(() => undefined);
        if (!upstream) return res.destroy();
        const answer = await upstream.text();
        const hook = onBroadcast;
        if (hook && body.includes('"eth_sendRawTransaction"')) {
          onBroadcast = undefined;
          kills++;
          await hook();
          return res.destroy();
        }
        res.writeHead(upstream.status, { "content-type": "application/json" });
        res.end(answer);
      })().catch(() => res.destroy());
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    killOnBroadcast(fn: () => Promise<void>) {
      onBroadcast = fn;
    },
    get armed() {
      return onBroadcast !== undefined;
    },
    get kills() {
      return kills;
    },
    /** How many requests for `method` went through so far. */
    calls(method: string): number {
      return methods.get(method) ?? 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * What a process really holds: its inspector (opened the way an operator would, SIGUSR1 on the
 * port given with --inspect-port at launch) runs a full garbage collection, then reports
 * process.memoryUsage(). Without this, RSS mostly says how lazily V8 has collected so far.
 */
export async function retainedMemory(pid: number, inspectPort: number): Promise<{ rss: number; heapUsed: number; external: number }> {
  process.kill(pid, "SIGUSR1"); // opens the inspector if it is not open yet
  let target: { webSocketDebuggerUrl: string } | undefined;
  await until("the inspector", async () => {
    target = await fetch(`http://127.0.0.1:${inspectPort}/json/list`)
      .then((r) => r.json() as Promise<{ webSocketDebuggerUrl: string }[]>)
      .then((list) => list[0])
      .catch(() => undefined);
    return target !== undefined;
  });
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  let id = 0;
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<{ result?: { result?: { value?: unknown } } }>((resolve) => {
      const mine = ++id;
      ws.addEventListener("message", function onMessage(event) {
        const msg = JSON.parse(String(event.data)) as { id?: number };
        if (msg.id !== mine) return;
        ws.removeEventListener("message", onMessage);
        resolve(msg as never);
      });
      ws.send(JSON.stringify({ id: mine, method, params }));
    });
  try {
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.collectGarbage"); // a second pass frees what the first one's finalizers released
    const res = await call("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())", returnByValue: true });
    const usage = JSON.parse(String(res.result?.result?.value)) as { rss: number; heapUsed: number; external: number };
    return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external };
  } finally {
    ws.close();
  }
}
