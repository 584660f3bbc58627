import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluate, NO_USAGE, periodsOf, perPurchaseReward, type PurchaseFacts, type Rule, type Stacking, type Usage } from "../src/rules/engine.ts";

const CBK = 10n ** 18n;
const rates = new Map([
  ["USD", 10n ** 16n], // 1 CBK per dollar
  ["EUR", 2n * 10n ** 16n], // 2 CBK per euro
]);
const at = new Date("2026-11-28T12:00:00Z");
const purchase = (over: Partial<PurchaseFacts> = {}): PurchaseFacts => ({ merchantId: "m1", category: "groceries", amountMinor: 10_000n, currency: "USD", occurredAt: at, ...over });
let n = 0;
const rule = (over: Partial<Rule> = {}): Rule => ({
  id: `r${String(++n).padStart(4, "0")}`,
  merchantId: null,
  name: "rule",
  reward: { kind: "percentage", basisPoints: 100 },
  minPurchase: null,
  maxCashbackWei: null,
  userDailyCapWei: null,
  userMonthlyCapWei: null,
  categories: [],
  startsAt: null,
  endsAt: null,
  priority: 0,
  enabled: true,
  ...over,
});
const run = (rules: Rule[], p = purchase(), stacking: Stacking = "best_of", usage: Usage = NO_USAGE) => evaluate(p, rules, { rates, stacking, usage });

describe("rules engine: table", () => {
  it("pays basis points of the purchase in wei, rounded down", () => {
    // $100.00 at 1 CBK/$ = 100 CBK; 2.5% = 2.5 CBK
    expect(run([rule({ reward: { kind: "percentage", basisPoints: 250 } })]).totalWei).toBe(25n * CBK / 10n);
    // 1 cent at 1 bp: 10^16 * 1 / 10^4 = 10^12 wei exactly; 3 cents at 3333 bp = floor(3 * 10^16 * 3333 / 10^4)
    expect(run([rule({ reward: { kind: "percentage", basisPoints: 1 } })], purchase({ amountMinor: 1n })).totalWei).toBe(10n ** 12n);
    expect(run([rule({ reward: { kind: "percentage", basisPoints: 3333 } })], purchase({ amountMinor: 3n })).totalWei).toBe((3n * 10n ** 16n * 3333n) / 10_000n);
  });

  it("pays a fixed amount, cut to the per-purchase cap", () => {
    expect(run([rule({ reward: { kind: "fixed", amountWei: 7n * CBK } })]).totalWei).toBe(7n * CBK);
    expect(run([rule({ reward: { kind: "fixed", amountWei: 7n * CBK }, maxCashbackWei: 5n * CBK })]).totalWei).toBe(5n * CBK);
  });

  it("cuts to what is left of the daily and monthly caps", () => {
    const r = rule({ reward: { kind: "percentage", basisPoints: 1000 }, userDailyCapWei: 15n * CBK, userMonthlyCapWei: 100n * CBK }); // wants 10 CBK
    const usage = (day: bigint, month: bigint): Usage => (id, period) => (id !== r.id ? 0n : period === "day" ? day : month);
    expect(run([r], purchase(), "best_of", usage(0n, 0n)).totalWei).toBe(10n * CBK);
    expect(run([r], purchase(), "best_of", usage(8n * CBK, 8n * CBK)).totalWei).toBe(7n * CBK);
    expect(run([r], purchase(), "best_of", usage(0n, 97n * CBK)).totalWei).toBe(3n * CBK);
    expect(run([r], purchase(), "best_of", usage(15n * CBK, 15n * CBK)).totalWei).toBe(0n);
    expect(run([r], purchase(), "best_of", usage(20n * CBK, 20n * CBK)).totalWei).toBe(0n); // cap lowered below usage
    const e = run([r], purchase(), "best_of", usage(8n * CBK, 8n * CBK));
    expect(e.usage).toEqual([
      { ruleId: r.id, period: "day", periodStart: "2026-11-28", amountWei: 7n * CBK },
      { ruleId: r.id, period: "month", periodStart: "2026-11-01", amountWei: 7n * CBK },
    ]);
  });

  it("counts no usage for rules without period caps", () => {
    expect(run([rule()]).usage).toEqual([]);
  });

  it("uses only the highest priority that pays anything", () => {
    const low = rule({ priority: 0, reward: { kind: "percentage", basisPoints: 5000 } });
    const high = rule({ priority: 5, reward: { kind: "percentage", basisPoints: 100 } });
    expect(run([low, high]).applied.map((a) => a.ruleId)).toEqual([high.id]);
    // a higher priority whose cap is used up falls through to the next
    const capped = rule({ priority: 9, reward: { kind: "fixed", amountWei: CBK }, userDailyCapWei: CBK });
    const used: Usage = (id) => (id === capped.id ? CBK : 0n);
    expect(run([low, high, capped], purchase(), "best_of", used).applied.map((a) => a.ruleId)).toEqual([high.id]);
  });

  it("best_of pays the largest of one priority, a tie to the smallest id; sum pays them all", () => {
    const a = rule({ id: "b-rule", reward: { kind: "fixed", amountWei: 3n * CBK } });
    const b = rule({ id: "a-rule", reward: { kind: "fixed", amountWei: 3n * CBK } });
    const c = rule({ id: "c-rule", reward: { kind: "fixed", amountWei: 2n * CBK } });
    expect(run([a, b, c]).applied).toEqual([{ ruleId: "a-rule", name: "rule", amountWei: 3n * CBK }]);
    const sum = run([a, b, c], purchase(), "sum");
    expect(sum.totalWei).toBe(8n * CBK);
    expect(sum.applied.map((x) => x.ruleId)).toEqual(["a-rule", "b-rule", "c-rule"]);
  });

  it("scopes by merchant, category, window and enabled", () => {
    expect(run([rule({ merchantId: "m2" })]).totalWei).toBe(0n);
    expect(run([rule({ merchantId: "m1" })]).totalWei).toBe(CBK);
    expect(run([rule({ categories: ["travel"] })]).totalWei).toBe(0n);
    expect(run([rule({ categories: ["travel", "groceries"] })]).totalWei).toBe(CBK);
    expect(run([rule({ startsAt: new Date(at.getTime() + 1) })]).totalWei).toBe(0n);
    expect(run([rule({ startsAt: at })]).totalWei).toBe(CBK);
    expect(run([rule({ endsAt: at })]).totalWei).toBe(0n); // ends_at is exclusive
    expect(run([rule({ endsAt: new Date(at.getTime() + 1) })]).totalWei).toBe(CBK);
    expect(run([rule({ enabled: false })]).totalWei).toBe(0n);
  });

  it("compares the minimum purchase in wei across currencies", () => {
    const r = rule({ minPurchase: { amountMinor: 5_000n, currency: "EUR" } }); // €50 = 100 CBK
    expect(run([r], purchase({ amountMinor: 9_999n })).totalWei).toBe(0n); // $99.99 = 99.99 CBK
    expect(run([r], purchase({ amountMinor: 10_000n })).totalWei).toBe(CBK); // $100 = 100 CBK
    expect(run([rule({ minPurchase: { amountMinor: 1n, currency: "GBP" } })]).totalWei).toBe(0n); // no GBP rate: can not be checked
  });

  it("pays nothing in a currency without a rate", () => {
    expect(run([rule({ reward: { kind: "fixed", amountWei: CBK } })], purchase({ currency: "CHF" })).totalWei).toBe(0n);
  });

  it("counts days and months in UTC", () => {
    expect(periodsOf(new Date("2026-12-31T23:59:59.999Z"))).toEqual({ day: "2026-12-31", month: "2026-12-01" });
    expect(periodsOf(new Date("2027-01-01T00:00:00Z"))).toEqual({ day: "2027-01-01", month: "2027-01-01" });
  });
});

// ---------------------------------------------------------------------------------------------

const wei = fc.bigInt({ min: 0n, max: 10n ** 24n });
const arbRule = fc.record({
  merchantId: fc.constantFrom(null, "m1", "m2"),
  reward: fc.oneof(
    fc.record({ kind: fc.constant("percentage" as const), basisPoints: fc.integer({ min: 1, max: 10_000 }) }),
    fc.record({ kind: fc.constant("fixed" as const), amountWei: fc.bigInt({ min: 1n, max: 10n ** 24n }) }),
  ),
  minPurchase: fc.option(fc.record({ amountMinor: fc.bigInt({ min: 1n, max: 100_000n }), currency: fc.constantFrom("USD", "EUR") }), { nil: null }),
  maxCashbackWei: fc.option(wei, { nil: null }),
  userDailyCapWei: fc.option(wei, { nil: null }),
  userMonthlyCapWei: fc.option(wei, { nil: null }),
  categories: fc.subarray(["groceries", "travel", "fuel"]),
  startsAt: fc.option(fc.date({ min: new Date("2026-11-01"), max: new Date("2026-12-31"), noInvalidDate: true }), { nil: null }),
  endsAt: fc.option(fc.date({ min: new Date("2026-11-01"), max: new Date("2026-12-31"), noInvalidDate: true }), { nil: null }),
  priority: fc.integer({ min: 0, max: 2 }), // few levels: ties are common
  enabled: fc.boolean(),
});
const arbRules = fc
  .array(arbRule, { maxLength: 8 })
  .chain((rules) => fc.shuffledSubarray(["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"], { minLength: rules.length, maxLength: rules.length }).map((ids) => rules.map((r, i): Rule => ({ ...r, id: ids[i]!, name: ids[i]! }))));
const arbPurchase = fc.record({
  merchantId: fc.constantFrom("m1", "m2"),
  category: fc.constantFrom("groceries", "travel", "fuel"),
  amountMinor: fc.bigInt({ min: 1n, max: 10n ** 15n }),
  currency: fc.constantFrom("USD", "EUR"),
  occurredAt: fc.date({ min: new Date("2026-11-01"), max: new Date("2026-12-31"), noInvalidDate: true }),
});
const arbUsage = fc.dictionary(fc.constantFrom("r0:day", "r1:day", "r2:month", "r3:day", "r3:month", "r5:month", "r7:day"), wei);
const arbStacking = fc.constantFrom<Stacking>("best_of", "sum");

describe("rules engine: properties", () => {
  const config = { numRuns: 1_000 };

  it("never pays a negative amount, never more than any cap of the rule that pays it", () => {
    fc.assert(
      fc.property(arbRules, arbPurchase, arbUsage, arbStacking, (rules, p, used, stacking) => {
        const usage: Usage = (id, period) => used[`${id}:${period}`] ?? 0n;
        const e = evaluate(p, rules, { rates, stacking, usage });
        expect(e.totalWei).toBeGreaterThanOrEqual(0n);
        expect(e.totalWei).toBe(e.applied.reduce((s, a) => s + a.amountWei, 0n));
        for (const a of e.applied) {
          const r = rules.find((x) => x.id === a.ruleId)!;
          expect(a.amountWei).toBeGreaterThan(0n);
          expect(a.amountWei).toBeLessThanOrEqual(perPurchaseReward(r, p, rates));
          if (r.maxCashbackWei !== null) expect(a.amountWei).toBeLessThanOrEqual(r.maxCashbackWei);
          if (r.userDailyCapWei !== null) expect(usage(r.id, "day") + a.amountWei).toBeLessThanOrEqual(r.userDailyCapWei);
          if (r.userMonthlyCapWei !== null) expect(usage(r.id, "month") + a.amountWei).toBeLessThanOrEqual(r.userMonthlyCapWei);
        }
      }),
      config,
    );
  });

  it("is deterministic and does not depend on the order of the rules", () => {
    fc.assert(
      fc.property(arbRules.chain((rules) => fc.tuple(fc.constant(rules), fc.shuffledSubarray(rules, { minLength: rules.length, maxLength: rules.length }))), arbPurchase, arbUsage, arbStacking, ([rules, shuffled], p, used, stacking) => {
        const usage: Usage = (id, period) => used[`${id}:${period}`] ?? 0n;
        const first = evaluate(p, rules, { rates, stacking, usage });
        expect(evaluate(p, rules, { rates, stacking, usage })).toEqual(first);
        expect(evaluate(p, shuffled, { rates, stacking, usage })).toEqual(first);
      }),
      config,
    );
  });

  it("pays from one priority only: the highest that pays; best_of pays one rule", () => {
    fc.assert(
      fc.property(arbRules, arbPurchase, arbStacking, (rules, p, stacking) => {
        const e = evaluate(p, rules, { rates, stacking, usage: NO_USAGE });
        const priorities = new Set(e.applied.map((a) => rules.find((r) => r.id === a.ruleId)!.priority));
        expect(priorities.size).toBeLessThanOrEqual(1);
        if (stacking === "best_of") expect(e.applied.length).toBeLessThanOrEqual(1);
        // no rule of a higher priority would have paid anything
        const top = [...priorities][0];
        if (top !== undefined) {
          for (const r of rules.filter((x) => x.priority > top)) expect(evaluate(p, [r], { rates, stacking, usage: NO_USAGE }).totalWei).toBe(0n);
        }
      }),
      config,
    );
  });

  it("records usage for exactly the capped rules that paid, both periods", () => {
    fc.assert(
      fc.property(arbRules, arbPurchase, arbStacking, (rules, p, stacking) => {
        const e = evaluate(p, rules, { rates, stacking, usage: NO_USAGE });
        const capped = e.applied.filter((a) => {
          const r = rules.find((x) => x.id === a.ruleId)!;
          return r.userDailyCapWei !== null || r.userMonthlyCapWei !== null;
        });
        expect(e.usage.length).toBe(capped.length * 2);
        for (const a of capped) {
          expect(e.usage.filter((u) => u.ruleId === a.ruleId).map((u) => [u.period, u.amountWei])).toEqual([
            ["day", a.amountWei],
            ["month", a.amountWei],
          ]);
        }
      }),
      config,
    );
  });
});
