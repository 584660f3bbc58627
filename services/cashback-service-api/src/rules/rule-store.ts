import { ApiError } from "../http/errors.ts";
import { fromDecimalOrNull, toDecimal, type Db, type Prisma, type Tx } from "../db.ts";
import type { CashbackRule } from "../generated/prisma/client.ts";
import type { Rule } from "./engine.ts";
import { jsonMinor, MAX_RULE_WEI } from "./money.ts";

/** The rule as the engine sees it. */
export function toRule(row: CashbackRule): Rule {
  return {
    id: row.id,
    merchantId: row.merchantId,
    name: row.name,
    reward: row.kind === "percentage" ? { kind: "percentage", basisPoints: row.basisPoints ?? 0 } : { kind: "fixed", amountWei: fromDecimalOrNull(row.fixedAmountWei) ?? 0n },
    minPurchase: row.minPurchaseMinor !== null && row.minPurchaseCurrency ? { amountMinor: row.minPurchaseMinor, currency: row.minPurchaseCurrency } : null,
    maxCashbackWei: fromDecimalOrNull(row.maxCashbackWei),
    userDailyCapWei: fromDecimalOrNull(row.userDailyCapWei),
    userMonthlyCapWei: fromDecimalOrNull(row.userMonthlyCapWei),
    categories: row.categories ?? [],
    startsAt: row.startsAt,
    endsAt: row.endsAt,
    priority: row.priority,
    enabled: row.enabled,
  };
}

/** The rule as the REST API shows it. */
export function ruleView(row: CashbackRule) {
  const wei = (d: Prisma.Decimal | null) => (d === null ? null : d.toFixed(0));
  return {
    id: row.id,
    merchant_id: row.merchantId,
    name: row.name,
    kind: row.kind,
    basis_points: row.basisPoints,
    fixed_amount_wei: wei(row.fixedAmountWei),
    min_purchase: row.minPurchaseMinor !== null && row.minPurchaseCurrency ? { amount_minor: jsonMinor(row.minPurchaseMinor), currency: row.minPurchaseCurrency } : null,
    max_cashback_wei: wei(row.maxCashbackWei),
    user_daily_cap_wei: wei(row.userDailyCapWei),
    user_monthly_cap_wei: wei(row.userMonthlyCapWei),
    categories: row.categories ?? [],
    starts_at: row.startsAt?.toISOString() ?? null,
    ends_at: row.endsAt?.toISOString() ?? null,
    priority: row.priority,
    enabled: row.enabled,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
export type RuleView = ReturnType<typeof ruleView>;

/** The fields of a rule a request may set (snake_case, as sent). */
export interface RuleFields {
  name?: string;
  kind?: "percentage" | "fixed";
  basis_points?: number | null;
  fixed_amount_wei?: string | null;
  min_purchase?: { amount_minor: number; currency: string } | null;
  max_cashback_wei?: string | null;
  user_daily_cap_wei?: string | null;
  user_monthly_cap_wei?: string | null;
  categories?: string[];
  starts_at?: string | null;
  ends_at?: string | null;
  priority?: number;
  enabled?: boolean;
}

/**
 * The complete rule after applying `fields` to `current` (or to nothing, for a new rule), checked
 * as a whole: a percentage rule has basis points and no fixed amount and vice versa, the window
 * is not empty, amounts stay within bounds. 400 names the first problem.
 */
export function mergeRule(current: CashbackRule | null, fields: RuleFields): Omit<Prisma.CashbackRuleUncheckedCreateInput, "id" | "merchantId"> {
  const pick = <K extends keyof RuleFields, T>(key: K, existing: T, convert: (v: NonNullable<RuleFields[K]>) => T): T => {
    if (!(key in fields) || fields[key] === undefined) return existing;
    const value = fields[key];
    return value === null ? (null as T) : convert(value as NonNullable<RuleFields[K]>);
  };
  const wei = (field: keyof RuleFields) => (value: string) => {
    const n = BigInt(value);
    if (n > MAX_RULE_WEI) throw new ApiError("invalid_request", `${field} must be at most ${MAX_RULE_WEI} wei`);
    return toDecimal(n);
  };
  const date = (value: string) => new Date(value);

  const kind = fields.kind ?? current?.kind;
  const name = fields.name ?? current?.name;
  if (!kind) throw new ApiError("invalid_request", "kind is required (percentage or fixed)");
  if (!name) throw new ApiError("invalid_request", "name is required");
  // Changing the kind drops the other kind's amount unless the request sets it again.
  const kindChanged = current !== null && fields.kind !== undefined && fields.kind !== current.kind;
  const basisPoints = pick("basis_points", kindChanged ? null : (current?.basisPoints ?? null), (v) => v);
  const fixedAmountWei = pick("fixed_amount_wei", kindChanged ? null : (current?.fixedAmountWei ?? null), wei("fixed_amount_wei"));
  if (kind === "percentage" && (basisPoints === null || fixedAmountWei !== null)) {
    throw new ApiError("invalid_request", "a percentage rule needs basis_points (1-10000) and no fixed_amount_wei");
  }
  if (kind === "fixed" && (fixedAmountWei === null || basisPoints !== null)) {
    throw new ApiError("invalid_request", "a fixed rule needs fixed_amount_wei and no basis_points");
  }
  const minPurchase = pick("min_purchase", current && current.minPurchaseMinor !== null ? { amountMinor: current.minPurchaseMinor, currency: current.minPurchaseCurrency! } : null, (v) => ({
    amountMinor: BigInt(v.amount_minor),
    currency: v.currency,
  }));
  const startsAt = pick("starts_at", current?.startsAt ?? null, date);
  const endsAt = pick("ends_at", current?.endsAt ?? null, date);
  if (startsAt && endsAt && endsAt <= startsAt) throw new ApiError("invalid_request", "ends_at must be after starts_at");
  const categories = fields.categories ?? current?.categories ?? [];
  if (new Set(categories).size !== categories.length) throw new ApiError("invalid_request", "categories must not repeat");

  return {
    name,
    kind,
    basisPoints,
    fixedAmountWei,
    minPurchaseMinor: minPurchase?.amountMinor ?? null,
    minPurchaseCurrency: minPurchase?.currency ?? null,
    maxCashbackWei: pick("max_cashback_wei", current?.maxCashbackWei ?? null, wei("max_cashback_wei")),
    userDailyCapWei: pick("user_daily_cap_wei", current?.userDailyCapWei ?? null, wei("user_daily_cap_wei")),
    userMonthlyCapWei: pick("user_monthly_cap_wei", current?.userMonthlyCapWei ?? null, wei("user_monthly_cap_wei")),
    categories,
    startsAt,
    endsAt,
    priority: fields.priority ?? current?.priority ?? 0,
    enabled: fields.enabled ?? current?.enabled ?? true,
  };
}

export async function findRule(db: Db | Tx, id: string): Promise<CashbackRule | null> {
  return db.cashbackRule.findUnique({ where: { id } });
}

/** Every enabled rule, for the in-memory cache. */
export async function loadEnabledRules(db: Db): Promise<Rule[]> {
  const rows = await db.cashbackRule.findMany({ where: { enabled: true } });
  return rows.map(toRule);
}
