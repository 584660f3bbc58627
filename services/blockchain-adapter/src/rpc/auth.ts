import { timingSafeEqual, createHash } from "node:crypto";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";

/** A request gate that admits only `Authorization: Bearer <token>`; runs before the body is read. */
export function requireBearer(token: string): (ctx: HandlerContext) => void {
  const expected = digest(token);
  return (ctx) => {
    const header = ctx.requestHeader.get("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) throw new ConnectError("missing bearer token (Authorization: Bearer <token>)", Code.Unauthenticated);
    // Compare fixed-size digests so neither length nor content leaks through timing.
    if (!timingSafeEqual(digest(match[1]!.trim()), expected)) {
      throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    }
  };
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
