import { getAddress, type Address, type Hex } from "viem";
import { DEFAULT_METADATA_LIMITS, idFor, parseAddress, parseAmountWei, parseIdempotencyKey, parseMetadata, type MetadataLimits } from "../validation.ts";

export { MAX_AMOUNT_WEI as MAX_MINT_WEI } from "../validation.ts";

/** A validated mint: what MintToken and MintBatch accept, ready to store and send. */
export interface MintRequest {
  idempotencyKey: string;
  to: Address;
  amountWei: bigint;
  metadata: Record<string, string>;
  mintId: Hex;
}

/** The contract's mint id: a pure function of the key, so it survives any loss of our database. */
export const mintIdFor: (idempotencyKey: string) => Hex = idFor;

export function parseMintRequest(
  input: { idempotencyKey: string; to: string; amountWei: string; metadata: Record<string, string> },
  limits: MetadataLimits = DEFAULT_METADATA_LIMITS,
): MintRequest {
  const key = parseIdempotencyKey(input.idempotencyKey);
  return {
    idempotencyKey: key,
    to: parseAddress(input.to, "to"),
    amountWei: parseAmountWei(input.amountWei),
    metadata: parseMetadata(input.metadata, limits),
    mintId: mintIdFor(key),
  };
}

/** Whether a stored mint was created by the same request (same key is then a replay, not a conflict). */
export function sameMint(stored: { toAddress: string; amountWei: bigint }, req: MintRequest): boolean {
  return getAddress(stored.toAddress) === req.to && stored.amountWei === req.amountWei;
}
