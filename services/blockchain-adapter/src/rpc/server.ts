import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/**
 * One port for gRPC (HTTP/2 cleartext), gRPC-Web and Connect (HTTP/1.1 or HTTP/2), plus plain
 * GET /healthz, /readyz and /metrics. Node's h2c server can not fall back to HTTP/1.1, so each
 * connection's first bytes pick the server: the HTTP/2 preface starts with "PRI".
 */
export async function startServer(opts: {
  host: string;
  port: number;
  routes: (router: ConnectRouter) => void;
  metrics: Registry;
  ready: () => Promise<boolean>;
}): Promise<{ port: number; close: () => Promise<void> }> {
  const plain: Handler = (req, res) => {
    void (async () => {
      const path = (req.url ?? "").split("?")[0];
      if (req.method === "GET" && path === "/healthz") return send(res, 200, "text/plain", "ok\n");
      if (req.method === "GET" && path === "/readyz") {
        const ready = await opts.ready().catch(() => false);
        return send(res, ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n");
      }
      if (req.method === "GET" && path === "/metrics") return send(res, 200, opts.metrics.contentType, await opts.metrics.metrics());
      send(res, 404, "text/plain", "not found\n");
    })();
  };
  const handler = connectNodeAdapter({ routes: opts.routes, fallback: plain as never }) as Handler;
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    // A peer that resets before sending anything (a TCP health check, a port scan) must not
    // become an uncaught error; the HTTP servers add their own handlers once they own it.
    socket.on("error", () => socket.destroy());
    socket.setTimeout(10_000, () => socket.destroy()); // silent connections are not kept
    socket.setKeepAlive(true, 60_000); // half-open peers are found out
    let head = Buffer.alloc(0);
    const sniff = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const start = head.subarray(0, 3).toString("latin1");
      if (head.length < 3 && "PRI".startsWith(start)) return; // too short to tell yet
      socket.off("data", sniff);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(head);
      if (start === "PRI") {
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume(); // the HTTP/1 parser reads in flowing mode
      }
    };
    socket.on("data", sniff);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, resolve);
  });
  // The HTTP/1 server never listens itself; without this it never starts the timers that
  // enforce headersTimeout/requestTimeout, nor tracks connections for closeIdleConnections().
  h1.emit("listening");
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Finish in-flight calls (HTTP/2 GOAWAY lets open streams end), then cut what is left.
        h1.closeIdleConnections();
        for (const session of sessions) session.close();
        setTimeout(() => sockets.forEach((s) => s.destroy()), 5_000).unref();
      }),
  };
}

function send(res: http.ServerResponse | http2.Http2ServerResponse, status: number, type: string, body: string) {
  (res as http.ServerResponse).writeHead(status, { "content-type": type });
  (res as http.ServerResponse).end(body);
}
