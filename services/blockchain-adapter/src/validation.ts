import { getAddress, isAddress, keccak256, stringToHex, zeroAddress, type Address, type Hex } from "viem";
import { invalidArgument } from "./errors.ts";

/**
 * Field rules shared by every call. Lengths are checked before any pattern or library call:
 * a hostile 10 MB string must cost a comparison, never a regex run, an entry in viem's address
 * caches, or a copy in an error message.
 */

export const KEY_MAX_CHARS = 200; // mints.idempotency_key / clawbacks.idempotency_key are VARCHAR(200)
const KEY_PATTERN = /^[A-Za-z0-9._:-]+$/;
const AMOUNT_PATTERN = /^[1-9][0-9]*$/;
/** Far above any cashback, and low enough that no sum of mints can overflow totalSupply. */
export const MAX_AMOUNT_WEI = 2n ** 128n - 1n;
const ADDRESS_CHARS = 42;

/** How much of a rejected input an error message quotes. */
export const QUOTE_MAX_CHARS = 40;

/**
 * A short, safe rendering of client input for an error message: JSON-quoted (so NUL and control
 * characters are escaped), cut to its first QUOTE_MAX_CHARS characters with its length noted.
 */
export function quote(value: string): string {
  if (value.length <= QUOTE_MAX_CHARS) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, QUOTE_MAX_CHARS))}… (${value.length} characters)`;
}

/** keccak256 of the key: the contract's mint id or clawback ref id, independent of our database. */
export function idFor(idempotencyKey: string): Hex {
  return keccak256(stringToHex(idempotencyKey));
}

export function parseIdempotencyKey(value: string, field = "idempotency_key"): string {
  if (value.length === 0 || value.length > KEY_MAX_CHARS || !KEY_PATTERN.test(value)) {
    throw invalidArgument(`${field} must be 1-${KEY_MAX_CHARS} characters of A-Z a-z 0-9 . _ : -, got ${quote(value)}`);
  }
  return value;
}

/** A holder's address: 0x + 20 bytes, a mixed-case one with a valid EIP-55 checksum, not zero. */
export function parseAddress(value: string, field: string): Address {
  if (value.length !== ADDRESS_CHARS || !isAddress(value, { strict: true })) {
    throw invalidArgument(`${field} must be a 0x-prefixed 20-byte address with a valid checksum, got ${quote(value)}`);
  }
  const address = getAddress(value);
  if (address === zeroAddress) throw invalidArgument(`${field} must not be the zero address`);
  return address;
}

export function parseAmountWei(value: string, field = "amount_wei"): bigint {
  // 2^128 has 39 digits: anything longer is out of range before it is parsed.
  if (value.length > 39 || !AMOUNT_PATTERN.test(value)) {
    throw invalidArgument(`${field} must be a positive whole number of wei in decimal (below 2^128), got ${quote(value)}`);
  }
  const amount = BigInt(value);
  if (amount > MAX_AMOUNT_WEI) throw invalidArgument(`${field} must be below 2^128`);
  return amount;
}

export interface MetadataLimits {
  maxEntries: number;
  maxKeyChars: number;
  maxValueChars: number;
}

export const DEFAULT_METADATA_LIMITS: MetadataLimits = { maxEntries: 32, maxKeyChars: 64, maxValueChars: 512 };

export function parseMetadata(metadata: Record<string, string>, limits: MetadataLimits = DEFAULT_METADATA_LIMITS): Record<string, string> {
  const entries = Object.entries(metadata);
  if (entries.length > limits.maxEntries) throw invalidArgument(`metadata has more than ${limits.maxEntries} entries`);
  for (const [k, v] of entries) {
    if (k.length > limits.maxKeyChars || v.length > limits.maxValueChars) {
      throw invalidArgument(`metadata keys are at most ${limits.maxKeyChars} and values ${limits.maxValueChars} characters (key ${quote(k)})`);
    }
    if (k.includes("\u0000") || v.includes("\u0000")) throw invalidArgument("metadata must not contain NUL characters");
  }
  return { ...metadata };
}
