import { BaseError, ContractFunctionRevertedError, HttpRequestError, TimeoutError, WebSocketRequestError, decodeErrorResult, type Hex } from "viem";
import { cashbackTokenAbi } from "@cashback/token";
import { BrokenCircuitError, IsolatedCircuitError } from "cockatiel";

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "UND_ERR_SOCKET", "ETIMEDOUT", "EPIPE", "ENOTFOUND"]);

function isConnectionFailure(err: unknown): boolean {
  if (err instanceof HttpRequestError || err instanceof TimeoutError || err instanceof WebSocketRequestError) return true;
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  return NETWORK_CODES.has(String(e?.code)) || NETWORK_CODES.has(String(e?.cause?.code));
}

/** True for failures of the connection to the node (worth retrying and counted by the breaker). */
export function isTransportError(err: unknown): boolean {
  if (err instanceof BaseError) return err.walk(isConnectionFailure) !== null;
  return isConnectionFailure(err);
}

export function isCircuitOpen(err: unknown): boolean {
  return err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError;
}

/** The node refused a transaction because its nonce is not the account's next one. */
export function isNonceError(err: unknown): boolean {
  const text = err instanceof Error ? `${err.message} ${(err as BaseError).details ?? ""}` : String(err);
  return /nonce too (low|high)|nonce has already been used|invalid nonce|Nonce too (low|high)/i.test(text);
}

/** The node already holds these exact signed bytes (a re-send of what it has is no failure). */
export function isAlreadyKnown(err: unknown): boolean {
  const text = err instanceof Error ? `${err.message} ${(err as BaseError).details ?? ""} ${(err as BaseError).shortMessage ?? ""}` : String(err);
  return /already known|known transaction|already imported/i.test(text);
}

/** viem's "no receipt (yet)" for eth_getTransactionReceipt. */
export function isReceiptNotFound(err: unknown): boolean {
  return (err as Error | undefined)?.name === "TransactionReceiptNotFoundError";
}

/** viem's "the node does not know this transaction" for eth_getTransactionByHash. */
export function isTransactionNotFound(err: unknown): boolean {
  return (err as Error | undefined)?.name === "TransactionNotFoundError";
}

/** The signer can not pay for the gas (a node's "insufficient funds for gas * price + value"). */
export function isInsufficientFunds(err: unknown): boolean {
  const text = err instanceof Error ? `${err.message} ${(err as BaseError).details ?? ""}` : String(err);
  return /insufficient funds|sender doesn't have enough funds|InsufficientFundsError/i.test(text) || (err instanceof BaseError && err.walk((e) => (e as Error).name === "InsufficientFundsError") !== null);
}

/** The contract refused a call (a revert in simulation): final for that input, not an outage. */
export class ContractRejectedError extends Error {
  override name = "ContractRejectedError";
  /** The custom error's name, e.g. "MintIdAlreadyUsed", or "execution reverted". */
  readonly reason: string;
  /** The custom error's arguments, e.g. ERC20InsufficientBalance(sender, balance, needed). */
  readonly args: readonly unknown[];
  constructor(reason: string, args: readonly unknown[] = []) {
    super(`the token contract rejected the call: ${reason}`);
    this.reason = reason;
    this.args = args;
  }
}

/** Reads a revert out of a viem error, decoding custom errors with the token's ABI. */
export function asContractRejection(err: unknown): ContractRejectedError | undefined {
  if (!(err instanceof BaseError) || isTransportError(err)) return undefined;
  const withData = err.walk((e) => revertData(e) !== undefined);
  const data = withData ? revertData(withData) : undefined;
  if (data && data.length >= 10) {
    try {
      const decoded = decodeErrorResult({ abi: cashbackTokenAbi, data });
      return new ContractRejectedError(decoded.errorName, (decoded.args ?? []) as readonly unknown[]);
    } catch {
      // not one of ours (e.g. a panic code): fall through
    }
  }
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError) return new ContractRejectedError(reverted.data?.errorName ?? reverted.reason ?? "execution reverted");
  return /revert/i.test(`${err.shortMessage} ${err.details}`) ? new ContractRejectedError("execution reverted") : undefined;
}

function revertData(e: unknown): Hex | undefined {
  const data = (e as { data?: unknown }).data;
  if (typeof data === "string" && data.startsWith("0x")) return data as Hex;
  const nested = (data as { data?: unknown } | undefined)?.data;
  return typeof nested === "string" && nested.startsWith("0x") ? (nested as Hex) : undefined;
}

/**
 * One line of an error's message, at most 300 characters: enough for a log or a client, without
 * viem's long dumps. Prisma's messages start with a blank line and the call site; their last line
 * says what happened. Never throws, whatever is thrown at it.
 */
export function shortMessage(err: unknown): string {
  try {
    let text: string;
    if (err instanceof BaseError) text = err.shortMessage;
    else if (err instanceof Error && typeof err.message === "string") {
      const lines = err.message.split("\n").map((l) => l.trim()).filter(Boolean);
      text = (/^Invalid `/.test(lines[0] ?? "") ? lines.at(-1) : lines[0]) ?? err.name;
    } else text = String(err);
    return text.length > 300 ? `${text.slice(0, 300)}…` : text;
  } catch {
    return "(unprintable error)";
  }
}
