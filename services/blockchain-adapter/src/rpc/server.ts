import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** What one client may cost the server; every limit has a safe default in config.ts. */
export interface ServerLimits {
  /** Largest request message, compressed and after decompression (and largest response). */
  readMaxBytes: number;
  /** Request headers (HTTP/1.1 header block, HTTP/2 header list). */
  maxHeaderBytes: number;
  /** Open connections; more are closed as soon as they are accepted. */
  maxConnections: number;
  /** Concurrent HTTP/2 streams per connection. */
  maxStreamsPerConnection: number;
  /** From accept to the first request's headers (HTTP/1.1) or first stream (HTTP/2). */
  handshakeTimeoutMs: number;
  /** From a request's start until its body has fully arrived. */
  requestTimeoutMs: number;
  /** A connection with no request in flight is closed after this long. */
  idleTimeoutMs: number;
}

/**
 * One port for gRPC (HTTP/2 cleartext), gRPC-Web and Connect (HTTP/1.1 or HTTP/2), plus plain
 * GET /healthz, /readyz and /metrics. Node's h2c server can not fall back to HTTP/1.1, so each
 * connection's first bytes pick the server: the HTTP/2 preface starts with "PRI".
 *
 * Nothing a client does holds resources without bound: connections are counted, a connection
 * that does not get to a request in time is closed (also one that sent only the HTTP/2
 * preface), a request body must arrive in time, idle connections are closed, and messages are
 * limited before and after decompression.
 */
export async function startServer(opts: {
  host: string;
  port: number;
  routes: (router: ConnectRouter) => void;
  metrics: Registry;
  ready: () => Promise<boolean>;
  limits: ServerLimits;
  connections?: { open: { inc(): void; dec(): void }; rejected: { inc(): void } };
}): Promise<{ port: number; close: () => Promise<void> }> {
  const { limits } = opts;
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
    })().catch(() => res.destroy());
  };
  const connect = connectNodeAdapter({
    routes: opts.routes,
    fallback: plain as never,
    readMaxBytes: limits.readMaxBytes,
    writeMaxBytes: limits.readMaxBytes,
  }) as Handler;

  const h1 = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.handshakeTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      // How often the two timeouts above are checked (Node's default is 30 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.handshakeTimeoutMs / 2))),
    },
    connect,
  );
  const h2 = http2.createServer(
    { settings: { maxConcurrentStreams: limits.maxStreamsPerConnection, maxHeaderListSize: limits.maxHeaderBytes } },
    withStreamBodyDeadline(connect, limits.requestTimeoutMs),
  );
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    guardSession(session, limits);
    session.on("close", () => sessions.delete(session));
  });
  // A session error is the client's doing (Node's HTTP/1.1 server already answers bad requests
  // with 400/408/431 and closes them).
  h2.on("sessionError", () => {});

  const server = net.createServer((socket) => {
    sockets.add(socket);
    opts.connections?.open.inc();
    socket.on("close", () => {
      sockets.delete(socket);
      opts.connections?.open.dec();
    });
    // A peer that resets before sending anything (a TCP health check, a port scan) must not
    // become an uncaught error; the HTTP servers add their own handlers once they own it.
    socket.on("error", () => socket.destroy());
    socket.setTimeout(limits.handshakeTimeoutMs, () => socket.destroy()); // silent connections are not kept
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
  server.maxConnections = limits.maxConnections;
  server.on("drop", () => opts.connections?.rejected.inc());
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

/**
 * HTTP/2 has no headersTimeout/keepAliveTimeout of its own: a session must open its first stream
 * within the handshake timeout (a client that sends the preface and then nothing is cut), and a
 * session without open streams is closed (GOAWAY) after the idle timeout.
 */
function guardSession(session: http2.ServerHttp2Session, limits: ServerLimits): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined = setTimeout(() => session.destroy(), limits.handshakeTimeoutMs);
  const idle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      session.close();
      // A peer that ignores GOAWAY and keeps the connection open is cut.
      setTimeout(() => session.destroy(), limits.handshakeTimeoutMs).unref();
    }, limits.idleTimeoutMs);
  };
  session.on("stream", (stream) => {
    open++;
    clearTimeout(timer);
    timer = undefined;
    stream.on("close", () => {
      if (--open === 0 && !session.closed && !session.destroyed) idle();
    });
  });
  session.on("close", () => clearTimeout(timer));
}

/**
 * An HTTP/2 stream whose request body has not fully arrived within `ms` is cancelled (Node
 * enforces requestTimeout only for HTTP/1.1). A request without a body (END_STREAM on its
 * headers) needs no deadline; a long-running call is not affected once its body is in.
 */
function withStreamBodyDeadline(handler: Handler, ms: number): Handler {
  return (req, res) => {
    const stream = (req as http2.Http2ServerRequest).stream;
    if (stream && !stream.endAfterHeaders) {
      const timer = setTimeout(() => {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      }, ms);
      const clear = () => clearTimeout(timer);
      req.once("end", clear);
      stream.once("close", clear);
    }
    handler(req, res);
  };
}

function send(res: http.ServerResponse | http2.Http2ServerResponse, status: number, type: string, body: string) {
  (res as http.ServerResponse).writeHead(status, { "content-type": type });
  (res as http.ServerResponse).end(body);
}
