import { getAddress, isAddress, keccak256, stringToHex, zeroAddress, type Address, type Hex } from "viem";
import { invalidArgument } from "../errors.ts";

/** A validated mint: what MintToken and MintBatch accept, ready to store and send. */
export interface MintRequest {
  idempotencyKey: string;
  to: Address;
  amountWei: bigint;
  metadata: Record<string, string>;
  mintId: Hex;
}

const KEY_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;
const AMOUNT_PATTERN = /^[1-9][0-9]{0,77}$/;
/** Far above any cashback, and low enough that no sum of mints can overflow totalSupply. */
export const MAX_MINT_WEI = 2n ** 128n - 1n;
const METADATA_MAX_ENTRIES = 32;

/** The contract's mint id: a pure function of the key, so it survives any loss of our database. */
export function mintIdFor(idempotencyKey: string): Hex {
  return keccak256(stringToHex(idempotencyKey));
}

export function parseMintRequest(input: {
  idempotencyKey: string;
  to: string;
  amountWei: string;
  metadata: Record<string, string>;
}): MintRequest {
  const key = input.idempotencyKey;
  if (!KEY_PATTERN.test(key)) {
    throw invalidArgument("idempotency_key must be 1-200 characters of A-Z a-z 0-9 . _ : -");
  }
  if (!isAddress(input.to, { strict: true })) {
    throw invalidArgument(`to must be a 0x-prefixed 20-byte address with a valid checksum, got "${input.to}"`);
  }
  const to = getAddress(input.to);
  if (to === zeroAddress) throw invalidArgument("to must not be the zero address");
  if (!AMOUNT_PATTERN.test(input.amountWei)) {
    throw invalidArgument(`amount_wei must be a positive whole number of wei in decimal, got "${input.amountWei}"`);
  }
  const amountWei = BigInt(input.amountWei);
  if (amountWei > MAX_MINT_WEI) throw invalidArgument("amount_wei must be below 2^128");
  const entries = Object.entries(input.metadata);
  if (entries.length > METADATA_MAX_ENTRIES) throw invalidArgument(`metadata has more than ${METADATA_MAX_ENTRIES} entries`);
  for (const [k, v] of entries) {
    if (k.length > 64 || v.length > 512) throw invalidArgument("metadata keys are at most 64 and values 512 characters");
    if (k.includes("\u0000") || v.includes("\u0000")) throw invalidArgument("metadata must not contain NUL characters");
  }
  return { idempotencyKey: key, to, amountWei, metadata: { ...input.metadata }, mintId: mintIdFor(key) };
}

/** Whether a stored mint was created by the same request (same key is then a replay, not a conflict). */
export function sameMint(stored: { toAddress: string; amountWei: bigint }, req: MintRequest): boolean {
  return getAddress(stored.toAddress) === req.to && stored.amountWei === req.amountWei;
}
