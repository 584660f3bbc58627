import type { Db, Tx } from "../db.ts";
import type { LedgerEntry } from "../generated/prisma/client.ts";
import { initialStatus, type Effect, type LedgerStatus } from "./ledger-state.ts";

/**
 * Owns every write of cashback_ledger's status: the accrual's first row (inside the purchase
 * writer's statement, through `accrualInsertSql`), a clawback's first row, and the transitions
 * decided by `next()` (ledger-state.ts). Reads for the REST API and the shopper page live here
 * too, by user or by wallet.
 */

/**
 * The INSERT of purchases' accruals for the purchase writer's one statement: one row per row of
 * `source` (a CTE with the purchase writer's input columns) that has an entry_id.
 */
export function accrualInsertSql(source: string): string {
  return `INSERT INTO cashback_ledger (id, kind, status, merchant_id, user_id, purchase_id, wallet_address, amount_wei, event_id, created_at, updated_at)
  SELECT entry_id, 'accrual', '${initialStatus("accrual")}', merchant_id, user_id, purchase_id, wallet, cashback_wei, event_id, created_at, created_at
  FROM ${source} WHERE entry_id IS NOT NULL
  RETURNING id`;
}

export async function insertClawback(
  tx: Tx,
  c: { id: string; merchantId: string; userId: string; purchaseId: string; refundId: string; accrualId: string; wallet: string; amountWei: bigint; eventId: string },
): Promise<void> {
  await tx.ledgerEntry.create({
    data: {
      id: c.id,
      kind: "clawback",
      status: initialStatus("clawback"),
      merchantId: c.merchantId,
      userId: c.userId,
      purchaseId: c.purchaseId,
      refundId: c.refundId,
      accrualId: c.accrualId,
      walletAddress: c.wallet,
      amountWei: c.amountWei.toString(),
      eventId: c.eventId,
    },
  });
}

/** Locks the entry a result event is about: the accrual by its id, a clawback by its refund. */
export async function lockEntry(tx: Tx, by: { entryId: string } | { refundId: string }): Promise<LedgerEntry | null> {
  const rows =
    "entryId" in by
      ? await tx.$queryRaw<{ id: string }[]>`SELECT id FROM cashback_ledger WHERE id = ${by.entryId}::uuid FOR UPDATE`
      : await tx.$queryRaw<{ id: string }[]>`SELECT id FROM cashback_ledger WHERE refund_id = ${by.refundId}::uuid FOR UPDATE`;
  if (rows.length === 0) return null;
  return tx.ledgerEntry.findUnique({ where: { id: rows[0]!.id } });
}

/** Writes a transition decided by next(). */
export async function applyTransition(tx: Tx, entryId: string, status: LedgerStatus, effects: readonly Effect[]): Promise<void> {
  const data: Parameters<Tx["ledgerEntry"]["update"]>[0]["data"] = { status };
  for (const effect of effects) {
    if (effect.type === "record_chain") {
      Object.assign(data, { chainRef: effect.chainRef, txHash: effect.txHash, blockNumber: effect.blockNumber, failureReason: null, failureMessage: null });
    } else {
      Object.assign(data, { failureReason: effect.reason.slice(0, 64), failureMessage: effect.message.slice(0, 1000) });
    }
  }
  await tx.ledgerEntry.update({ where: { id: entryId }, data });
}

export type LedgerOwner = { userId: string } | { walletAddress: string };

export function entryView(e: LedgerEntry) {
  return {
    id: e.id,
    kind: e.kind,
    status: e.status,
    purchase_id: e.purchaseId,
    refund_id: e.refundId,
    accrual_id: e.accrualId,
    merchant_id: e.merchantId,
    user_id: e.userId,
    wallet_address: e.walletAddress,
    amount_wei: e.amountWei.toFixed(0),
    event_id: e.eventId,
    /** mint_id for an accrual, ref_id for a clawback. */
    chain_ref: e.chainRef,
    tx_hash: e.txHash,
    block_number: e.blockNumber?.toString() ?? null,
    failure: e.failureReason ? { reason: e.failureReason, message: e.failureMessage ?? "" } : null,
    created_at: e.createdAt.toISOString(),
    updated_at: e.updatedAt.toISOString(),
  };
}
export type EntryView = ReturnType<typeof entryView>;

/** A page of entries, newest first (ids are UUIDv7). */
export async function ledgerPage(db: Db, owner: LedgerOwner, opts: { limit: number; cursor?: string }): Promise<LedgerEntry[]> {
  return db.ledgerEntry.findMany({
    where: { ...owner, ...(opts.cursor ? { id: { lt: opts.cursor } } : {}) },
    orderBy: { id: "desc" },
    take: opts.limit + 1,
  });
}

const STATUSES: LedgerStatus[] = ["pending", "minted", "failed", "clawback_pending", "clawed_back", "clawback_failed"];

/** Sums by status, and what the chain should hold from this ledger: minted minus clawed back. */
export async function ledgerTotals(db: Db, owner: LedgerOwner) {
  const groups = await db.ledgerEntry.groupBy({ by: ["status"], where: owner, _sum: { amountWei: true }, _count: { _all: true } });
  const sums = new Map(groups.map((g) => [g.status as LedgerStatus, BigInt(g._sum.amountWei?.toFixed(0) ?? "0")]));
  const byStatus = Object.fromEntries(STATUSES.map((s) => [`${s}_wei`, (sums.get(s) ?? 0n).toString()])) as Record<`${LedgerStatus}_wei`, string>;
  return {
    ...byStatus,
    net_minted_wei: ((sums.get("minted") ?? 0n) - (sums.get("clawed_back") ?? 0n)).toString(),
    entries: groups.reduce((n, g) => n + g._count._all, 0),
  };
}
