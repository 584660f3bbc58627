import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clawbackShare } from "../src/purchases/refund-share.ts";

describe("clawbackShare", () => {
  it("takes the exact floor of the refunded share", () => {
    expect(clawbackShare({ cashbackWei: 1000n, amountMinor: 3n, refundedBeforeMinor: 0n, refundMinor: 1n })).toBe(333n);
    expect(clawbackShare({ cashbackWei: 1000n, amountMinor: 3n, refundedBeforeMinor: 1n, refundMinor: 1n })).toBe(333n); // 666 - 333
    expect(clawbackShare({ cashbackWei: 1000n, amountMinor: 3n, refundedBeforeMinor: 2n, refundMinor: 1n })).toBe(334n); // 1000 - 666
    expect(clawbackShare({ cashbackWei: 0n, amountMinor: 500n, refundedBeforeMinor: 0n, refundMinor: 500n })).toBe(0n);
  });

  it("refuses refunds beyond the purchase", () => {
    expect(() => clawbackShare({ cashbackWei: 10n, amountMinor: 5n, refundedBeforeMinor: 4n, refundMinor: 2n })).toThrow(RangeError);
    expect(() => clawbackShare({ cashbackWei: 10n, amountMinor: 5n, refundedBeforeMinor: 0n, refundMinor: 0n })).toThrow(RangeError);
  });

  it("never claws back more than the cashback, and all of it once fully refunded, whatever the steps", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.array(fc.bigInt({ min: 1n, max: 10n ** 12n }), { minLength: 1, maxLength: 20 }),
        (cashbackWei, amountMinor, wishes) => {
          let refunded = 0n;
          let clawed = 0n;
          for (const wish of wishes) {
            const left = amountMinor - refunded;
            if (left === 0n) break;
            const refund = wish > left ? left : wish;
            const share = clawbackShare({ cashbackWei, amountMinor, refundedBeforeMinor: refunded, refundMinor: refund });
            expect(share).toBeGreaterThanOrEqual(0n);
            refunded += refund;
            clawed += share;
            expect(clawed).toBeLessThanOrEqual(cashbackWei);
            expect(clawed).toBe((cashbackWei * refunded) / amountMinor); // cumulative floor
          }
          if (refunded < amountMinor) clawed += clawbackShare({ cashbackWei, amountMinor, refundedBeforeMinor: refunded, refundMinor: amountMinor - refunded });
          expect(clawed).toBe(cashbackWei);
        },
      ),
      { numRuns: 500 },
    );
  });
});
