import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";

/**
 * connect-es answers a request it can not decode with INTERNAL (@connectrpc/connect 2.x:
 * `parse binary: …` in protocol/serialization.js, `decompression failed` for a corrupt gzip or
 * brotli body, `received compressed envelope…` for a compressed gRPC message without an
 * encoding). Those are the client's fault, and INTERNAL would tell it "our bug, do not retry"
 * while hiding that its request was wrong: they are INVALID_ARGUMENT.
 *
 * The translation happens where connect-es reports them: each of its protocol handlers aborts the
 * call's context with the error (`context.abort(e)`) right before writing it to the wire, and the
 * abort event is dispatched synchronously, so a listener installed by the request gate corrects
 * the code in time. Errors from our own handlers are never INTERNAL with these messages.
 */
const UNDECODABLE_REQUEST = /^(parse binary|decompression failed|received compressed envelope|invalid envelope)/;

export function undecodableRequestsAreInvalidArgument(ctx: HandlerContext): void {
  ctx.signal.addEventListener(
    "abort",
    () => {
      const reason: unknown = ctx.signal.reason;
      if (reason instanceof ConnectError && reason.code === Code.Internal && UNDECODABLE_REQUEST.test(reason.rawMessage)) {
        (reason as { code: Code }).code = Code.InvalidArgument;
        reason.message = `[invalid_argument] ${reason.rawMessage}`;
      }
    },
    { once: true },
  );
}

/** Runs request gates in order (each may throw a ConnectError to end the call unread). */
export function gates(...all: ((ctx: HandlerContext) => void)[]): (ctx: HandlerContext) => void {
  return (ctx) => {
    for (const gate of all) gate(ctx);
  };
}

const ACCEPTED_ENCODINGS = new Set(["identity", "gzip", "br"]);

/**
 * A Connect request body in an encoding we do not accept is the caller's mistake: connect-es
 * answers it UNIMPLEMENTED (HTTP 501), which reads as a server fault to every HTTP proxy and
 * alert; answered INVALID_ARGUMENT (400) instead, before the body is read. (gRPC's own
 * `grpc-encoding` keeps its protocol's answer.)
 */
export function unknownEncodingIsInvalidArgument(ctx: HandlerContext): void {
  const encoding = ctx.requestHeader.get("content-encoding");
  if (encoding !== null && !ACCEPTED_ENCODINGS.has(encoding.trim().toLowerCase())) {
    throw new ConnectError(`content-encoding "${encoding.slice(0, 40)}" is not accepted (gzip, br or none)`, Code.InvalidArgument);
  }
}
