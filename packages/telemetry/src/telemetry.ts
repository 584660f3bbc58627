import { context, propagation, trace, type Context, type Span, type SpanOptions, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter, type SpanProcessor } from "@opentelemetry/sdk-trace";

export interface TelemetryOptions {
  /** service.name of the spans (OTEL_SERVICE_NAME overrides it). */
  service: string;
  env?: Record<string, string | undefined>;
  /** Export to this exporter, span by span (tests: an InMemorySpanExporter); overrides the env. */
  exporter?: SpanExporter;
}

export interface Telemetry {
  tracer: Tracer;
  /** Whether spans leave the process (an exporter given, or OTEL_EXPORTER_OTLP_ENDPOINT set). */
  exporting: boolean;
  /** Flushes what is buffered and stops exporting. */
  shutdown(): Promise<void>;
}

let installed: { provider: TracerProvider; processors: SpanProcessor[] } | undefined;

/**
 * Installs tracing for this process: the AsyncLocalStorage context (so the active span follows
 * async work and the logger can read its trace id), the W3C trace-context propagator, and a
 * tracer provider. Spans always get ids (trace ids in logs, traceparent handed on); they are
 * exported only when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set,
 * through OTLP/HTTP, which reads the standard OTEL_EXPORTER_OTLP_* variables itself.
 *
 * OTEL_SDK_DISABLED=true installs nothing (the API's no-op tracer: no ids, nothing propagated).
 *
 * The OpenTelemetry API keeps one provider per process: a second call (several services in one
 * test process) shares the first one's provider and adds its exporter, if any.
 */
export function startTelemetry(opts: TelemetryOptions): Telemetry {
  const env = opts.env ?? process.env;
  // The standard switch: no SDK at all (no trace ids in logs, no traceparent handed on).
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") {
    return { tracer: trace.getTracer(opts.service), exporting: false, shutdown: async () => {} };
  }
  // As the specification says: the traces endpoint as given, or the base endpoint + /v1/traces.
  const tracesUrl = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || (env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.trim().replace(/\/+$/, "")}/v1/traces` : undefined);
  const processors: SpanProcessor[] = [];
  if (opts.exporter) processors.push(new SimpleSpanProcessor({ exporter: opts.exporter }));
  else if (tracesUrl) processors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: tracesUrl }) }));

  if (!installed) {
    const own: SpanProcessor[] = [];
    // The provider's list is fixed at construction: one forwarding processor lets later calls add theirs.
    const forward: SpanProcessor = {
      onStart: (span, ctx) => own.forEach((p) => p.onStart(span, ctx)),
      onEnd: (span) => own.forEach((p) => p.onEnd(span)),
      forceFlush: async () => void (await Promise.all(own.map((p) => p.forceFlush()))),
      shutdown: async () => void (await Promise.all(own.map((p) => p.shutdown()))),
    };
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME?.trim() || opts.service }),
      spanProcessors: [forward],
    });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    installed = { provider, processors: own };
  }
  const shared = installed;
  shared.processors.push(...processors);
  return {
    tracer: trace.getTracer(opts.service),
    exporting: processors.length > 0,
    async shutdown() {
      for (const p of processors) {
        await p.shutdown().catch(() => {});
        const i = shared.processors.indexOf(p);
        if (i >= 0) shared.processors.splice(i, 1);
      }
    },
  };
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** A well-formed W3C traceparent (version 00, ids not all zero), or undefined. */
export function validTraceparent(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length !== 55) return undefined;
  const m = TRACEPARENT.exec(value);
  return m && m[1] !== ZERO_TRACE && m[2] !== ZERO_SPAN ? value : undefined;
}

/** The trace id (32 hex digits) of a traceparent. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return validTraceparent(traceparent)?.slice(3, 35);
}

/** The context a traceparent continues (the active one when it is missing or malformed). */
export function contextFrom(traceparent: string | undefined, base: Context = context.active()): Context {
  const valid = validTraceparent(traceparent);
  return valid ? propagation.extract(base, { traceparent: valid }) : base;
}

/** The traceparent of the active span (what to hand on downstream), or undefined outside one. */
export function currentTraceparent(ctx: Context = context.active()): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return validTraceparent(carrier.traceparent);
}

/** The trace id of the active span, for log lines. */
export function currentTraceId(ctx: Context = context.active()): string | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && sc.traceId !== ZERO_TRACE ? sc.traceId : undefined;
}

/**
 * Runs `fn` in a new span, a child of `parent` (a traceparent) when given, else of the active
 * span; ends it when `fn` settles, recording a thrown error.
 */
export async function inSpan<T>(tracer: Tracer, name: string, opts: SpanOptions & { parent?: string }, fn: (span: Span) => Promise<T>): Promise<T> {
  const parentCtx = opts.parent !== undefined ? contextFrom(opts.parent, context.active()) : context.active();
  const span = tracer.startSpan(name, opts, parentCtx);
  try {
    return await context.with(trace.setSpan(parentCtx, span), () => fn(span));
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: 2 });
    throw err;
  } finally {
    span.end();
  }
}

/**
 * A Connect (gRPC) client interceptor that sends the active span's W3C traceparent as call
 * metadata, so the server continues the caller's trace.
 */
export function traceparentInterceptor<Req extends { header: Headers }, Res>(next: (req: Req) => Promise<Res>): (req: Req) => Promise<Res> {
  return (req) => {
    const tp = currentTraceparent();
    if (tp) req.header.set("traceparent", tp);
    return next(req);
  };
}
