import { toDecimal, type Tx } from "../db.ts";
import type { ClawbackRequest } from "./clawback-request.ts";
import { requestTraceparent } from "../rpc/tracing.ts";

/**
 * Every write to `clawbacks` goes through here: status PENDING -> SUBMITTED -> CONFIRMED | FAILED,
 * and back to PENDING (re-queued) when the transaction carrying it was dropped or did not settle it.
 * Each function runs inside the caller's database transaction.
 */
export const clawbackStore = {
  /** Records new keys as PENDING; returns the keys that were new (a known key is left as it is). */
  async insert(tx: Tx, requests: readonly ClawbackRequest[]): Promise<Set<string>> {
    const created = await tx.clawback.createManyAndReturn({
      data: requests.map((r) => ({
        idempotencyKey: r.idempotencyKey,
        refId: r.refId,
        fromAddress: r.from,
        amountWei: toDecimal(r.amountWei),
        metadata: r.metadata,
        traceparent: requestTraceparent(r.metadata),
      })),
      skipDuplicates: true,
      select: { idempotencyKey: true },
    });
    return new Set(created.map((c) => c.idempotencyKey));
  },

  async submitted(tx: Tx, key: string, transactionId: bigint): Promise<void> {
    await tx.clawback.update({ where: { idempotencyKey: key }, data: { status: "SUBMITTED", transactionId } });
  },

  async confirmed(tx: Tx, keys: readonly string[], transactionId: bigint): Promise<void> {
    if (keys.length === 0) return;
    await tx.clawback.updateMany({
      where: { idempotencyKey: { in: [...keys] } },
      data: { status: "CONFIRMED", transactionId, errorReason: null, errorMessage: null },
    });
  },

  /** Final: the contract refused it (reason INSUFFICIENT_BALANCE or REVERTED). */
  async failed(tx: Tx, key: string, reason: string, message: string, transactionId?: bigint): Promise<void> {
    await tx.clawback.update({
      where: { idempotencyKey: key },
      data: { status: "FAILED", errorReason: reason, errorMessage: message, ...(transactionId !== undefined ? { transactionId } : {}) },
    });
  },

  /** Back to the queue, unlinked from any transaction; the refId check keeps a resend harmless. */
  async requeue(tx: Tx, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await tx.clawback.updateMany({ where: { idempotencyKey: { in: [...keys] } }, data: { status: "PENDING", transactionId: null } });
  },

  /** The clawbacks still open on these transactions (their nonce was used by another one). */
  async requeueOf(tx: Tx, transactionIds: readonly bigint[]): Promise<number> {
    const { count } = await tx.clawback.updateMany({
      where: { transactionId: { in: [...transactionIds] }, status: "SUBMITTED" },
      data: { status: "PENDING", transactionId: null },
    });
    return count;
  },

  /** A replacement (same nonce, higher fees) now carries what the old transaction carried. */
  async moveToTransaction(tx: Tx, fromTransactionId: bigint, toTransactionId: bigint): Promise<void> {
    await tx.clawback.updateMany({ where: { transactionId: fromTransactionId }, data: { transactionId: toTransactionId } });
  },
};
