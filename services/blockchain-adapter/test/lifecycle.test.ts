import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BaseError } from "viem";
import { isAlreadyKnown, isInsufficientFunds, isNonceError, isReceiptNotFound, isTransactionNotFound } from "../src/chain/rpc-errors.ts";
import { gasBound } from "../src/chain/chain-client.ts";
import { backoffMs } from "../src/failure-streak.ts";
import { confirmationsAt, isSettled, monitorVerdict, nonceGap, replacementFees, splitRefusedBatch, type Observed } from "../src/transactions/lifecycle.ts";

const gwei = (n: number) => BigInt(n) * 10n ** 9n;

describe("confirmations", () => {
  it.each([
    [10n, 10n, 1n],
    [12n, 10n, 3n],
    [9n, 10n, 0n], // a head behind the block (another node answered): not confirmed yet
    [10n, null, 0n],
  ] as const)("head %s, mined in %s: %s", (head, block, expected) => {
    expect(confirmationsAt(head, block)).toBe(expected);
  });

  it("settles at exactly the required depth", () => {
    expect(isSettled(10n, 10n, 1)).toBe(true);
    expect(isSettled(11n, 10n, 3)).toBe(false);
    expect(isSettled(12n, 10n, 3)).toBe(true);
  });
});

describe("replacementFees", () => {
  const old = { maxFeePerGas: gwei(100), maxPriorityFeePerGas: gwei(2) };
  it.each([
    ["a calm market: +25% on both", { maxFeePerGas: gwei(50), maxPriorityFeePerGas: gwei(1) }, gwei(500), { maxFeePerGas: gwei(125), maxPriorityFeePerGas: 2_500_000_000n }],
    ["a market above +25%: the market", { maxFeePerGas: gwei(300), maxPriorityFeePerGas: gwei(5) }, gwei(500), { maxFeePerGas: gwei(300), maxPriorityFeePerGas: gwei(5) }],
    ["the cap below the bump: the cap", { maxFeePerGas: gwei(50), maxPriorityFeePerGas: gwei(1) }, gwei(110), { maxFeePerGas: gwei(110), maxPriorityFeePerGas: 2_500_000_000n }],
    ["a priority fee above the capped max fee: the max fee", { maxFeePerGas: gwei(50), maxPriorityFeePerGas: gwei(200) }, gwei(120), { maxFeePerGas: gwei(120), maxPriorityFeePerGas: gwei(120) }],
  ] as const)("%s", (_name, market, cap, expected) => {
    expect(replacementFees(old, market, cap)).toEqual(expected);
  });

  it("refuses to replace a transaction already at (or above) the cap", () => {
    expect(replacementFees(old, { maxFeePerGas: gwei(1_000), maxPriorityFeePerGas: gwei(9) }, gwei(100))).toBeUndefined();
    expect(replacementFees(old, old, gwei(99))).toBeUndefined();
  });

  it("never offers more than the cap, and never less than a node accepts (+10%) below it", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: gwei(10_000) }), fc.bigInt({ min: 0n, max: gwei(100) }), fc.bigInt({ min: 1n, max: gwei(10_000) }), fc.bigInt({ min: 1n, max: gwei(20_000) }), (oldMax, oldTip, market, cap) => {
        const fees = replacementFees({ maxFeePerGas: oldMax, maxPriorityFeePerGas: oldTip }, { maxFeePerGas: market, maxPriorityFeePerGas: market / 10n }, cap);
        if (oldMax >= cap) return fees === undefined;
        if (!fees) return false;
        const accepted = fees.maxFeePerGas * 100n >= oldMax * 110n || fees.maxFeePerGas === cap;
        return fees.maxFeePerGas <= cap && fees.maxPriorityFeePerGas <= fees.maxFeePerGas && accepted;
      }),
    );
  });
});

describe("monitorVerdict", () => {
  const base: Observed = { nonce: 5n, minedNonce: 5n, ageMs: 60_000, stuckAfterMs: 30_000, hasRaw: true, requiredConfirmations: 1 };
  it.each<[string, Partial<Observed>, ReturnType<typeof monitorVerdict>]>([
    ["a receipt deep enough: record", { receipt: { confirmations: 1n } }, { action: "record" }],
    ["a receipt not deep enough: wait", { receipt: { confirmations: 2n }, requiredConfirmations: 3 }, { action: "wait", reason: "confirming" }],
    ["a receipt wins over everything else", { receipt: { confirmations: 3n }, requiredConfirmations: 3, nonce: 1n, known: false }, { action: "record" }],
    ["its nonce mined by a transaction not ours: drop", { nonce: 4n }, { action: "drop" }],
    ["dropped even when young", { nonce: 4n, ageMs: 1 }, { action: "drop" }],
    ["young: wait", { ageMs: 29_999 }, { action: "wait", reason: "young" }],
    ["no signed bytes (recovered): wait", { hasRaw: false }, { action: "wait", reason: "no-raw" }],
    ["old, not asked yet: ask the node", {}, { action: "ask-node" }],
    ["unknown to the node: rebroadcast", { known: false }, { action: "rebroadcast" }],
    ["unknown to the node, behind others: rebroadcast too", { known: false, nonce: 7n }, { action: "rebroadcast" }],
    ["known, next to be mined: replace", { known: true }, { action: "replace" }],
    ["known, behind the stuck one: wait", { known: true, nonce: 6n }, { action: "wait", reason: "behind-stuck-nonce" }],
  ])("%s", (_name, change, expected) => {
    expect(monitorVerdict({ ...base, ...change })).toEqual(expected);
  });
});

describe("nonceGap", () => {
  const base = { lowestOpenNonce: 8n, lowestOpenAgeMs: 60_000, minedNonce: 5n, pendingNonce: 5n, oursAtMinedNonce: 0, stuckAfterMs: 30_000 };
  it.each<[string, Partial<typeof base>, { from: bigint; to: bigint } | undefined]>([
    ["nobody holds 5..7: fill them", {}, { from: 5n, to: 8n }],
    ["our lowest is next to be mined: no gap", { lowestOpenNonce: 5n }, undefined],
    ["young: not yet", { lowestOpenAgeMs: 10 }, undefined],
    ["the node holds something at 5", { pendingNonce: 6n }, undefined],
    ["we hold an attempt at 5", { oursAtMinedNonce: 1 }, undefined],
  ])("%s", (_name, change, expected) => {
    expect(nonceGap({ ...base, ...change })).toEqual(expected);
  });
});

describe("splitRefusedBatch", () => {
  it.each([
    [8, "ERC20InvalidReceiver", { step: "halve", keep: 4 }],
    [5, "execution reverted", { step: "halve", keep: 3 }],
    [1, "execution reverted", { step: "fail-all" }],
    [1, "MintIdAlreadyUsed", { step: "fail-all" }],
    [100, "AccessControlUnauthorizedAccount", { step: "fail-all" }], // concerns every entry: halving would not help
    [100, "EnforcedPause", { step: "halt" }],
    [1, "EnforcedPause", { step: "halt" }],
  ] as const)("%s entries refused for %s", (size, reason, expected) => {
    expect(splitRefusedBatch(size, reason)).toEqual(expected);
  });

  it("isolates any one refused entry in log2(n) halvings, keeping the others queued", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), (size) => {
        let n = size;
        let steps = 0;
        for (let s = splitRefusedBatch(n, "x"); s.step === "halve"; s = splitRefusedBatch(n, "x")) {
          n = s.keep;
          steps++;
        }
        return n === 1 && steps <= Math.ceil(Math.log2(size));
      }),
    );
  });
});

describe("RPC error predicates", () => {
  const viemError = (details: string) => new BaseError("request failed", { details });
  it.each([
    ["nonce too low", true],
    ["Nonce too high. Expected nonce to be 3 but got 5", true],
    ["nonce has already been used", true],
    ["invalid nonce", true],
    ["insufficient funds for gas * price + value", false],
    ["execution reverted", false],
  ])("isNonceError(%j) = %s", (text, expected) => {
    expect(isNonceError(new Error(text))).toBe(expected);
    expect(isNonceError(viemError(text))).toBe(expected);
  });

  it.each([
    ["insufficient funds for gas * price + value: balance 0, tx cost 1000", true],
    ["Sender doesn't have enough funds to send tx. The max upfront cost is: 1 and the sender's balance is: 0.", true],
    ["nonce too low", false],
    ["execution reverted", false],
  ])("isInsufficientFunds(%j) = %s", (text, expected) => {
    expect(isInsufficientFunds(new Error(text))).toBe(expected);
    expect(isInsufficientFunds(viemError(text))).toBe(expected);
  });

  it("tells an already known transaction, and viem's not-found errors, from anything else", () => {
    expect(isAlreadyKnown(new Error("already known"))).toBe(true);
    expect(isAlreadyKnown(viemError("Known transaction: 0xabc"))).toBe(true);
    expect(isAlreadyKnown(new Error("nonce too low"))).toBe(false);
    expect(isReceiptNotFound(Object.assign(new Error("x"), { name: "TransactionReceiptNotFoundError" }))).toBe(true);
    expect(isReceiptNotFound(new Error("TransactionReceiptNotFoundError"))).toBe(false);
    expect(isTransactionNotFound(Object.assign(new Error("x"), { name: "TransactionNotFoundError" }))).toBe(true);
  });
});

describe("gasBound", () => {
  it("covers the measured worst cases (bench:gas) and stays under the 2^24 per-transaction cap at 200", () => {
    expect(gasBound(1)).toBeGreaterThan(97_944n); // the first mint ever, fresh recipient
    expect(gasBound(100)).toBeGreaterThan(5_089_654n); // mintBatch(100), fresh recipients
    expect(gasBound(200)).toBeLessThan(2n ** 24n);
  });
});

describe("backoffMs (property)", () => {
  it("stays in [1, min(cap, base * 2^failures)] and reaches that ceiling at the top of the draw", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (failures, base, cap, r) => {
        const ceiling = Math.min(cap, base * 2 ** Math.min(failures, 16));
        const ms = backoffMs(failures, base, cap, () => r);
        return ms >= 1 && ms <= ceiling && backoffMs(failures, base, cap, () => 0.999999) === Math.floor(0.999999 * ceiling) + 1;
      }),
    );
  });
});
