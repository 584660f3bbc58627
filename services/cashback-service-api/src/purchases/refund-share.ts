/**
 * The cashback a refund takes back. Shares are cumulative floors: after refunds totalling R of a
 * purchase of A that earned C, exactly floor(C * R / A) has been clawed back. So each share is
 * exact (rounded down to a whole wei), the shares of any sequence of refunds add up to at most
 * C, and a purchase refunded in full has had exactly C clawed back, whatever the steps were.
 */
export function clawbackShare(input: { cashbackWei: bigint; amountMinor: bigint; refundedBeforeMinor: bigint; refundMinor: bigint }): bigint {
  const { cashbackWei, amountMinor, refundedBeforeMinor, refundMinor } = input;
  if (amountMinor <= 0n || refundMinor <= 0n || refundedBeforeMinor < 0n || refundedBeforeMinor + refundMinor > amountMinor || cashbackWei < 0n) {
    throw new RangeError("refund outside the purchase's amount");
  }
  const clawedAfter = (cashbackWei * (refundedBeforeMinor + refundMinor)) / amountMinor;
  const clawedBefore = (cashbackWei * refundedBeforeMinor) / amountMinor;
  return clawedAfter - clawedBefore;
}
