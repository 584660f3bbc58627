import Type from "typebox";
import { getAddress, isAddress } from "viem";
import { isUniqueViolation, type Db } from "../db.ts";
import type { User } from "../generated/prisma/client.ts";
import { actingMerchant, assertCanAccess, principalOf } from "../http/auth.ts";
import { ApiError, notFound } from "../http/errors.ts";
import { idempotencyRequest, send, type Idempotency } from "../http/idempotency.ts";
import { Address, errors, IdempotencyHeaders, IdParams, Page, page, PageQuery, Timestamp, Uuid, UUID_RE } from "../http/schemas.ts";
import type { App } from "../http/server.ts";
import { userPurchasesPage } from "../purchases/purchase-store.ts";
import { uuidv7 } from "../support/uuid.ts";

const UserSchema = Type.Object(
  { id: Uuid, merchant_id: Uuid, external_id: Type.String(), email: Type.String(), wallet_address: Address, created_at: Timestamp },
  { $id: "User" },
);
export { UserSchema };

const userView = (u: User) => ({ id: u.id, merchant_id: u.merchantId, external_id: u.externalId, email: u.email, wallet_address: u.walletAddress, created_at: u.createdAt.toISOString() });

/** EIP-55: all-lower or all-upper hex is accepted and checksummed; mixed case must carry a valid checksum. */
export function checksummedWallet(value: string): string {
  if (!isAddress(value, { strict: false })) throw new ApiError("invalid_request", "wallet_address is not an address (0x + 40 hex digits)");
  const lowerOrUpper = value.slice(2) === value.slice(2).toLowerCase() || value.slice(2) === value.slice(2).toUpperCase();
  if (!lowerOrUpper && !isAddress(value, { strict: true })) throw new ApiError("invalid_request", "wallet_address has an invalid EIP-55 checksum");
  return getAddress(value);
}

/** A user the caller may see (404, then 403 for another merchant's). */
export async function accessibleUser(db: Db, request: Parameters<typeof assertCanAccess>[0], id: string): Promise<User> {
  const user = await db.user.findUnique({ where: { id } });
  if (!user) throw notFound("user");
  assertCanAccess(request, user.merchantId);
  return user;
}

export function registerUserRoutes(app: App, deps: { db: Db; idempotency: Idempotency }) {
  const { db, idempotency } = deps;

  app.post("/v1/users", {
    schema: {
      tags: ["users"],
      summary: "Create a user (a shopper of the merchant)",
      description: "external_id is the merchant's own id for the shopper, unique per merchant (409 on a duplicate). The wallet is stored EIP-55 checksummed.",
      headers: IdempotencyHeaders,
      body: Type.Object(
        {
          external_id: Type.String({ minLength: 1, maxLength: 200 }),
          email: Type.String({ format: "email", maxLength: 320 }),
          wallet_address: Address,
          merchant_id: Type.Optional(Type.String({ pattern: UUID_RE, description: "required with the admin key; a merchant key may only name itself" })),
        },
        { additionalProperties: false },
      ),
      response: { 201: Type.Ref("User"), ...errors(403, 409, 422) },
    },
    handler: async (request, reply) => {
      const merchantId = actingMerchant(request, request.body.merchant_id);
      const wallet = checksummedWallet(request.body.wallet_address);
      try {
        const answer = await idempotency.run(idempotencyRequest(request), async (tx) => {
          const merchant = await tx.merchant.findUnique({ where: { id: merchantId }, select: { id: true } });
          if (!merchant) throw notFound("merchant");
          const user = await tx.user.create({ data: { id: uuidv7(), merchantId, externalId: request.body.external_id, email: request.body.email, walletAddress: wallet } });
          return { status: 201, body: userView(user) };
        });
        return send(reply, answer);
      } catch (err) {
        if (isUniqueViolation(err)) throw new ApiError("conflict", "this merchant already has a user with that external_id", { external_id: request.body.external_id });
        throw err;
      }
    },
  });

  app.get("/v1/users/:id", {
    schema: { tags: ["users"], summary: "Get a user", params: IdParams, response: { 200: Type.Ref("User"), ...errors(403, 404) } },
    handler: async (request) => userView(await accessibleUser(db, request, request.params.id)),
  });

  app.get("/v1/users", {
    schema: {
      tags: ["users"],
      summary: "List users, newest first (cursor pagination)",
      querystring: Type.Object({ ...PageQuery, merchant_id: Type.Optional(Type.String({ pattern: UUID_RE, description: "admin: only this merchant's users" })) }, { additionalProperties: false }),
      response: { 200: Page(Type.Ref("User")), ...errors(403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const merchantId = principal.kind === "admin" ? request.query.merchant_id : actingMerchant(request, request.query.merchant_id);
      const limit = request.query.limit ?? 20;
      const rows = await db.user.findMany({
        where: { ...(merchantId ? { merchantId } : {}), ...(request.query.cursor ? { id: { lt: request.query.cursor } } : {}) },
        orderBy: { id: "desc" },
        take: limit + 1,
      });
      return page(rows, limit, userView);
    },
  });

  app.get("/v1/users/:id/purchases", {
    schema: {
      tags: ["purchases"],
      summary: "A user's purchases, newest first, with their cashback",
      params: IdParams,
      querystring: Type.Object(PageQuery, { additionalProperties: false }),
      response: { 200: Page(Type.Ref("Purchase")), ...errors(403, 404) },
    },
    handler: async (request) => {
      const user = await accessibleUser(db, request, request.params.id);
      const limit = request.query.limit ?? 20;
      const { rows, views } = await userPurchasesPage(db, user.id, { limit, cursor: request.query.cursor });
      return page(rows, limit, (p) => views.get(p.id)!);
    },
  });
}
