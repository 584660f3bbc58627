import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema, TransactionStatus } from "@cashback/proto/blockchain/v1";
import type { RequestEvent } from "../requests/machine.ts";

/**
 * How the consumer reads the blockchain adapter's answers (docs/blockchain-adapter.md), as pure
 * functions from an answer to a state-machine event.
 */

/** What a MintToken/MintBatch entry/Clawback/GetTransaction answer carries. */
export interface StatusAnswer {
  status: TransactionStatus;
  txHash: string;
  blockNumber: bigint;
  error?: { retryable: boolean; reason: string; message: string };
}

/** Network failures before the request left this process: the adapter cannot have seen it. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);

/** Codes that are a verdict on the request itself when the adapter sends them. */
const FINAL_CODES = new Set([Code.InvalidArgument, Code.AlreadyExists, Code.FailedPrecondition, Code.OutOfRange]);

/**
 * A response's status: CONFIRMED and SUBMITTED as they are; FAILED is final only when its error
 * says retryable = false (the contract), otherwise it is treated as a transient failure.
 */
export function eventFromStatus(answer: StatusAnswer): RequestEvent {
  switch (answer.status) {
    case TransactionStatus.CONFIRMED:
      // What the result event will carry: a confirmation without its transaction is not one.
      if (!/^0x[0-9a-fA-F]{64}$/.test(answer.txHash) || answer.blockNumber <= 0n) {
        return { type: "TRANSIENT", reason: "BAD_RESPONSE", message: `CONFIRMED without a transaction hash and block (${answer.txHash || "none"}, ${answer.blockNumber})`, mayHaveReached: true };
      }
      return { type: "CONFIRMED", txHash: answer.txHash.toLowerCase(), blockNumber: answer.blockNumber };
    case TransactionStatus.SUBMITTED:
      return { type: "SUBMITTED", txHash: answer.txHash || null };
    case TransactionStatus.FAILED: {
      const reason = reasonCode(answer.error?.reason, "FAILED");
      const message = answer.error?.message || "the adapter reports the transaction failed";
      if (answer.error?.retryable) return { type: "TRANSIENT", reason, message, mayHaveReached: true };
      return { type: "REFUSED", reason, message };
    }
    default:
      return { type: "TRANSIENT", reason: "UNKNOWN_STATUS", message: `the adapter answered status ${answer.status}`, mayHaveReached: true };
  }
}

/**
 * A failed call. With the adapter's ErrorDetail, its `retryable` decides; without one (the
 * network, a proxy, a crash mid-call) the gRPC code does. Retryable failures remember whether
 * the call may have reached the adapter: only a connection that never opened proves it did not.
 */
export function eventFromError(err: unknown): RequestEvent {
  const e = ConnectError.from(err);
  const [detail] = e.findDetails(ErrorDetailSchema);
  const message = (detail?.message || e.rawMessage || e.message).slice(0, 500);
  if (e.code === Code.NotFound) return { type: "NOT_FOUND" };
  if (detail) {
    const reason = reasonCode(detail.reason, codeName(e.code));
    if (!detail.retryable) return { type: "REFUSED", reason, message };
    // The adapter refuses new work while its breaker is open, before recording anything.
    return { type: "TRANSIENT", reason, message, mayHaveReached: reason !== "CIRCUIT_OPEN" };
  }
  if (FINAL_CODES.has(e.code) && e.isWireError) return { type: "REFUSED", reason: codeName(e.code), message };
  const cause = (e.cause as { code?: unknown } | undefined)?.code;
  if (typeof cause === "string" && NOT_SENT.has(cause)) {
    return { type: "TRANSIENT", reason: "ADAPTER_UNREACHABLE", message, mayHaveReached: false };
  }
  // Refused at the door (token, an adapter that lacks the RPC): an operator's fix, so we wait.
  if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied || e.code === Code.Unimplemented) {
    return { type: "TRANSIENT", reason: codeName(e.code), message, mayHaveReached: false };
  }
  return { type: "TRANSIENT", reason: codeName(e.code), message, mayHaveReached: true };
}

/** gRPC code name as a reason: Code.DeadlineExceeded -> "DEADLINE_EXCEEDED". */
export function codeName(code: Code): string {
  const name = Code[code] ?? "UNKNOWN";
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Reasons travel in events as ^[A-Z][A-Z0-9_]{0,63}$; anything else is replaced. */
export function reasonCode(reason: string | undefined, fallback: string): string {
  return reason && /^[A-Z][A-Z0-9_]{0,63}$/.test(reason) ? reason : fallback;
}
