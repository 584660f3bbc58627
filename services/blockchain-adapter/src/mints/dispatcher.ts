import { setTimeout as sleep } from "node:timers/promises";
import type { Hex } from "viem";
import type { Logger } from "@cashback/runtime";
import type { ChainClient, SignedTx } from "../chain/chain-client.ts";
import { ContractRejectedError, isCircuitOpen, isNonceError, isTransportError, shortMessage } from "../chain/rpc-errors.ts";
import { fromDecimal, toDecimal, type Db, type Tx } from "../db.ts";
import type { Metrics } from "../metrics.ts";
import type { NonceStore } from "../nonces/nonce-store.ts";
import type { Completions } from "./completions.ts";
import type { ReceiptWatcher } from "./receipt-watcher.ts";
import type { Settlement } from "./settlement.ts";

interface PendingRow {
  idempotency_key: string;
  mint_id: string;
  to_address: string;
  amount_wei: unknown;
}

/**
 * The only sender of mint transactions. Each round, in one database transaction: claim PENDING
 * mints (SKIP LOCKED, so several adapters share the work), lock the wallet's nonce row, sign a
 * `mint`/`mintBatch`, record it, and broadcast it before committing. Whatever queued up while
 * one round ran goes out in the next round's batch.
 *
 * A crash between broadcast and commit loses the record but not the mint ids: the next round
 * after any doubtful failure first asks the contract which ids are used and settles those from
 * their CashbackMinted events instead of sending them again.
 */
export class MintDispatcher {
  private readonly deps: {
    db: Db;
    chain: ChainClient;
    nonces: NonceStore;
    settlement: Settlement;
    receipts: ReceiptWatcher;
    completions: Completions;
    logger: Logger;
    metrics: Metrics;
    batchMax: number;
    batchWindowMs: number;
  };
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private nudged = false;
  /** After start-up or a failure that may have reached the chain, check ids before sending. */
  private verifyOnChain = true;
  private resyncNonce = false;

  constructor(deps: MintDispatcher["deps"]) {
    this.deps = deps;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.nudge();
    await this.loop;
  }

  /** New work is queued: run a round now. */
  nudge(): void {
    this.nudged = true;
    this.wake?.();
  }

  /** Mints re-queued by someone else (e.g. a dropped transaction) must be checked on chain. */
  requireChainCheck(): void {
    this.verifyOnChain = true;
    this.nudge();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      if (!this.nudged) await this.idle(1_000); // poll too: other adapters and restarts queue work
      this.nudged = false;
      if (!this.running) break;
      if (this.deps.batchWindowMs > 0) await sleep(this.deps.batchWindowMs);
      try {
        if (this.resyncNonce) {
          await this.deps.nonces.resync("after a failed send");
          this.resyncNonce = false;
        }
        const handled = await this.round();
        failures = 0;
        if (handled > 0) this.nudged = true; // there may be more
      } catch (err) {
        failures++;
        this.onRoundError(err);
        await this.idle(backoffMs(failures));
      }
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  private onRoundError(err: unknown): void {
    const { logger } = this.deps;
    if (isNonceError(err)) {
      this.resyncNonce = true;
      logger.warn({ err: shortMessage(err) }, "node rejected the nonce; resyncing");
    } else if (isCircuitOpen(err)) {
      logger.debug("chain circuit open; mints wait");
    } else if (isTransportError(err)) {
      this.resyncNonce = true;
      logger.warn({ err: shortMessage(err) }, "chain unreachable; mints wait");
    } else {
      this.resyncNonce = true;
      logger.error({ err }, "mint round failed");
    }
  }

  /** One batch: returns how many mints it handled (0 when there was nothing to do). */
  private async round(): Promise<number> {
    const { db, logger } = this.deps;
    let sent: { signed: SignedTx; txId: bigint; keys: string[] } | undefined;
    let settledKeys: string[] = [];
    const handled = await db.$transaction(
      async (tx) => {
        const claimed = await tx.$queryRaw<PendingRow[]>`
          SELECT idempotency_key, mint_id, to_address, amount_wei FROM mints
          WHERE status = 'PENDING' ORDER BY created_at LIMIT ${this.deps.batchMax} FOR UPDATE SKIP LOCKED`;
        if (claimed.length === 0) return 0;

        let rows = claimed;
        if (this.verifyOnChain) {
          settledKeys = await this.settleAlreadyMinted(tx, rows);
          rows = rows.filter((r) => !settledKeys.includes(r.idempotency_key));
          if (rows.length === 0) return claimed.length;
        }

        const mints = rows.map((r) => ({
          to: r.to_address as Hex,
          amountWei: fromDecimal(r.amount_wei as never),
          mintId: r.mint_id as Hex,
        }));
        const nonce = await this.deps.nonces.lock(tx);
        let prepared;
        try {
          prepared = await this.deps.chain.prepareMints(mints, nonce);
        } catch (err) {
          if (!(err instanceof ContractRejectedError)) throw err;
          settledKeys.push(...(await this.rejectReverted(tx, rows, err.reason)));
          return claimed.length;
        }
        const signed = await this.deps.chain.sign(prepared);
        const row = await tx.blockchainTransaction.create({
          data: {
            chainId: this.deps.chain.chainId,
            txHash: signed.hash,
            fromAddress: this.deps.chain.signerAddress,
            toAddress: this.deps.chain.token,
            nonce: signed.nonce,
            kind: signed.kind,
            rawTx: signed.raw,
            maxFeePerGas: toDecimal(signed.maxFeePerGas),
            maxPriorityFeePerGas: toDecimal(signed.maxPriorityFeePerGas),
          },
        });
        const keys = rows.map((r) => r.idempotency_key);
        await tx.mint.updateMany({ where: { idempotencyKey: { in: keys } }, data: { status: "SUBMITTED", transactionId: row.id } });
        await this.deps.nonces.advance(tx, signed.nonce);
        // From here a failure may leave the transaction on chain without our record of it.
        this.verifyOnChain = true;
        await this.deps.chain.broadcast(signed.raw);
        sent = { signed, txId: row.id, keys };
        return claimed.length;
      },
      { timeout: 60_000, maxWait: 10_000 },
    );
    this.verifyOnChain = false;
    this.deps.completions.notify(settledKeys);
    if (sent) {
      this.deps.metrics.transactions.inc({ event: "sent" });
      this.deps.metrics.batchSize.observe(sent.keys.length);
      logger.debug({ tx: sent.signed.hash, nonce: sent.signed.nonce.toString(), mints: sent.keys.length }, "mint transaction sent");
      this.deps.receipts.watch(sent.txId, sent.signed.hash);
    }
    return handled;
  }

  private async settleAlreadyMinted(tx: Tx, rows: PendingRow[]): Promise<string[]> {
    const used = await Promise.all(rows.map((r) => this.deps.chain.mintIdUsed(r.mint_id as Hex)));
    const minted = rows.filter((_, i) => used[i]).map((r) => ({ idempotencyKey: r.idempotency_key, mintId: r.mint_id }));
    return minted.length ? this.deps.settlement.settleMinted(tx, minted) : [];
  }

  /** The contract refuses these mints (paused, role revoked...): final, not worth retrying. */
  private async rejectReverted(tx: Tx, rows: PendingRow[], reason: string): Promise<string[]> {
    if (reason === "MintIdAlreadyUsed") {
      // Only `mint` reverts on a used id (mintBatch skips): settle it from the chain.
      const settled = await this.settleAlreadyMinted(tx, rows);
      if (settled.length) return settled;
    }
    const keys = rows.map((r) => r.idempotency_key);
    await tx.mint.updateMany({
      where: { idempotencyKey: { in: keys } },
      data: { status: "FAILED", errorReason: "REVERTED", errorMessage: `the token contract rejected the mint: ${reason}` },
    });
    this.deps.metrics.mints.inc({ status: "failed" }, keys.length);
    this.deps.logger.warn({ keys, reason }, "mint rejected by the contract");
    return keys;
  }
}

/** Exponential backoff with full jitter, capped at 5 s. */
export function backoffMs(failures: number, baseMs = 100, capMs = 5_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(failures, 16));
  return Math.floor(Math.random() * ceiling) + 1;
}
