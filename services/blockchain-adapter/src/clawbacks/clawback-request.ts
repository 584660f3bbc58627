import { getAddress, type Address, type Hex } from "viem";
import { DEFAULT_METADATA_LIMITS, idFor, parseAddress, parseAmountWei, parseIdempotencyKey, parseMetadata, type MetadataLimits } from "../validation.ts";

/** A validated clawback: what Clawback accepts, ready to store and send. */
export interface ClawbackRequest {
  idempotencyKey: string;
  from: Address;
  amountWei: bigint;
  metadata: Record<string, string>;
  refId: Hex;
}

/** The contract's refId: keccak256 of the key, like a mint id, so it survives any loss of our database. */
export const refIdFor: (idempotencyKey: string) => Hex = idFor;

export function parseClawbackRequest(
  input: { idempotencyKey: string; from: string; amountWei: string; metadata: Record<string, string> },
  limits: MetadataLimits = DEFAULT_METADATA_LIMITS,
): ClawbackRequest {
  const key = parseIdempotencyKey(input.idempotencyKey);
  return {
    idempotencyKey: key,
    from: parseAddress(input.from, "from"),
    amountWei: parseAmountWei(input.amountWei),
    metadata: parseMetadata(input.metadata, limits),
    refId: refIdFor(key),
  };
}

/** Whether a stored clawback was created by the same request (a replay rather than a conflict). */
export function sameClawback(stored: { fromAddress: string; amountWei: bigint }, req: ClawbackRequest): boolean {
  return getAddress(stored.fromAddress) === req.from && stored.amountWei === req.amountWei;
}
