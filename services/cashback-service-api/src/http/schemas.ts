import Type, { type TSchema } from "typebox";
import { WEI_PATTERN } from "../rules/money.ts";

/** Field formats shared by the routes (snake_case JSON, money never a float). */
export const UUID_RE = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
export const Uuid = Type.String({ pattern: UUID_RE, description: "lower-case UUID" });
export const Wei = Type.String({ pattern: WEI_PATTERN, description: "wei as a decimal string (1 CBK = 1000000000000000000)", examples: ["2500000000000000000"] });
export const PositiveWei = Type.String({ pattern: "^[1-9][0-9]{0,77}$", description: "wei as a decimal string, > 0" });
export const AmountMinor = Type.Integer({ minimum: 1, maximum: 1e15, description: "integer minor units of the currency (cents), at most 10^15", examples: [12999] });
export const Currency = Type.String({ pattern: "^[A-Z]{3}$", description: "ISO 4217 code with a configured rate (API_CASHBACK_RATES)", examples: ["USD"] });
export const Address = Type.String({ pattern: "^0x[0-9a-fA-F]{40}$", description: "EVM address; stored and returned EIP-55 checksummed" });
export const Timestamp = Type.String({ format: "date-time", description: "ISO 8601" });
export const Category = Type.String({ pattern: "^[a-z0-9][a-z0-9_.-]{0,63}$", description: "lower-case slug, e.g. groceries" });
export const Bytes32 = Type.String({ pattern: "^0x[0-9a-f]{64}$" });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "stable machine-readable code, e.g. invalid_request, forbidden, idempotency_key_reused" }),
      message: Type.String(),
      details: Type.Record(Type.String(), Type.Unknown()),
    }),
  },
  { $id: "ErrorBody", description: "every error answer" },
);

/** Response schemas for the error statuses a route can answer (documentation and serialization). */
export function errors(...statuses: number[]): Record<number, TSchema> {
  const out: Record<number, TSchema> = {};
  for (const s of [400, 401, 429, ...statuses]) out[s] = Type.Ref("ErrorBody");
  return out;
}

export const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: "page size (1-100, default 20)" })),
  cursor: Type.Optional(Type.String({ pattern: UUID_RE, description: "next_cursor of the previous page" })),
};

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    data: Type.Array(item),
    next_cursor: Nullable(Type.String({ description: "pass as ?cursor= for the next page; null on the last page" })),
  });

/** The standard page answer: ask for one more row than the limit to know whether there is a next page. */
export function page<T extends { id: string }, R>(rows: T[], limit: number, map: (row: T) => R): { data: R[]; next_cursor: string | null } {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  return { data: shown.map(map), next_cursor: more ? shown[shown.length - 1]!.id : null };
}

export const IdempotencyHeaders = Type.Object({
  "idempotency-key": Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: "Stripe semantics: a retry with the same key and body returns the first answer; another body gets 422" })),
});
