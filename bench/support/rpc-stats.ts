import http from "node:http";
import type { AddressInfo } from "node:net";

export interface MethodStats {
  calls: number;
  /** Summed wall time of the forwarded requests (they overlap when concurrent). */
  totalMs: number;
}

/**
 * A JSON-RPC forwarding proxy on 127.0.0.1 that counts the calls the adapter makes, by method,
 * and how long the node took to answer them. Diagnostic only (BENCH_RPC_STATS=1): the extra
 * hop costs a little time per call.
 */
export async function startRpcStatsProxy(targetUrl: string) {
  if (!/^http:\/\/127\.0\.0\.1:\d+\/?$/.test(targetUrl)) throw new Error(`refusing to proxy to ${targetUrl}: 127.0.0.1 only`);
  let stats = new Map<string, MethodStats>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const started = performance.now();
      try {
        const upstream = await fetch(targetUrl, { method: "POST", headers: { "content-type": "application/json" }, body });
        const text = await upstream.text();
        record(body, performance.now() - started);
        res.writeHead(upstream.status, { "content-type": "application/json" });
        res.end(text);
      } catch (err) {
        res.writeHead(502);
        res.end(String(err));
      }
    });
  });
  server.keepAliveTimeout = 1_000;

  function record(body: Buffer, ms: number) {
    let methods: string[];
    try {
      const parsed = JSON.parse(body.toString("utf8")) as { method?: string } | { method?: string }[];
      methods = (Array.isArray(parsed) ? parsed : [parsed]).map((m) => m.method ?? "?");
    } catch {
      methods = ["<unparsable>"];
    }
    for (const method of methods) {
      const s = stats.get(method) ?? { calls: 0, totalMs: 0 };
      s.calls++;
      s.totalMs += ms / methods.length;
      stats.set(method, s);
    }
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    /** Returns the counts since the last call and starts counting afresh. */
    take(): Map<string, MethodStats> {
      const taken = stats;
      stats = new Map();
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
