import { fromDecimal, type Db, type Tx } from "../db.ts";
import type { Purchase } from "../generated/prisma/client.ts";
import { purchaseView, type PurchaseRecord, type PurchaseView } from "./purchase-view.ts";

/** Reads of purchases for the REST API (Prisma; the write path is purchase-writer.ts). */

export function toRecord(p: Purchase): PurchaseRecord {
  return {
    id: p.id,
    merchantId: p.merchantId,
    userId: p.userId,
    category: p.category,
    amountMinor: p.amountMinor,
    currency: p.currency,
    occurredAt: p.occurredAt,
    createdAt: p.createdAt,
    refundedMinor: p.refundedMinor,
    cashbackWei: fromDecimal(p.cashbackWei),
    cashbackRules: p.cashbackRules as PurchaseRecord["cashbackRules"],
  };
}

export async function findPurchase(db: Db | Tx, id: string): Promise<Purchase | null> {
  return db.purchase.findUnique({ where: { id } });
}

/** The purchase with its accrual and refunds (and their clawback statuses), as the API shows it. */
export async function loadPurchaseView(db: Db | Tx, purchase: Purchase): Promise<PurchaseView> {
  const [entries, refunds] = await Promise.all([
    db.ledgerEntry.findMany({ where: { purchaseId: purchase.id }, orderBy: { id: "asc" } }),
    db.refund.findMany({ where: { purchaseId: purchase.id }, orderBy: { id: "asc" } }),
  ]);
  const accrual = entries.find((e) => e.kind === "accrual") ?? null;
  const clawbackStatus = new Map(entries.filter((e) => e.kind === "clawback").map((e) => [e.refundId, e.status as string]));
  return purchaseView(
    toRecord(purchase),
    accrual,
    refunds.map((r) => ({ id: r.id, amountMinor: r.amountMinor, clawbackWei: fromDecimal(r.clawbackWei), createdAt: r.createdAt, clawbackStatus: clawbackStatus.get(r.id) ?? null })),
  );
}

/** A user's purchases, newest first, with their cashback (one query per table, not per row). */
export async function userPurchasesPage(db: Db, userId: string, opts: { limit: number; cursor?: string }): Promise<{ rows: Purchase[]; views: Map<string, PurchaseView> }> {
  const rows = await db.purchase.findMany({
    where: { userId, ...(opts.cursor ? { id: { lt: opts.cursor } } : {}) },
    orderBy: { id: "desc" },
    take: opts.limit + 1,
  });
  const ids = rows.map((r) => r.id);
  const [entries, refunds] = await Promise.all([
    db.ledgerEntry.findMany({ where: { purchaseId: { in: ids } }, orderBy: { id: "asc" } }),
    db.refund.findMany({ where: { purchaseId: { in: ids } }, orderBy: { id: "asc" } }),
  ]);
  const views = new Map<string, PurchaseView>();
  for (const p of rows) {
    const mine = entries.filter((e) => e.purchaseId === p.id);
    const clawbackStatus = new Map(mine.filter((e) => e.kind === "clawback").map((e) => [e.refundId, e.status as string]));
    views.set(
      p.id,
      purchaseView(
        toRecord(p),
        mine.find((e) => e.kind === "accrual") ?? null,
        refunds.filter((r) => r.purchaseId === p.id).map((r) => ({ id: r.id, amountMinor: r.amountMinor, clawbackWei: fromDecimal(r.clawbackWei), createdAt: r.createdAt, clawbackStatus: clawbackStatus.get(r.id) ?? null })),
      ),
    );
  }
  return { rows, views };
}
