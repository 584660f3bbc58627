import type { HandlerContext } from "@connectrpc/connect";
import type { Logger } from "@cashback/runtime";
import { currentTraceparent, inSpan, SpanKind, trace, validTraceparent } from "@cashback/telemetry";

const tracer = () => trace.getTracer("blockchain-adapter");

/**
 * Runs one RPC in a server span that continues the caller's `traceparent` metadata (the
 * consumer's call, itself in the purchase's trace), so every line logged meanwhile carries the
 * purchase's trace id and the records written store its traceparent.
 */
export function inRpcSpan<R>(rpc: string, ctx: HandlerContext, fn: () => Promise<R>): Promise<R> {
  const header = ctx.requestHeader.get("traceparent") ?? undefined;
  return inSpan(tracer(), rpc, { kind: SpanKind.SERVER, parent: header, attributes: { "rpc.system": "grpc", "rpc.method": rpc } }, () => fn());
}

/**
 * The traceparent stored with a mint or clawback: the one its caller put in the entry's metadata
 * (a MintBatch carries many purchases' traces), else the call's own.
 */
export function requestTraceparent(metadata: Record<string, string>): string | null {
  return validTraceparent(metadata.traceparent) ?? currentTraceparent() ?? null;
}

/**
 * One line per answered mint or clawback call, in its trace: at debug for the calls of one mint
 * each (MintToken), whose line per call cost CPU at pipeline rates; at info for the others.
 */
export function logAnswer(logger: Logger, rpc: string, fields: Record<string, unknown>, level: "info" | "debug" = "info"): void {
  if (logger.isLevelEnabled(level)) logger[level]({ rpc, ...fields }, `${rpc} answered`);
}
