import { parseTransaction, type Hash, type Hex, type TransactionReceipt } from "viem";
import type { Logger } from "@cashback/runtime";
import type { ChainClient } from "../chain/chain-client.ts";
import { isAlreadyKnown, isNonceError, shortMessage } from "../chain/rpc-errors.ts";
import type { TxKind } from "../chain/token-calls.ts";
import { fromDecimal, isDatabaseUnavailable, type Db } from "../db.ts";
import { backoffMs, FailureStreak } from "../failure-streak.ts";
import type { Metrics } from "../metrics.ts";
import type { Settlement } from "../mints/settlement.ts";
import { confirmationsAt, monitorVerdict, nonceGap, replacementFees, type Observed } from "./lifecycle.ts";
import { txStore } from "./tx-store.ts";

/**
 * Looks after one lane's transactions that have no recorded receipt yet, oldest nonce first
 * (the choice is monitorVerdict's, in lifecycle.ts):
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
   * Our lowest open transaction waits for a nonce nobody holds (see nonceGap): a 0-value
   * transfer to ourselves takes each missing nonce.
   */
  private async fillNonceGap(lowest: OpenTx, minedNonce: bigint): Promise<void> {
    const { db, chain } = this.deps;
    const seen = { lowestOpenNonce: lowest.nonce, lowestOpenAgeMs: Date.now() - lowest.submittedAt.getTime(), minedNonce, stuckAfterMs: this.deps.stuckAfterMs };
    if (!nonceGap({ ...seen, pendingNonce: minedNonce, oursAtMinedNonce: 0 })) return; // no gap possible: spare the node the questions
    const pendingNonce = BigInt(await chain.pendingNonce());
    const oursAtMinedNonce = await db.blockchainTransaction.count({
      where: { chainId: chain.chainId, fromAddress: chain.signerAddress, nonce: minedNonce, status: { in: ["SUBMITTED", "REPLACED"] } },
    });
    const gap = nonceGap({ ...seen, pendingNonce, oursAtMinedNonce });
    if (!gap) return;
    const fees = await chain.client.estimateFeesPerGas();
    for (let nonce = gap.from; nonce < gap.to; nonce++) {
      const signed = await chain.sign({ kind: "nonce_filler", to: chain.signerAddress, nonce, data: "0x", gas: 21_000n, ...fees });
      await db.$transaction(async (t) => {
        await txStore.recordSigned(t, chain, signed);
        await broadcastOnce(chain, signed.raw);
      });
      this.deps.metrics.transactions.inc({ event: "nonce_filled" });
      this.deps.logger.warn({ nonce: nonce.toString(), tx: signed.hash }, "filled a nonce gap with a 0-value transfer to ourselves");
    }
  }

  /** Gathers what monitorVerdict needs (asking the node only when it must) and acts on it. */
  private async look(tx: OpenTx, minedNonce: bigint): Promise<void> {
    const { db, chain, confirmations } = this.deps;
    const attempts = await db.blockchainTransaction.findMany({
      where: { chainId: chain.chainId, fromAddress: tx.fromAddress, nonce: tx.nonce, status: { in: ["SUBMITTED", "REPLACED"] } },
    });
    if (attempts.length === 0) return; // settled since we listed it
    const found = await this.anyReceipt(attempts);
    const head = found && confirmations > 1 ? await chain.blockNumber() : found?.receipt.blockNumber;
    const observed: Observed = {
      receipt: found && { confirmations: confirmationsAt(head!, found.receipt.blockNumber) },
      nonce: tx.nonce,
      minedNonce,
      ageMs: Date.now() - tx.submittedAt.getTime(),
      stuckAfterMs: this.deps.stuckAfterMs,
      hasRaw: tx.rawTx !== null,
      requiredConfirmations: confirmations,
    };
    let verdict = monitorVerdict(observed);
    if (verdict.action === "ask-node") verdict = monitorVerdict({ ...observed, known: await chain.isKnown(tx.txHash as Hash) });
    switch (verdict.action) {
      case "record":
        return this.deps.settlement.recordReceipt(found!.id, found!.receipt);
      case "wait":
        return;
      case "drop":
        return this.dropAndRequeue(attempts.map((a) => a.id), tx.txHash);
      case "replace":
        return this.replace(tx);
      case "rebroadcast":
        try {
          return await this.rebroadcast(tx.id, tx.txHash, tx.rawTx as Hex);
        } catch (err) {
          // The node refuses the old bytes (e.g. its fees are now too low): replace instead.
          if (isNonceError(err)) throw err;
          return this.replace(tx);
        }
      case "ask-node":
        throw new Error("monitorVerdict asked for the node twice"); // can not happen: `known` is set
    }
  }

  private async anyReceipt(attempts: { id: bigint; txHash: string }[]): Promise<{ id: bigint; receipt: TransactionReceipt } | undefined> {
    for (const attempt of attempts) {
      const receipt = await this.deps.chain.receipt(attempt.txHash as Hash);
      if (receipt) return { id: attempt.id, receipt };
    }
    return undefined;
  }

  private async dropAndRequeue(ids: bigint[], hash: string): Promise<void> {
    await this.deps.db.$transaction((t) => txStore.dropAndRequeue(t, ids));
    this.deps.metrics.transactions.inc({ event: "dropped" });
    this.deps.logger.warn({ tx: hash }, "transaction's nonce was used by another transaction; its mints and clawbacks are re-queued");
    this.deps.dispatcher.requireChainCheck();
  }

  private async rebroadcast(id: bigint, hash: string, raw: Hex): Promise<void> {
    await broadcastOnce(this.deps.chain, raw);
    await this.deps.db.$transaction((t) => txStore.rebroadcast(t, id));
    this.deps.metrics.transactions.inc({ event: "rebroadcast" });
    this.deps.logger.warn({ tx: hash }, "transaction unknown to the node; sent again");
  }

  private async replace(tx: OpenTx): Promise<void> {
    const { chain, db } = this.deps;
    if (!tx.rawTx) return;
    // Same call, same nonce and gas, from our own signed bytes (the node may have forgotten it).
    const original = parseTransaction(tx.rawTx as Hex);
    const old = { maxFeePerGas: fromDecimal(tx.maxFeePerGas), maxPriorityFeePerGas: fromDecimal(tx.maxPriorityFeePerGas) };
    const fees = replacementFees(old, await chain.client.estimateFeesPerGas(), this.deps.maxFeePerGas);
    if (!fees) {
      this.deps.logger.warn({ tx: tx.txHash, maxFeePerGas: old.maxFeePerGas.toString() }, "stuck transaction already at the fee cap (MAX_FEE_GWEI); not raising further");
      return;
    }
    const signed = await chain.sign({
      kind: tx.kind as TxKind,
      to: original.to ?? undefined,
      nonce: tx.nonce,
      data: original.data ?? "0x",
      gas: original.gas!,
      gasBounded: tx.gasBounded,
      ...fees,
    });
    await db.$transaction(async (t) => {
      await txStore.recordReplacement(t, chain, tx.id, signed);
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
    if (!isAlreadyKnown(err)) throw err;
  }
}
