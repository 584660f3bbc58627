import { newEvent } from "@cashback/events";
import { outboxRecord } from "@cashback/outbox";
import Type from "typebox";
import { fromDecimal, type Prisma } from "../db.ts";
import { notFound, unprocessable } from "../http/errors.ts";
import type { Answer, Idempotency, IdempotencyRequest } from "../http/idempotency.ts";
import { AmountMinor, Nullable, Timestamp, Uuid, Wei } from "../http/schemas.ts";
import { insertClawback } from "../ledger/ledger-store.ts";
import { jsonMinor } from "../rules/money.ts";
import { uuidv7 } from "../support/uuid.ts";
import { clawbackShare } from "./refund-share.ts";

export const RefundSchema = Type.Object(
  {
    id: Uuid,
    purchase_id: Uuid,
    merchant_id: Uuid,
    amount_minor: AmountMinor,
    clawback_wei: Wei,
    clawback_entry_id: Nullable(Uuid),
    clawback_status: Type.Union([Type.Literal("none"), Type.Literal("clawback_pending")], { description: "none: its share of the cashback is 0" }),
    reason: Nullable(Type.String()),
    purchase_refunded_minor: Type.Integer({ minimum: 0 }),
    created_at: Timestamp,
  },
  { $id: "Refund" },
);

export interface RefundRequest {
  purchaseId: string;
  amountMinor: bigint;
  reason: string | null;
  idempotency?: IdempotencyRequest;
  traceparent?: string;
  /** Throws 403 unless the caller may act on this merchant's data. */
  assertAccess: (merchantId: string) => void;
}

/**
 * A refund of (part of) a purchase, in one transaction: the purchase row is locked (FOR UPDATE)
 * so concurrent refunds of one purchase queue up and never refund more than its amount (the
 * table's CHECK says so too); its share of the cashback (refund-share.ts) becomes a clawback
 * ledger entry and a `cashback.clawback_requested` outbox event, ordered after the accrual's
 * event (same aggregate: the accrual entry).
 */
export async function createRefund(idempotency: Idempotency, req: RefundRequest, onEventWritten: () => void): Promise<Answer> {
  const answer = await idempotency.run(req.idempotency, async (tx) => {
    const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM purchases WHERE id = ${req.purchaseId}::uuid FOR UPDATE`;
    if (locked.length === 0) throw notFound("purchase");
    const purchase = (await tx.purchase.findUnique({ where: { id: req.purchaseId } }))!;
    req.assertAccess(purchase.merchantId);
    const left = purchase.amountMinor - purchase.refundedMinor;
    if (req.amountMinor > left) {
      throw unprocessable(`the refund (${req.amountMinor}) is more than is left to refund of this purchase (${left} of ${purchase.amountMinor})`, {
        amount_minor: req.amountMinor.toString(),
        refundable_minor: left.toString(),
      });
    }
    const cashbackWei = fromDecimal(purchase.cashbackWei);
    const share = clawbackShare({ cashbackWei, amountMinor: purchase.amountMinor, refundedBeforeMinor: purchase.refundedMinor, refundMinor: req.amountMinor });
    const now = new Date();
    const refundId = uuidv7(now.getTime());
    const refund = await tx.refund.create({
      data: { id: refundId, purchaseId: purchase.id, merchantId: purchase.merchantId, amountMinor: req.amountMinor, clawbackWei: share.toString(), reason: req.reason, createdAt: now },
    });
    const refundedMinor = purchase.refundedMinor + req.amountMinor;
    await tx.purchase.update({ where: { id: purchase.id }, data: { refundedMinor } });

    let clawbackEntryId: string | null = null;
    if (share > 0n) {
      const accrual = await tx.ledgerEntry.findFirst({ where: { purchaseId: purchase.id, kind: "accrual" } });
      if (!accrual) throw new Error(`purchase ${purchase.id} has cashback but no accrual entry`);
      clawbackEntryId = uuidv7(now.getTime());
      const event = newEvent(
        "cashback.clawback_requested",
        { refund_id: refundId, entry_id: accrual.id, purchase_id: purchase.id, merchant_id: purchase.merchantId, user_id: purchase.userId, wallet: accrual.walletAddress, amount_wei: share.toString() },
        { correlationId: purchase.id, occurredAt: now },
      );
      await insertClawback(tx, {
        id: clawbackEntryId,
        merchantId: purchase.merchantId,
        userId: purchase.userId,
        purchaseId: purchase.id,
        refundId,
        accrualId: accrual.id,
        wallet: accrual.walletAddress,
        amountWei: share,
        eventId: event.id,
      });
      const record = outboxRecord(event, { aggregateId: accrual.id, headers: req.traceparent ? { traceparent: req.traceparent } : {} });
      await tx.outboxEvent.create({ data: { ...record, payload: record.payload as unknown as Prisma.InputJsonValue } });
    }
    return {
      status: 201,
      body: {
        id: refund.id,
        purchase_id: purchase.id,
        merchant_id: purchase.merchantId,
        amount_minor: jsonMinor(req.amountMinor),
        clawback_wei: share.toString(),
        clawback_entry_id: clawbackEntryId,
        clawback_status: share > 0n ? "clawback_pending" : "none",
        reason: req.reason,
        purchase_refunded_minor: jsonMinor(refundedMinor),
        created_at: now.toISOString(),
      },
    };
  });
  if (!answer.replayed && (answer.body as { clawback_entry_id: string | null }).clawback_entry_id) onEventWritten();
  return answer;
}
