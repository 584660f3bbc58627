import { parseTransaction, type Hash, type Hex } from "viem";
import type { Logger } from "@cashback/runtime";
import type { ChainClient } from "../chain/chain-client.ts";
import { isNonceError, shortMessage } from "../chain/rpc-errors.ts";
import type { TxKind } from "../chain/token-calls.ts";
import { clawbackStore } from "../clawbacks/clawback-store.ts";
import { fromDecimal, isDatabaseUnavailable, type Db } from "../db.ts";
import { backoffMs, FailureStreak } from "../failure-streak.ts";
import type { Metrics } from "../metrics.ts";
import type { Settlement } from "./settlement.ts";
import { txRow } from "./tx-row.ts";

/** Fee bump for a replacement; nodes require at least +10% on both fee fields. */
const BUMP_PERCENT = 125n;

/**
 * Looks after transactions that have no recorded receipt yet, oldest nonce first:
 * - a receipt exists (for it or a replacement with its nonce): record it;
 * - its nonce was used by a transaction that is not ours on file: drop it and re-queue its
 *   mints and clawback (the dispatcher checks their ids on chain before sending anything again);
 * - the node no longer knows it (dropped from the mempool, node restarted): send the same
 *   signed bytes again, or a replacement if the node refuses them;
 * - the next nonce to be mined, pending longer than `stuckAfterMs`: replace it with the same
 *   call, same nonce, higher fees (up to a cap);
 * - and a nonce gap below all of them: fill it (see fillNonceGap).
 */
export class TxMonitor {
  private readonly deps: {
    db: Db;
    chain: ChainClient;
    settlement: Settlement;
    /** Told when re-queued mints must be checked on chain (every lane may send them). */
    dispatcher: { requireChainCheck(): void };
    logger: Logger;
    metrics: Metrics;
    confirmations: number;
    stuckAfterMs: number;
    intervalMs: number;
    /** Replacements never offer more than this per gas. */
    maxFeePerGas: bigint;
  };
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly streak: FailureStreak;

  constructor(deps: TxMonitor["deps"]) {
    this.deps = deps;
    this.streak = new FailureStreak(deps.logger, "transaction monitor");
  }

  start(): void {
    const tick = () => {
      this.running = this.guardedCheck().then((failures) => {
        // After failures the passes space out (jittered, doubling, up to 5 s or the interval).
        const { intervalMs } = this.deps;
        const wait = failures === 0 ? intervalMs : backoffMs(failures, intervalMs, Math.max(intervalMs, 5_000));
        if (this.timer !== undefined) this.timer = setTimeout(tick, wait);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** One pass that can not reject: any failure (any value) is logged, and counted for backoff. */
  private async guardedCheck(): Promise<number> {
    try {
      await this.check();
      this.streak.succeeded();
    } catch (err) {
      try {
        const kind = isDatabaseUnavailable(err) ? "database" : "chain-or-other";
        this.streak.failed(kind, { err: shortMessage(err) }, "transaction monitor round failed; retrying");
      } catch {
        // logging never throws; nothing here may end the process
      }
    }
    return this.streak.count;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass over every open transaction. Exposed for tests and start-up. */
  async check(): Promise<void> {
    const { db, chain } = this.deps;
    const open = await db.blockchainTransaction.findMany({
      where: { chainId: chain.chainId, fromAddress: chain.signerAddress, status: "SUBMITTED" },
      orderBy: [{ nonce: "asc" }, { id: "asc" }],
    });
    if (open.length === 0) return;
    const minedNonce = BigInt(await chain.minedNonce());
    for (const tx of open) {
      // One transaction's trouble must not stop the others from being looked after.
      await this.look(tx, minedNonce).catch((err) =>
        this.deps.logger.warn({ tx: tx.txHash, err: shortMessage(err) }, "could not look after a pending transaction"),
      );
    }
    await this.fillNonceGap(open[0]!, minedNonce).catch((err) =>
      this.deps.logger.warn({ err: shortMessage(err) }, "could not fill a nonce gap"),
    );
  }

  /**
   * Our lowest open transaction waits for a nonce nobody holds: a broadcast that reached the
   * node but not our database (crash, timeout), later evicted. Nothing would ever fill it, and
   * every later transaction would wait behind it, so a 0-value transfer to ourselves takes it.
   */
  private async fillNonceGap(lowest: OpenTx, minedNonce: bigint): Promise<void> {
    const { db, chain } = this.deps;
    if (lowest.nonce <= minedNonce || Date.now() - lowest.submittedAt.getTime() < this.deps.stuckAfterMs) return;
    if (BigInt(await chain.pendingNonce()) > minedNonce) return; // the node holds something there
    const ours = await db.blockchainTransaction.count({
      where: { chainId: chain.chainId, fromAddress: chain.signerAddress, nonce: minedNonce, status: { in: ["SUBMITTED", "REPLACED"] } },
    });
    if (ours > 0) return;
    const fees = await chain.client.estimateFeesPerGas();
    for (let nonce = minedNonce; nonce < lowest.nonce; nonce++) {
      const signed = await chain.sign({ kind: "nonce_filler", to: chain.signerAddress, nonce, data: "0x", gas: 21_000n, ...fees });
      await db.$transaction(async (t) => {
        await t.blockchainTransaction.create({ data: txRow(chain, signed) });
        await broadcastOnce(chain, signed.raw);
      });
      this.deps.metrics.transactions.inc({ event: "nonce_filled" });
      this.deps.logger.warn({ nonce: nonce.toString(), tx: signed.hash }, "filled a nonce gap with a 0-value transfer to ourselves");
    }
  }

  private async look(tx: OpenTx, minedNonce: bigint): Promise<void> {
    const { db, chain } = this.deps;
    const attempts = await db.blockchainTransaction.findMany({
      where: { chainId: chain.chainId, fromAddress: tx.fromAddress, nonce: tx.nonce, status: { in: ["SUBMITTED", "REPLACED"] } },
    });
    if (attempts.length === 0) return; // settled since we listed it
    if (await this.recordAnyReceipt(attempts)) return;
    if (tx.nonce < minedNonce) return this.dropAndRequeue(attempts.map((a) => a.id), tx.txHash);
    if (Date.now() - tx.submittedAt.getTime() < this.deps.stuckAfterMs || !tx.rawTx) return;
    if (await chain.isKnown(tx.txHash as Hash)) {
      // Only the next nonce to be mined can be stuck on its own fees; the others wait behind it.
      return tx.nonce === minedNonce ? this.replace(tx) : undefined;
    }
    try {
      await this.rebroadcast(tx.id, tx.txHash, tx.rawTx as Hex);
    } catch (err) {
      // The node refuses the old bytes (e.g. its fees are now too low): replace instead.
      if (isNonceError(err)) throw err;
      await this.replace(tx);
    }
  }

  private async recordAnyReceipt(attempts: { id: bigint; txHash: string }[]): Promise<boolean> {
    const { chain, confirmations } = this.deps;
    for (const attempt of attempts) {
      const receipt = await chain.receipt(attempt.txHash as Hash);
      if (!receipt) continue;
      if (confirmations > 1 && (await chain.blockNumber()) - receipt.blockNumber + 1n < BigInt(confirmations)) return true;
      await this.deps.settlement.recordReceipt(attempt.id, receipt);
      return true;
    }
    return false;
  }

  private async dropAndRequeue(ids: bigint[], hash: string): Promise<void> {
    await this.deps.db.$transaction(async (t) => {
      await t.blockchainTransaction.updateMany({ where: { id: { in: ids }, status: { in: ["SUBMITTED", "REPLACED"] } }, data: { status: "DROPPED" } });
      await t.mint.updateMany({ where: { transactionId: { in: ids }, status: "SUBMITTED" }, data: { status: "PENDING", transactionId: null } });
      await clawbackStore.requeueOf(t, ids);
    });
    this.deps.metrics.transactions.inc({ event: "dropped" });
    this.deps.logger.warn({ tx: hash }, "transaction's nonce was used by another transaction; its mints and clawbacks are re-queued");
    this.deps.dispatcher.requireChainCheck();
  }

  private async rebroadcast(id: bigint, hash: string, raw: Hex): Promise<void> {
    await broadcastOnce(this.deps.chain, raw);
    await this.deps.db.blockchainTransaction.update({ where: { id }, data: { broadcasts: { increment: 1 }, submittedAt: new Date() } });
    this.deps.metrics.transactions.inc({ event: "rebroadcast" });
    this.deps.logger.warn({ tx: hash }, "transaction unknown to the node; sent again");
  }

  private async replace(tx: OpenTx): Promise<void> {
    const { chain, db } = this.deps;
    if (!tx.rawTx) return;
    // Same call, same nonce and gas, from our own signed bytes (the node may have forgotten it).
    const original = parseTransaction(tx.rawTx as Hex);
    const oldMaxFee = fromDecimal(tx.maxFeePerGas);
    const cap = this.deps.maxFeePerGas;
    if (oldMaxFee >= cap) {
      this.deps.logger.warn({ tx: tx.txHash, maxFeePerGas: oldMaxFee.toString() }, "stuck transaction already at the fee cap (MAX_FEE_GWEI); not raising further");
      return;
    }
    const fees = await chain.client.estimateFeesPerGas();
    const bump = (old: bigint, now: bigint) => min(max((old * BUMP_PERCENT) / 100n, now), cap);
    const maxFeePerGas = bump(oldMaxFee, fees.maxFeePerGas);
    const signed = await chain.sign({
      kind: tx.kind as TxKind,
      to: original.to ?? undefined,
      nonce: tx.nonce,
      data: original.data ?? "0x",
      gas: original.gas!,
      gasBounded: tx.gasBounded,
      maxFeePerGas,
      maxPriorityFeePerGas: min(bump(fromDecimal(tx.maxPriorityFeePerGas), fees.maxPriorityFeePerGas), maxFeePerGas),
    });
    await db.$transaction(async (t) => {
      const created = await t.blockchainTransaction.create({ data: txRow(chain, signed) });
      await t.blockchainTransaction.update({ where: { id: tx.id }, data: { status: "REPLACED", replacedById: created.id } });
      await t.mint.updateMany({ where: { transactionId: tx.id }, data: { transactionId: created.id } });
      await clawbackStore.moveToTransaction(t, tx.id, created.id);
      await broadcastOnce(chain, signed.raw);
    });
    this.deps.metrics.transactions.inc({ event: "replaced" });
    this.deps.logger.warn({ tx: tx.txHash, replacement: signed.hash, nonce: tx.nonce.toString() }, "stuck transaction replaced with higher fees");
  }
}

type OpenTx = Awaited<ReturnType<Db["blockchainTransaction"]["findMany"]>>[number];

/** Broadcasts; a node that already holds these exact bytes has what we wanted. */
async function broadcastOnce(chain: ChainClient, raw: Hex): Promise<void> {
  try {
    await chain.broadcast(raw);
  } catch (err) {
    if (!/already known|known transaction|already imported/i.test(shortMessage(err) + String((err as Error).message))) throw err;
  }
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);
