export { contextFrom, currentTraceId, currentTraceparent, inSpan, startTelemetry, traceIdOf, traceparentInterceptor, validTraceparent, type Telemetry, type TelemetryOptions } from "./telemetry.ts";
export { context, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from "@opentelemetry/api";
export { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
