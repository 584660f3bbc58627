/**
 * Errors the adapter's own logic raises, with what a caller needs to know: the kind (mapped to a
 * gRPC code by the transport), a stable reason, and whether trying again may succeed.
 */
export type ErrorKind = "invalid_argument" | "already_exists" | "not_found" | "unavailable" | "internal";

export class AdapterError extends Error {
  override name = "AdapterError";
  readonly kind: ErrorKind;
  readonly reason: string;
  readonly retryable: boolean;

  constructor(kind: ErrorKind, reason: string, message: string, retryable = kind === "unavailable") {
    super(message);
    this.kind = kind;
    this.reason = reason;
    this.retryable = retryable;
  }
}

export const invalidArgument = (message: string) => new AdapterError("invalid_argument", "INVALID_ARGUMENT", message);
