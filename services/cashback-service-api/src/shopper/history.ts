import type { Db } from "../db.ts";
import { jsonMinor } from "../rules/money.ts";
import { ledgerPage, ledgerTotals } from "../ledger/ledger-store.ts";

/**
 * A wallet's cashback history for the shopper page: its ledger entries (an accrual per purchase
 * that earned cashback, a clawback per refund that took some back), newest first, each with its
 * purchase, merchant and, for a clawback, its refund. By wallet, across every merchant that
 * registered it; the route only ever passes the signed-in session's own wallet.
 */
export async function walletHistory(db: Db, walletAddress: string, opts: { limit: number; cursor?: string }) {
  const owner = { walletAddress };
  const [rows, totals] = await Promise.all([ledgerPage(db, owner, opts), ledgerTotals(db, owner)]);
  const more = rows.length > opts.limit;
  const shown = more ? rows.slice(0, opts.limit) : rows;
  const refundIds = shown.flatMap((e) => (e.refundId ? [e.refundId] : []));
  const [purchases, merchants, refunds] = await Promise.all([
    db.purchase.findMany({ where: { id: { in: [...new Set(shown.map((e) => e.purchaseId))] } } }),
    db.merchant.findMany({ where: { id: { in: [...new Set(shown.map((e) => e.merchantId))] } }, select: { id: true, name: true } }),
    refundIds.length ? db.refund.findMany({ where: { id: { in: refundIds } } }) : Promise.resolve([]),
  ]);
  const purchaseById = new Map(purchases.map((p) => [p.id, p]));
  const merchantById = new Map(merchants.map((m) => [m.id, m]));
  const refundById = new Map(refunds.map((r) => [r.id, r]));
  const data = shown.map((e) => {
    const p = purchaseById.get(e.purchaseId)!;
    const r = e.refundId ? refundById.get(e.refundId) : undefined;
    return {
      id: e.id,
      kind: e.kind,
      status: e.status,
      amount_wei: e.amountWei.toFixed(0),
      purchase: { id: p.id, occurred_at: p.occurredAt.toISOString(), amount_minor: jsonMinor(p.amountMinor), currency: p.currency, category: p.category },
      merchant: { id: e.merchantId, name: merchantById.get(e.merchantId)?.name ?? "" },
      refund: r ? { id: r.id, amount_minor: jsonMinor(r.amountMinor), created_at: r.createdAt.toISOString() } : null,
      tx_hash: e.txHash,
      block_number: e.blockNumber?.toString() ?? null,
      failure_reason: e.failureReason,
      created_at: e.createdAt.toISOString(),
      updated_at: e.updatedAt.toISOString(),
    };
  });
  return { wallet_address: walletAddress, totals, entries: { data, next_cursor: more ? shown[shown.length - 1]!.id : null } };
}
