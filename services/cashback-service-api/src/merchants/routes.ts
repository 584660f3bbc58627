import Type from "typebox";
import type { Db } from "../db.ts";
import type { ApiKey, Merchant } from "../generated/prisma/client.ts";
import { assertCanAccess, newApiKey, principalOf, requireAdmin } from "../http/auth.ts";
import { notFound } from "../http/errors.ts";
import { idempotencyRequest, send, type Idempotency } from "../http/idempotency.ts";
import { errors, IdempotencyHeaders, IdParams, Nullable, Page, page, PageQuery, Timestamp, Uuid, UUID_RE } from "../http/schemas.ts";
import type { App } from "../http/server.ts";
import { uuidv7 } from "../support/uuid.ts";

const Stacking = Type.Union([Type.Literal("best_of"), Type.Literal("sum")], {
  description: "how rules of the same priority combine: best_of pays the largest one, sum pays them all",
});
const MerchantSchema = Type.Object({ id: Uuid, name: Type.String(), stacking: Stacking, created_at: Timestamp, updated_at: Timestamp });
const ApiKeySchema = Type.Object({
  id: Uuid,
  merchant_id: Uuid,
  name: Type.String(),
  prefix: Type.String({ description: "the key's first characters, to tell keys apart" }),
  created_at: Timestamp,
  revoked_at: Nullable(Timestamp),
});
const NewApiKeySchema = Type.Object({
  ...ApiKeySchema.properties,
  key: Nullable(Type.String({ description: "the key itself: shown this once and stored only as a hash, so an Idempotency-Key replay of this request answers null" })),
});

const merchantView = (m: Merchant) => ({ id: m.id, name: m.name, stacking: m.stacking, created_at: m.createdAt.toISOString(), updated_at: m.updatedAt.toISOString() });
const keyView = (k: ApiKey) => ({ id: k.id, merchant_id: k.merchantId, name: k.name, prefix: k.prefix, created_at: k.createdAt.toISOString(), revoked_at: k.revokedAt?.toISOString() ?? null });

/** Merchants and their API keys: the admin key creates and changes them; a merchant reads its own. */
export function registerMerchantRoutes(app: App, deps: { db: Db; idempotency: Idempotency; onMerchantsChanged: () => void; onKeysChanged: () => void }) {
  const { db, idempotency } = deps;

  app.get("/v1/me", {
    schema: {
      tags: ["merchants"],
      summary: "Who the key belongs to",
      response: { 200: Type.Object({ kind: Type.Union([Type.Literal("admin"), Type.Literal("merchant")]), merchant_id: Nullable(Uuid), key_id: Nullable(Uuid) }), ...errors() },
    },
    handler: async (request) => {
      const p = principalOf(request);
      return p.kind === "admin" ? { kind: "admin" as const, merchant_id: null, key_id: null } : { kind: "merchant" as const, merchant_id: p.merchantId, key_id: p.id };
    },
  });

  app.post("/v1/merchants", {
    schema: {
      tags: ["merchants"],
      summary: "Create a merchant (admin)",
      headers: IdempotencyHeaders,
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }), stacking: Type.Optional(Stacking) }, { additionalProperties: false }),
      response: { 201: MerchantSchema, ...errors(403, 422) },
    },
    handler: async (request, reply) => {
      requireAdmin(request);
      const answer = await idempotency.run(idempotencyRequest(request), async (tx) => {
        const m = await tx.merchant.create({ data: { id: uuidv7(), name: request.body.name, stacking: request.body.stacking ?? "best_of" } });
        return { status: 201, body: merchantView(m) };
      });
      return send(reply, answer);
    },
  });

  app.get("/v1/merchants", {
    schema: { tags: ["merchants"], summary: "List merchants (admin)", querystring: Type.Object(PageQuery, { additionalProperties: false }), response: { 200: Page(MerchantSchema), ...errors(403) } },
    handler: async (request) => {
      requireAdmin(request);
      const limit = request.query.limit ?? 20;
      const rows = await db.merchant.findMany({ where: request.query.cursor ? { id: { lt: request.query.cursor } } : {}, orderBy: { id: "desc" }, take: limit + 1 });
      return page(rows, limit, merchantView);
    },
  });

  app.get("/v1/merchants/:id", {
    schema: { tags: ["merchants"], summary: "Get a merchant (admin, or the merchant itself)", params: IdParams, response: { 200: MerchantSchema, ...errors(403, 404) } },
    handler: async (request) => {
      assertCanAccess(request, request.params.id);
      const m = await db.merchant.findUnique({ where: { id: request.params.id } });
      if (!m) throw notFound("merchant");
      return merchantView(m);
    },
  });

  app.patch("/v1/merchants/:id", {
    schema: {
      tags: ["merchants"],
      summary: "Rename a merchant or change its stacking mode (admin)",
      params: IdParams,
      body: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), stacking: Type.Optional(Stacking) }, { additionalProperties: false }),
      response: { 200: MerchantSchema, ...errors(403, 404) },
    },
    handler: async (request) => {
      requireAdmin(request);
      const found = await db.merchant.findUnique({ where: { id: request.params.id } });
      if (!found) throw notFound("merchant");
      const m = await db.merchant.update({ where: { id: request.params.id }, data: request.body });
      deps.onMerchantsChanged();
      return merchantView(m);
    },
  });

  app.post("/v1/merchants/:id/api-keys", {
    schema: {
      tags: ["merchants"],
      summary: "Issue an API key for a merchant (admin); the key is in this answer only",
      params: IdParams,
      headers: IdempotencyHeaders,
      body: Type.Union([Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false }), Type.Null()]),
      response: { 201: NewApiKeySchema, ...errors(403, 404, 422) },
    },
    handler: async (request, reply) => {
      requireAdmin(request);
      const answer = await idempotency.run(idempotencyRequest(request), async (tx) => {
        const merchant = await tx.merchant.findUnique({ where: { id: request.params.id } });
        if (!merchant) throw notFound("merchant");
        const { key, hash, prefix } = newApiKey();
        const row = await tx.apiKey.create({ data: { id: uuidv7(), merchantId: merchant.id, name: request.body?.name ?? "default", prefix, keyHash: hash } });
        // A retry with the same Idempotency-Key gets this key's record, not a second key, and not
        // the key itself either: it is never stored, not even in the idempotency record.
        return { status: 201, body: { ...keyView(row), key }, storedBody: { ...keyView(row), key: null } };
      });
      return send(reply, answer);
    },
  });

  app.get("/v1/merchants/:id/api-keys", {
    schema: { tags: ["merchants"], summary: "List a merchant's API keys (never the keys themselves)", params: IdParams, response: { 200: Type.Object({ data: Type.Array(ApiKeySchema) }), ...errors(403, 404) } },
    handler: async (request) => {
      assertCanAccess(request, request.params.id);
      const merchant = await db.merchant.findUnique({ where: { id: request.params.id } });
      if (!merchant) throw notFound("merchant");
      const rows = await db.apiKey.findMany({ where: { merchantId: merchant.id }, orderBy: { id: "asc" } });
      return { data: rows.map(keyView) };
    },
  });

  app.post("/v1/merchants/:id/api-keys/:key_id/revoke", {
    schema: {
      tags: ["merchants"],
      summary: "Revoke an API key (admin); it stops working at once on every instance",
      params: Type.Object({ id: Type.String({ pattern: UUID_RE }), key_id: Type.String({ pattern: UUID_RE }) }, { additionalProperties: false }),
      headers: IdempotencyHeaders,
      response: { 200: ApiKeySchema, ...errors(403, 404) },
    },
    handler: async (request, reply) => {
      requireAdmin(request);
      const answer = await idempotency.run(idempotencyRequest(request), async (tx) => {
        const key = await tx.apiKey.findUnique({ where: { id: request.params.key_id } });
        if (!key || key.merchantId !== request.params.id) throw notFound("API key");
        const row = key.revokedAt ? key : await tx.apiKey.update({ where: { id: key.id }, data: { revokedAt: new Date() } });
        return { status: 200, body: keyView(row) };
      });
      deps.onKeysChanged(); // this instance at once; the others through NOTIFY
      return send(reply, answer);
    },
  });
}
