/**
 * Exact money arithmetic, bigint only. Fiat amounts are integer minor units (cents); cashback is
 * wei (1 CBK = 10^18 wei). A currency converts to wei at a configured whole number of wei per
 * minor unit (API_CASHBACK_RATES), so the conversion itself is exact; the only rounding is the
 * percentage, which rounds down to a whole wei (bigint division of non-negative numbers floors).
 */
export type Rates = ReadonlyMap<string, bigint>;

export const WEI_PER_CBK = 10n ** 18n;
/** Largest purchase amount accepted (10^15 minor units, below 2^53 so JSON integers are exact). */
export const MAX_AMOUNT_MINOR = 10n ** 15n;
/** Largest wei amount a rule may name (fixed reward, caps): 10^36 wei = 10^18 CBK. */
export const MAX_RULE_WEI = 10n ** 36n;
/** Largest rate accepted: 10^21 wei (1,000 CBK) per minor unit. */
export const MAX_RATE = 10n ** 21n;

export function fiatToWei(amountMinor: bigint, weiPerMinor: bigint): bigint {
  return amountMinor * weiPerMinor;
}

/** `bp` basis points (1/100 of a percent) of `wei`, rounded down to a whole wei. */
export function basisPointsOf(wei: bigint, bp: number): bigint {
  return (wei * BigInt(bp)) / 10_000n;
}

export const minBig = (a: bigint, b: bigint) => (a < b ? a : b);
export const maxBig = (a: bigint, b: bigint) => (a > b ? a : b);

/** A decimal string of a non-negative whole number (no sign, no exponent, no leading zeros). */
export const WEI_PATTERN = "^(0|[1-9][0-9]{0,77})$";

/**
 * A minor-unit amount for a JSON answer. JSON numbers are doubles; every integer up to 2^53 is
 * exact in one, and amounts here are at most 10^15 (MAX_AMOUNT_MINOR, checked on the way in and
 * by this), so the number written is exactly the bigint held.
 */
export function jsonMinor(value: bigint): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`minor amount ${value} does not fit a JSON integer exactly`);
  return Number(value);
}
