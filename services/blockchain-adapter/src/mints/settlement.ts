import { getAddress, type Hash, type Hex, type TransactionReceipt } from "viem";
import type { Logger } from "@cashback/runtime";
import type { ChainClient } from "../chain/chain-client.ts";
import { shortMessage } from "../chain/rpc-errors.ts";
import { clawbackOutcomes, mintOutcomes } from "../chain/token-calls.ts";
import { clawbackStore } from "../clawbacks/clawback-store.ts";
import { fromDecimal, toDecimal, type Db, type Tx } from "../db.ts";
import type { Metrics } from "../metrics.ts";
import type { Completions } from "./completions.ts";
import { isSettled } from "../transactions/lifecycle.ts";
import { txStore, type SendStore } from "../transactions/tx-store.ts";

/**
 * Moves mints, clawbacks and their transactions to a final state from what the chain says: a
 * receipt of ours, or the CashbackMinted / CashbackClawedBack event of an id that some earlier
 * transaction (maybe one a crash kept us from recording) already used.
 */
export class Settlement {
  private readonly db: Db;
  private readonly chain: ChainClient;
  private readonly completions: Completions;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly confirmations: number;
  /** Shared with the dispatchers: mints to estimate before they are sent again. */
  private readonly needsEstimate: Set<string>;
  /** The usual receipt's one-statement path on `pg`; without it every receipt goes through Prisma. */
  private readonly sendStore?: SendStore;

  constructor(deps: { db: Db; chain: ChainClient; completions: Completions; logger: Logger; metrics: Metrics; confirmations: number; needsEstimate?: Set<string>; sendStore?: SendStore }) {
    this.sendStore = deps.sendStore;
    this.confirmations = deps.confirmations;
    this.needsEstimate = deps.needsEstimate ?? new Set();
    this.db = deps.db;
    this.chain = deps.chain;
    this.completions = deps.completions;
    this.logger = deps.logger;
    this.metrics = deps.metrics;
  }

  /** Records the receipt of transaction `txId`. Safe to call twice (the second does nothing). */
  async recordReceipt(txId: bigint, receipt: TransactionReceipt): Promise<void> {
    if (this.sendStore && receipt.status === "success") {
      // Every open mint minted by it, nothing else to settle: one statement (else the full path).
      const keys = await this.sendStore.confirmMinted(txId, receipt, [...mintOutcomes(this.chain.token, receipt.logs).minted]);
      if (keys) {
        this.metrics.transactions.inc({ event: "confirmed" });
        this.metrics.mints.inc({ status: "confirmed" }, keys.length);
        this.completions.notify(keys, { txHash: receipt.transactionHash, blockNumber: receipt.blockNumber });
        return;
      }
    }
    const finished: string[] = [];
    const requeued: string[] = [];
    let recorded = false;
    await this.db.$transaction(
      async (tx) => {
        const [row] = await tx.$queryRaw<{ status: string; nonce: bigint; from_address: string; gas_bounded: boolean }[]>`
          SELECT status::text, nonce, from_address, gas_bounded FROM blockchain_transactions WHERE id = ${txId} FOR UPDATE`;
        if (!row || row.status === "CONFIRMED" || row.status === "FAILED") return;
        recorded = true;

        const ok = receipt.status === "success";
        await txStore.mined(tx, txId, receipt);
        // Other transactions with this nonce (replacements, or the original a replacement
        // superseded) can never be mined now; their mints belong to this one.
        const siblings = await tx.blockchainTransaction.findMany({
          where: { chainId: this.chain.chainId, fromAddress: row.from_address, nonce: row.nonce, id: { not: txId } },
          select: { id: true },
        });
        const txIds = [txId, ...siblings.map((s) => s.id)];
        await txStore.siblingsDropped(tx, siblings.map((s) => s.id));
        const clawbacks = await this.settleClawbacksOf(tx, txIds, txId, receipt);
        finished.push(...clawbacks.finished);
        requeued.push(...clawbacks.requeued);
        const mints = await tx.mint.findMany({ where: { transactionId: { in: txIds }, status: { in: ["PENDING", "SUBMITTED"] } } });
        const requeue = async (rows: typeof mints) => {
          const keys = rows.map((m) => m.idempotencyKey);
          await txStore.mintsRequeued(tx, keys);
          requeued.push(...keys);
        };

        if (!ok) {
          // A mint may have reverted only because its id was minted by another of our
          // transactions (e.g. one a crash kept us from recording): that mint succeeded. If the
          // chain can not tell us now, re-queue rather than fail: the dispatcher will ask again.
          const minted = await this.lookUpElsewhere(tx, mints);
          if (minted === undefined) {
            await requeue(mints);
            return;
          }
          if (row.gas_bounded) {
            // Sent with a gas bound, not an estimate: the revert may be our bound or a refusal the
            // estimate would have named. Back to the queue, to be estimated before the next send.
            const rest = mints.filter((m) => !minted.includes(m.idempotencyKey));
            for (const m of rest) this.needsEstimate.add(m.idempotencyKey);
            await requeue(rest);
            finished.push(...minted);
            return;
          }
          const failed = mints.filter((m) => !minted.includes(m.idempotencyKey)).map((m) => m.idempotencyKey);
          await txStore.mintsFailed(tx, failed, `transaction ${receipt.transactionHash} reverted`, txId);
          finished.push(...minted, ...failed);
          this.metrics.mints.inc({ status: "failed" }, failed.length);
          return;
        }
        const { minted, skipped } = mintOutcomes(this.chain.token, receipt.logs);
        const here = mints.filter((m) => minted.has(m.mintId as Hex));
        await txStore.mintsConfirmed(tx, here.map((m) => m.idempotencyKey), txId);
        finished.push(...here.map((m) => m.idempotencyKey));
        this.metrics.mints.inc({ status: "confirmed" }, here.length);
        // Skipped: minted before, by a transaction we may never have recorded. Find it.
        const elsewhere = mints.filter((m) => skipped.has(m.mintId as Hex));
        const settled = (await this.lookUpElsewhere(tx, elsewhere)) ?? [];
        finished.push(...settled);
        // Not found (yet), or, which should not happen, not mentioned by a successful
        // transaction: back to the queue, where the contract's mint id keeps a resend harmless.
        await requeue(mints.filter((m) => !minted.has(m.mintId as Hex) && !settled.includes(m.idempotencyKey)));
      },
      { timeout: 30_000 },
    );
    if (recorded) this.metrics.transactions.inc({ event: receipt.status === "success" ? "confirmed" : "failed" });
    if (requeued.length) {
      this.logger.warn({ tx: receipt.transactionHash, keys: requeued }, "mints not settled by their transaction; re-queued");
      this.onRequeued();
    }
    this.completions.notify(finished);
  }

  /**
   * The clawbacks carried by transaction `txId` (or a sibling with its nonce). A success confirms
   * those whose refId it clawed back. A revert may mean the refId was used by another transaction
   * of ours (then that one settles it); otherwise it is final, INSUFFICIENT_BALANCE when the holder
   * held less than the amount at that block, else REVERTED. When the chain can not be asked, the
   * clawback goes back to the queue, where the refId check keeps a resend harmless.
   */
  private async settleClawbacksOf(tx: Tx, txIds: bigint[], txId: bigint, receipt: TransactionReceipt): Promise<{ finished: string[]; requeued: string[] }> {
    const open = await tx.clawback.findMany({ where: { transactionId: { in: txIds }, status: { in: ["PENDING", "SUBMITTED"] } } });
    const finished: string[] = [];
    const requeued: string[] = [];
    if (open.length === 0) return { finished, requeued };
    const requeue = async (keys: string[]) => {
      await clawbackStore.requeue(tx, keys);
      requeued.push(...keys);
    };

    if (receipt.status === "success") {
      const done = clawbackOutcomes(this.chain.token, receipt.logs);
      const here = open.filter((c) => done.has(c.refId as Hex)).map((c) => c.idempotencyKey);
      await clawbackStore.confirmed(tx, here, txId);
      finished.push(...here);
      this.metrics.clawbacks.inc({ status: "confirmed" }, here.length);
      const rest = open.filter((c) => !done.has(c.refId as Hex));
      const settled = (await this.lookUpClawbacksElsewhere(tx, rest)) ?? [];
      finished.push(...settled);
      await requeue(rest.map((c) => c.idempotencyKey).filter((k) => !settled.includes(k)));
      return { finished, requeued };
    }

    const settled = await this.lookUpClawbacksElsewhere(tx, open);
    if (settled === undefined) {
      await requeue(open.map((c) => c.idempotencyKey));
      return { finished, requeued };
    }
    finished.push(...settled);
    for (const c of open.filter((c) => !settled.includes(c.idempotencyKey))) {
      let balance: bigint;
      try {
        balance = await this.chain.balanceAt(getAddress(c.fromAddress), receipt.blockNumber);
      } catch (err) {
        this.logger.warn({ err: shortMessage(err), key: c.idempotencyKey }, "could not read the holder's balance after a reverted clawback; re-queued");
        await requeue([c.idempotencyKey]);
        continue;
      }
      const insufficient = balance < fromDecimal(c.amountWei);
      await clawbackStore.failed(
        tx,
        c.idempotencyKey,
        insufficient ? "INSUFFICIENT_BALANCE" : "REVERTED",
        `transaction ${receipt.transactionHash} reverted${insufficient ? `: the holder holds ${balance} wei, less than the ${fromDecimal(c.amountWei)} wei to claw back` : ""}`,
        txId,
      );
      this.metrics.clawbacks.inc({ status: "failed" });
      finished.push(c.idempotencyKey);
    }
    return { finished, requeued };
  }

  private async lookUpClawbacksElsewhere(tx: Tx, clawbacks: readonly { idempotencyKey: string; refId: string }[]): Promise<string[] | undefined> {
    try {
      return await this.settleClawedBack(tx, clawbacks);
    } catch (err) {
      this.logger.warn({ err: shortMessage(err) }, "could not look up earlier clawbacks on chain");
      return undefined;
    }
  }

  /**
   * For clawbacks whose refId the contract already holds: links each to the transaction that
   * clawed it back (recording that transaction if it is not ours on file) and confirms it once
   * that has the configured confirmations. Returns the keys settled.
   */
  async settleClawedBack(tx: Tx, clawbacks: readonly { idempotencyKey: string; refId: string }[]): Promise<string[]> {
    if (clawbacks.length === 0) return [];
    const found = await this.chain.findClawbacks(clawbacks.map((c) => c.refId as Hex));
    const latest = found.size ? await this.chain.blockNumber() : 0n;
    const settled: string[] = [];
    for (const clawback of clawbacks) {
      const hit = found.get(clawback.refId as Hex);
      if (!hit || !isSettled(latest, hit.blockNumber, this.confirmations)) continue;
      const txId = await this.ensureMinedTxRow(tx, hit.txHash);
      await clawbackStore.confirmed(tx, [clawback.idempotencyKey], txId);
      settled.push(clawback.idempotencyKey);
      this.logger.info({ key: clawback.idempotencyKey, tx: hit.txHash }, "clawback found on chain; recorded without sending");
    }
    this.metrics.clawbacks.inc({ status: "confirmed" }, settled.length);
    return settled;
  }

  /** Called when mints or clawbacks go back to the queue; the app points it at the dispatcher's chain check. */
  onRequeued: () => void = () => {};

  /** settleMinted, or undefined when the chain could not be asked (e.g. eth_getLogs refused). */
  private async lookUpElsewhere(tx: Tx, mints: readonly { idempotencyKey: string; mintId: string }[]): Promise<string[] | undefined> {
    try {
      return await this.settleMinted(tx, mints);
    } catch (err) {
      this.logger.warn({ err: shortMessage(err) }, "could not look up earlier mints on chain");
      return undefined;
    }
  }

  /**
   * For mints whose id the contract already holds: links each to the transaction that minted it
   * (recording that transaction if it is not ours on file) and confirms it once that has the
   * configured confirmations. Returns the keys settled; the others are left as they are.
   */
  async settleMinted(tx: Tx, mints: readonly { idempotencyKey: string; mintId: string }[]): Promise<string[]> {
    if (mints.length === 0) return [];
    const found = await this.chain.findMints(mints.map((m) => m.mintId as Hex));
    const latest = found.size ? await this.chain.blockNumber() : 0n;
    const settled: string[] = [];
    for (const mint of mints) {
      const hit = found.get(mint.mintId as Hex);
      if (!hit || !isSettled(latest, hit.blockNumber, this.confirmations)) continue;
      const txId = await this.ensureMinedTxRow(tx, hit.txHash);
      await txStore.mintsConfirmed(tx, [mint.idempotencyKey], txId);
      settled.push(mint.idempotencyKey);
      this.logger.info({ key: mint.idempotencyKey, tx: hit.txHash }, "mint found on chain; recorded without sending");
    }
    this.metrics.mints.inc({ status: "confirmed" }, settled.length);
    return settled;
  }

  /** The row of a mined transaction, created from the chain when a crash kept us from writing it. */
  private async ensureMinedTxRow(tx: Tx, hash: Hash): Promise<bigint> {
    const receipt = await this.chain.receipt(hash);
    if (!receipt) throw new Error(`no receipt for ${hash}, though its event was found`);
    const existing = await tx.blockchainTransaction.findUnique({ where: { txHash: hash }, select: { id: true, status: true } });
    if (existing) return txStore.minedFound(tx, existing, undefined, receipt);
    const onChain = await this.chain.client.getTransaction({ hash });
    return txStore.minedFound(tx, null, {
      chainId: this.chain.chainId,
      txHash: hash,
      fromAddress: getAddress(onChain.from),
      toAddress: onChain.to ?? this.chain.token,
      nonce: BigInt(onChain.nonce),
      maxFeePerGas: onChain.maxFeePerGas ?? onChain.gasPrice ?? 0n,
      maxPriorityFeePerGas: onChain.maxPriorityFeePerGas ?? 0n,
    }, receipt);
  }
}
