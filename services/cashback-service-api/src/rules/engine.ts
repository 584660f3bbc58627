import { basisPointsOf, fiatToWei, maxBig, minBig, type Rates } from "./money.ts";

/**
 * The rules engine: which cashback a purchase earns. Pure functions, no I/O; the purchase writer
 * feeds it the rules (cached), the rates (config) and the user's usage of capped rules (read from
 * the database and guarded there, see src/purchases/purchase-writer.ts).
 *
 * 1. Eligible rules: enabled; platform-wide or the purchase's merchant's; category in the rule's
 *    list (an empty list matches every category); occurred_at within [starts_at, ends_at);
 *    purchase at least the rule's minimum (compared in wei at the configured rates, so a minimum
 *    in EUR applies to a purchase in USD too).
 * 2. Each eligible rule's reward: percentage (basis points of the purchase converted to wei,
 *    rounded down) or fixed wei, then cut to the per-purchase cap, then to what is left of the
 *    rule's per-user daily and monthly caps (UTC days and months of occurred_at).
 * 3. Among the rules that still pay something, only the highest priority counts. Within it the
 *    merchant's stacking mode decides: `best_of` pays the single largest reward (a tie goes to
 *    the smallest rule id), `sum` pays every reward of that priority added up.
 *
 * So the result never depends on the order rules are listed in, and no rule pays above any of
 * its caps.
 */

export type Stacking = "best_of" | "sum";
export type Period = "day" | "month";

export type Reward = { kind: "percentage"; basisPoints: number } | { kind: "fixed"; amountWei: bigint };

export interface Rule {
  id: string;
  /** null: platform-wide. */
  merchantId: string | null;
  name: string;
  reward: Reward;
  minPurchase: { amountMinor: bigint; currency: string } | null;
  /** Per-purchase cap. */
  maxCashbackWei: bigint | null;
  userDailyCapWei: bigint | null;
  userMonthlyCapWei: bigint | null;
  /** Empty: every category. */
  categories: readonly string[];
  startsAt: Date | null;
  /** Exclusive. */
  endsAt: Date | null;
  priority: number;
  enabled: boolean;
}

export interface PurchaseFacts {
  merchantId: string;
  category: string;
  amountMinor: bigint;
  currency: string;
  occurredAt: Date;
}

/** The UTC day and month a purchase counts in, as the first day of each (YYYY-MM-DD). */
export interface Periods {
  day: string;
  month: string;
}

/** What a user has already received from a rule in the purchase's day or month. */
export type Usage = (ruleId: string, period: Period) => bigint;
export const NO_USAGE: Usage = () => 0n;

export interface AppliedRule {
  ruleId: string;
  name: string;
  amountWei: bigint;
}

export interface UsageDelta {
  ruleId: string;
  period: Period;
  periodStart: string;
  amountWei: bigint;
}

export interface Evaluation {
  totalWei: bigint;
  /** The rules that paid, by rule id. */
  applied: AppliedRule[];
  /** What to add to the user's usage of capped rules. */
  usage: UsageDelta[];
}

export function periodsOf(at: Date): Periods {
  const iso = at.toISOString();
  return { day: iso.slice(0, 10), month: `${iso.slice(0, 7)}-01` };
}

/** Whether a rule has a per-user period cap (its usage must be counted, under the guard). */
export function hasPeriodCap(rule: Rule): boolean {
  return rule.userDailyCapWei !== null || rule.userMonthlyCapWei !== null;
}

/** Step 1: the rules that apply to this purchase at all. Needs no usage. */
export function eligibleRules(purchase: PurchaseFacts, rules: readonly Rule[], rates: Rates): Rule[] {
  const rate = rates.get(purchase.currency);
  if (rate === undefined) return [];
  const valueWei = fiatToWei(purchase.amountMinor, rate);
  const at = purchase.occurredAt.getTime();
  return rules.filter((rule) => {
    if (!rule.enabled) return false;
    if (rule.merchantId !== null && rule.merchantId !== purchase.merchantId) return false;
    if (rule.categories.length > 0 && !rule.categories.includes(purchase.category)) return false;
    if (rule.startsAt && at < rule.startsAt.getTime()) return false;
    if (rule.endsAt && at >= rule.endsAt.getTime()) return false;
    if (rule.minPurchase) {
      const minRate = rates.get(rule.minPurchase.currency);
      if (minRate === undefined) return false; // a minimum we can not price: the rule can not be checked
      if (valueWei < fiatToWei(rule.minPurchase.amountMinor, minRate)) return false;
    }
    return true;
  });
}

/** Step 2 without period caps: the reward for this purchase alone. */
export function perPurchaseReward(rule: Rule, purchase: PurchaseFacts, rates: Rates): bigint {
  const rate = rates.get(purchase.currency) ?? 0n;
  const reward = rule.reward.kind === "percentage" ? basisPointsOf(fiatToWei(purchase.amountMinor, rate), rule.reward.basisPoints) : rule.reward.amountWei;
  return rule.maxCashbackWei === null ? reward : minBig(reward, rule.maxCashbackWei);
}

/** What is left of a cap after `used` (never negative). */
function remaining(cap: bigint | null, used: bigint): bigint | null {
  return cap === null ? null : maxBig(cap - used, 0n);
}

export function evaluate(purchase: PurchaseFacts, rules: readonly Rule[], ctx: { rates: Rates; stacking: Stacking; usage: Usage }): Evaluation {
  const periods = periodsOf(purchase.occurredAt);
  const paying: { rule: Rule; amount: bigint }[] = [];
  for (const rule of eligibleRules(purchase, rules, ctx.rates)) {
    let amount = perPurchaseReward(rule, purchase, ctx.rates);
    for (const left of [remaining(rule.userDailyCapWei, ctx.usage(rule.id, "day")), remaining(rule.userMonthlyCapWei, ctx.usage(rule.id, "month"))]) {
      if (left !== null) amount = minBig(amount, left);
    }
    if (amount > 0n) paying.push({ rule, amount });
  }
  if (paying.length === 0) return { totalWei: 0n, applied: [], usage: [] };

  const top = Math.max(...paying.map((p) => p.rule.priority));
  const tier = paying.filter((p) => p.rule.priority === top).sort((a, b) => compareIds(a.rule.id, b.rule.id));
  const chosen =
    ctx.stacking === "sum"
      ? tier
      : [tier.reduce((best, p) => (p.amount > best.amount ? p : best))]; // sorted by id: the first of equals wins

  const usage: UsageDelta[] = [];
  for (const { rule, amount } of chosen) {
    if (!hasPeriodCap(rule)) continue;
    // Both periods are counted for a rule with either cap, so adding the other cap later starts
    // from what was really paid.
    usage.push({ ruleId: rule.id, period: "day", periodStart: periods.day, amountWei: amount });
    usage.push({ ruleId: rule.id, period: "month", periodStart: periods.month, amountWei: amount });
  }
  return {
    totalWei: chosen.reduce((sum, p) => sum + p.amount, 0n),
    applied: chosen.map((p) => ({ ruleId: p.rule.id, name: p.rule.name, amountWei: p.amount })),
    usage,
  };
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
