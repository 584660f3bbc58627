import Type from "typebox";
import type { Logger } from "pino";
import type { Db } from "../db.ts";
import { assertCanAccess, principalOf } from "../http/auth.ts";
import { ApiError, forbidden, notFound } from "../http/errors.ts";
import { idempotencyRequest, send, type Idempotency } from "../http/idempotency.ts";
import { AmountMinor, Category, Currency, errors, IdempotencyHeaders, IdParams, Nullable, PositiveWei, Timestamp, Uuid, UUID_RE, Wei } from "../http/schemas.ts";
import type { App } from "../http/server.ts";
import { uuidv7 } from "../support/uuid.ts";
import type { RuleCache } from "./rule-cache.ts";
import { findRule, mergeRule, ruleView, type RuleFields } from "./rule-store.ts";

const MinPurchase = Type.Object(
  { amount_minor: AmountMinor, currency: Currency },
  { additionalProperties: false, description: "the rule applies to purchases worth at least this (compared in wei at the configured rates)" },
);

export const RuleSchema = Type.Object(
  {
    id: Uuid,
    merchant_id: Nullable(Uuid),
    name: Type.String(),
    kind: Type.Union([Type.Literal("percentage"), Type.Literal("fixed")]),
    basis_points: Nullable(Type.Integer()),
    fixed_amount_wei: Nullable(Wei),
    min_purchase: Nullable(Type.Object({ amount_minor: AmountMinor, currency: Currency })),
    max_cashback_wei: Nullable(Wei),
    user_daily_cap_wei: Nullable(Wei),
    user_monthly_cap_wei: Nullable(Wei),
    categories: Type.Array(Type.String()),
    starts_at: Nullable(Timestamp),
    ends_at: Nullable(Timestamp),
    priority: Type.Integer(),
    enabled: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Rule", description: "merchant_id null: platform-wide (applies to every merchant's purchases)" },
);

const field = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  kind: Type.Union([Type.Literal("percentage"), Type.Literal("fixed")]),
  basis_points: Nullable(Type.Integer({ minimum: 1, maximum: 10_000, description: "percentage rules: 1/100 of a percent of the purchase (250 = 2.5%)" })),
  fixed_amount_wei: Nullable(PositiveWei),
  min_purchase: Nullable(MinPurchase),
  max_cashback_wei: Nullable(PositiveWei),
  user_daily_cap_wei: Nullable(PositiveWei),
  user_monthly_cap_wei: Nullable(PositiveWei),
  categories: Type.Array(Category, { maxItems: 100, description: "empty: every category" }),
  starts_at: Nullable(Timestamp),
  ends_at: Nullable(Timestamp),
  priority: Type.Integer({ minimum: -1_000_000, maximum: 1_000_000, description: "only the highest priority that pays anything counts" }),
  enabled: Type.Boolean(),
};

const optionalFields = {
  basis_points: Type.Optional(field.basis_points),
  fixed_amount_wei: Type.Optional(field.fixed_amount_wei),
  min_purchase: Type.Optional(field.min_purchase),
  max_cashback_wei: Type.Optional(field.max_cashback_wei),
  user_daily_cap_wei: Type.Optional(field.user_daily_cap_wei),
  user_monthly_cap_wei: Type.Optional(field.user_monthly_cap_wei),
  categories: Type.Optional(field.categories),
  starts_at: Type.Optional(field.starts_at),
  ends_at: Type.Optional(field.ends_at),
  priority: Type.Optional(field.priority),
  enabled: Type.Optional(field.enabled),
};

const CreateRuleBody = Type.Object(
  {
    name: field.name,
    kind: field.kind,
    ...optionalFields,
    merchant_id: Type.Optional(Type.String({ pattern: UUID_RE, description: "admin: the merchant the rule is for (omit for platform-wide); merchant keys: only themselves" })),
  },
  { additionalProperties: false },
);

const PatchRuleBody = Type.Object({ name: Type.Optional(field.name), kind: Type.Optional(field.kind), ...optionalFields }, { additionalProperties: false, minProperties: 1 });

const RULE_DOC =
  "Eligible: enabled, in [starts_at, ends_at), category listed (or none listed), at least min_purchase. Reward: basis_points of the purchase converted to wei (rounded down) or fixed_amount_wei, cut to max_cashback_wei and to what is left of the user's daily/monthly cap for this rule (UTC). Only the highest priority that pays anything counts; within it the merchant's stacking mode pays the best one (ties: smallest rule id) or the sum. Changes apply to purchases recorded after them.";

export function registerRuleRoutes(app: App, deps: { db: Db; idempotency: Idempotency; rules: RuleCache; logger: Logger }) {
  const { db, idempotency, rules } = deps;
  /** This instance sees its own change before answering; the others through NOTIFY. */
  const refresh = () => rules.reload().catch((err: unknown) => deps.logger.warn({ err: String(err) }, "rule cache reload failed; NOTIFY will retry"));

  app.post("/v1/rules", {
    schema: {
      tags: ["rules"],
      summary: "Create a cashback rule (platform-wide with the admin key and no merchant_id)",
      description: RULE_DOC,
      headers: IdempotencyHeaders,
      body: CreateRuleBody,
      response: { 201: Type.Ref("Rule"), ...errors(403, 404, 422) },
    },
    handler: async (request, reply) => {
      const body: RuleFields & { merchant_id?: string } = request.body;
      const principal = principalOf(request);
      let merchantId: string | null = body.merchant_id ?? null;
      if (principal.kind === "merchant") {
        if (merchantId !== null && merchantId !== principal.merchantId) throw forbidden();
        merchantId = principal.merchantId;
      }
      const data = mergeRule(null, body);
      const answer = await idempotency.run(idempotencyRequest(request), async (tx) => {
        if (merchantId && !(await tx.merchant.findUnique({ where: { id: merchantId }, select: { id: true } }))) throw notFound("merchant");
        const row = await tx.cashbackRule.create({ data: { ...data, id: uuidv7(), merchantId } });
        return { status: 201, body: ruleView(row) };
      });
      await refresh();
      return send(reply, answer);
    },
  });

  app.get("/v1/rules", {
    schema: {
      tags: ["rules"],
      summary: "List rules: a merchant sees its own and the platform-wide ones",
      querystring: Type.Object(
        {
          merchant_id: Type.Optional(Type.String({ pattern: UUID_RE, description: "admin: this merchant's rules and the platform-wide ones" })),
          include_disabled: Type.Optional(Type.Boolean({ default: false })),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Object({ data: Type.Array(Type.Ref("Rule")) }), ...errors(403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const merchantId = principal.kind === "merchant" ? principal.merchantId : request.query.merchant_id;
      if (principal.kind === "merchant" && request.query.merchant_id && request.query.merchant_id !== principal.merchantId) throw forbidden();
      const rows = await db.cashbackRule.findMany({
        where: {
          ...(principal.kind === "admin" && !merchantId ? {} : { OR: [{ merchantId: null }, { merchantId }] }),
          ...(request.query.include_disabled ? {} : { enabled: true }),
        },
        orderBy: [{ priority: "desc" }, { id: "asc" }],
      });
      return { data: rows.map(ruleView) };
    },
  });

  app.get("/v1/rules/:id", {
    schema: { tags: ["rules"], summary: "Get a rule", params: IdParams, response: { 200: Type.Ref("Rule"), ...errors(403, 404) } },
    handler: async (request) => {
      const row = await findRule(db, request.params.id);
      if (!row) throw notFound("rule");
      if (row.merchantId !== null) assertCanAccess(request, row.merchantId);
      return ruleView(row);
    },
  });

  app.patch("/v1/rules/:id", {
    schema: {
      tags: ["rules"],
      summary: "Change a rule (platform-wide rules: admin only)",
      description: RULE_DOC,
      params: IdParams,
      body: PatchRuleBody,
      response: { 200: Type.Ref("Rule"), ...errors(403, 404) },
    },
    handler: async (request) => {
      const row = await db.$transaction(async (tx) => {
        const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM cashback_rules WHERE id = ${request.params.id}::uuid FOR UPDATE`;
        if (locked.length === 0) throw notFound("rule");
        const current = (await findRule(tx, request.params.id))!;
        assertCanChange(request, current.merchantId);
        return tx.cashbackRule.update({ where: { id: current.id }, data: mergeRule(current, request.body) });
      });
      await refresh();
      return ruleView(row);
    },
  });

  app.post("/v1/rules/:id/disable", {
    schema: { tags: ["rules"], summary: "Disable a rule (the same as PATCH enabled=false)", params: IdParams, headers: IdempotencyHeaders, response: { 200: Type.Ref("Rule"), ...errors(403, 404) } },
    handler: async (request, reply) => {
      const answer = await idempotency.run(idempotencyRequest(request), async (tx) => {
        const current = await findRule(tx, request.params.id);
        if (!current) throw notFound("rule");
        assertCanChange(request, current.merchantId);
        const row = current.enabled ? await tx.cashbackRule.update({ where: { id: current.id }, data: { enabled: false } }) : current;
        return { status: 200, body: ruleView(row) };
      });
      await refresh();
      return send(reply, answer);
    },
  });

  function assertCanChange(request: Parameters<typeof principalOf>[0], ownerMerchantId: string | null) {
    if (ownerMerchantId === null && principalOf(request).kind !== "admin") throw new ApiError("forbidden", "platform-wide rules can only be changed with the admin key");
    if (ownerMerchantId !== null) assertCanAccess(request, ownerMerchantId);
  }
}
