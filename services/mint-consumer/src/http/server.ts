import http from "node:http";
import type net from "node:net";
import type { Registry } from "prom-client";

/**
 * The consumer's only HTTP: GET /healthz (the process is up), GET /readyz (it can do its work:
 * database, NATS and adapter reachable), GET /metrics (Prometheus).
 */
export async function startHttpServer(opts: {
  host: string;
  port: number;
  metrics: Registry;
  /** Names of what is not ready; empty when ready. */
  notReady: () => Promise<string[]>;
  /** Refreshes gauges before a scrape. */
  beforeScrape?: () => Promise<void>;
}): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "").split("?")[0];
      if (req.method !== "GET") return send(res, 405, "text/plain", "method not allowed\n");
      if (path === "/healthz") return send(res, 200, "text/plain", "ok\n");
      if (path === "/readyz") {
        const missing = await opts.notReady().catch((err: unknown) => [`readiness check failed: ${String(err)}`]);
        return missing.length === 0 ? send(res, 200, "text/plain", "ready\n") : send(res, 503, "text/plain", `not ready: ${missing.join(", ")}\n`);
      }
      if (path === "/metrics") {
        await opts.beforeScrape?.().catch(() => {});
        return send(res, 200, opts.metrics.contentType, await opts.metrics.metrics());
      }
      send(res, 404, "text/plain", "not found\n");
    })().catch(() => send(res, 500, "text/plain", "internal error\n"));
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string) {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { "content-type": type });
  res.end(body);
}
