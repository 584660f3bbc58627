import Type from "typebox";
import { currentTraceparent } from "@cashback/telemetry";
import type { Db } from "../db.ts";
import { actingMerchant, assertCanAccess, principalOf } from "../http/auth.ts";
import { notFound } from "../http/errors.ts";
import { idempotencyRequest, send, type Idempotency } from "../http/idempotency.ts";
import { AmountMinor, Category, Currency, errors, IdempotencyHeaders, IdParams, Timestamp, UUID_RE } from "../http/schemas.ts";
import type { App } from "../http/server.ts";
import { findPurchase, loadPurchaseView } from "./purchase-store.ts";
import type { PurchaseWriter } from "./purchase-writer.ts";
import { createRefund } from "./refunds.ts";
import { purchaseTrace, TraceSchema } from "./trace.ts";

export function registerPurchaseRoutes(app: App, deps: { db: Db; idempotency: Idempotency; writer: PurchaseWriter; onEventWritten: () => void }) {
  const { db, idempotency, writer } = deps;

  app.post("/v1/purchases", {
    schema: {
      tags: ["purchases"],
      summary: "Record a purchase; answers with the cashback it earned",
      description:
        "One database transaction writes the purchase, its cashback ledger entry and the cashback.accrued event (published to JetStream by the outbox relay). amount_minor is in the currency's minor units (cents); cashback amounts are decimal strings of wei.",
      headers: IdempotencyHeaders,
      body: Type.Object(
        {
          user_id: Type.String({ pattern: UUID_RE }),
          category: Category,
          amount_minor: AmountMinor,
          currency: Currency,
          occurred_at: Timestamp,
          merchant_id: Type.Optional(Type.String({ pattern: UUID_RE, description: "required with the admin key; a merchant key may only name itself" })),
        },
        { additionalProperties: false },
      ),
      response: { 201: Type.Ref("Purchase"), ...errors(403, 404, 409, 413, 422) },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const answer = await writer.create({
        principalKind: principalOf(request).kind,
        merchantId: actingMerchant(request, body.merchant_id),
        userId: body.user_id,
        category: body.category,
        amountMinor: BigInt(body.amount_minor), // a safe integer (schema: <= 10^15), converted exactly
        currency: body.currency,
        occurredAt: new Date(body.occurred_at),
        idempotency: idempotencyRequest(request),
        traceparent: currentTraceparent(),
      });
      return send(reply, answer);
    },
  });

  app.get("/v1/purchases/:id", {
    schema: { tags: ["purchases"], summary: "A purchase with its cashback (status; once minted the mint id, tx hash and block) and refunds", params: IdParams, response: { 200: Type.Ref("Purchase"), ...errors(403, 404) } },
    handler: async (request) => {
      const purchase = await findPurchase(db, request.params.id);
      if (!purchase) throw notFound("purchase");
      assertCanAccess(request, purchase.merchantId);
      return loadPurchaseView(db, purchase);
    },
  });

  app.get("/v1/purchases/:id/trace", {
    schema: {
      tags: ["purchases"],
      summary: "The purchase's whole path: ledger entries, outbox events and when they were published, result events received, tx hash and block",
      params: IdParams,
      response: { 200: TraceSchema, ...errors(403, 404) },
    },
    handler: async (request) => {
      const purchase = await findPurchase(db, request.params.id);
      if (!purchase) throw notFound("purchase");
      assertCanAccess(request, purchase.merchantId);
      return purchaseTrace(db, purchase);
    },
  });

  app.post("/v1/purchases/:id/refunds", {
    schema: {
      tags: ["purchases"],
      summary: "Refund (part of) a purchase; claws back its share of the cashback",
      description:
        "Several refunds per purchase, up to its amount (422 beyond). Each takes back floor(C*R/A) - floor(C*R0/A) of cashback C, where A is the purchase amount and R0, R the refunded total before and after: exact, never more than the cashback, all of it once fully refunded.",
      params: IdParams,
      headers: IdempotencyHeaders,
      body: Type.Object({ amount_minor: AmountMinor, reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
      response: { 201: Type.Ref("Refund"), ...errors(403, 404, 422) },
    },
    handler: async (request, reply) => {
      const answer = await createRefund(idempotency, {
        purchaseId: request.params.id,
        amountMinor: BigInt(request.body.amount_minor),
        reason: request.body.reason ?? null,
        idempotency: idempotencyRequest(request),
        traceparent: currentTraceparent(),
        assertAccess: (merchantId) => assertCanAccess(request, merchantId),
      }, deps.onEventWritten);
      return send(reply, answer);
    },
  });
}
