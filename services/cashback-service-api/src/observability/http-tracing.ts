import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { context, contextFrom, SpanKind, SpanStatusCode, trace, type Tracer } from "@cashback/telemetry";

/**
 * A node HTTP server whose every request runs in a server span: it continues the caller's W3C
 * `traceparent` (when well-formed) or starts a trace, and the span is the active context for
 * everything the request does (the log lines it writes carry its trace id; the events it writes
 * carry its traceparent). The answer names the trace in `x-trace-id`, so a caller can find it
 * in the logs. For fastify's `serverFactory`.
 */
export function tracedServer(tracer: Tracer) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
    http.createServer((req, res) => {
      const header = req.headers.traceparent;
      const parent = contextFrom(typeof header === "string" ? header : undefined, context.active());
      const span = tracer.startSpan(`${req.method ?? "HTTP"}`, { kind: SpanKind.SERVER, attributes: { "http.request.method": req.method ?? "" } }, parent);
      const ctx = trace.setSpan(parent, span);
      res.setHeader("x-trace-id", span.spanContext().traceId);
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        span.setAttribute("http.response.status_code", res.statusCode);
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      };
      res.once("finish", end);
      res.once("close", end);
      // The body arrives in later events: bind the emitters so their listeners run in the span too.
      context.bind(ctx, req);
      context.bind(ctx, res);
      context.with(ctx, () => handler(req, res));
    });
}

/** Names the active server span after the matched route ("POST /v1/purchases"), once it is known. */
export function nameServerSpan(method: string, route: string | undefined): void {
  const span = trace.getActiveSpan();
  if (span && route) {
    span.updateName(`${method} ${route}`);
    span.setAttribute("http.route", route);
  }
}
