import { setTimeout as sleep } from "node:timers/promises";
import type { Hex } from "viem";
import type { Logger } from "@cashback/runtime";
import type { ChainClient, SignedTx } from "../chain/chain-client.ts";
import { asContractRejection, ContractRejectedError, isCircuitOpen, isInsufficientFunds, isNonceError, isTransportError, shortMessage } from "../chain/rpc-errors.ts";
import { clawbackStore } from "../clawbacks/clawback-store.ts";
import { fromDecimal, isDatabaseUnavailable, type Db, type Tx } from "../db.ts";
import { backoffMs, FailureStreak } from "../failure-streak.ts";
import type { Metrics } from "../metrics.ts";
import type { NonceStore } from "../nonces/nonce-store.ts";
import type { Completions } from "./completions.ts";
import type { ReceiptWatcher } from "../transactions/receipt-watcher.ts";
import type { Settlement } from "./settlement.ts";
import { splitRefusedBatch } from "../transactions/lifecycle.ts";
import { txStore, type SendStore } from "../transactions/tx-store.ts";

interface PendingRow {
  idempotency_key: string;
  mint_id: string;
  to_address: string;
  amount_wei: unknown;
}

interface PendingClawbackRow {
  idempotency_key: string;
  ref_id: string;
  from_address: string;
  amount_wei: unknown;
}

/**
 * The only sender of mint and clawback transactions. Each round, in one database transaction:
 * claim PENDING mints (SKIP LOCKED, so several adapters share the work), lock the wallet's nonce
 * row, sign a `mint`/`mintBatch`, record it, and broadcast it before committing. Whatever queued
 * up while one round ran goes out in the next round's batch. Then, the same way, one PENDING
 * clawback in a `clawback` transaction of its own (clawbacks are rare).
 *
 * A crash between broadcast and commit loses the record but not the mint ids or refIds: the next
 * round after any doubtful failure first asks the contract which ids are used and settles those
 * from their CashbackMinted / CashbackClawedBack events instead of sending them again.
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
    /** Longest wait between failed rounds (default 5 s); no use waiting longer than the breaker does. */
    maxBackoffMs?: number;
    /**
     * Keys to price with eth_estimateGas before sending (shared by every lane and Settlement, which
     * adds the mints of a bounded transaction that reverted). Others go with a gas bound.
     */
    needsEstimate?: Set<string>;
    /** Mint keys no lane may send now; shared by every lane (see HeldKeys). */
    held?: HeldKeys;
    /** The same for clawback keys. */
    heldClawbacks?: HeldKeys;
    /** Estimate every batch (the behaviour before gas bounds); default false. */
    alwaysEstimate?: boolean;
    /** The hot path on `pg`; without it every round goes through Prisma. */
    sendStore?: SendStore;
  };
  /** Set while the signer can not pay for gas; cleared by the next successful send. */
  outOfFunds = false;
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private nudged = false;
  /**
   * When to ask the contract which queued mint ids are used before sending: at start-up, after
   * a failure that may have left a broadcast unrecorded (inDoubt), when asked (a dropped
   * transaction's mints were re-queued), and while some ids wait for a transaction not yet mined.
   */
  private checkRequested = true;
  private inDoubt = false;
  /** Keys whose mint id is used (or may be) by a transaction not yet mined: not to be sent again. */
  private readonly held: HeldKeys;
  /** The same for clawback keys (refIds). */
  private readonly heldClawbacks: HeldKeys;
  private awaitCheckedAt = 0;
  private resyncNonce = false;
  private readonly streak: FailureStreak;

  constructor(deps: MintDispatcher["deps"]) {
    this.deps = deps;
    this.held = deps.held ?? new HeldKeys();
    this.heldClawbacks = deps.heldClawbacks ?? new HeldKeys();
    this.streak = new FailureStreak(deps.logger, "mint dispatcher");
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
    this.checkRequested = true;
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
        this.streak.succeeded();
        if (handled > 0) this.nudged = true; // there may be more
      } catch (err) {
        // Whatever failed (any value may be thrown), the loop goes on after a backoff: it is
        // the only sender, and nothing it meets may end the process.
        failures++;
        try {
          this.onRoundError(err);
        } catch {
          // logging never throws; this only keeps a future mistake in onRoundError harmless
        }
        await this.idle(backoffMs(failures, 100, this.deps.maxBackoffMs ?? 5_000));
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
    const { streak } = this;
    if (isInsufficientFunds(err)) {
      this.outOfFunds = true;
      this.deps.metrics.transactions.inc({ event: "out_of_funds" });
      streak.failed("funds", { reason: "SIGNER_OUT_OF_FUNDS", signer: this.deps.chain.signerAddress, err: shortMessage(err) }, "SIGNER_OUT_OF_FUNDS: the signer can not pay for gas; its lane waits until it is funded", "error");
    } else if (isNonceError(err)) {
      this.resyncNonce = true;
      streak.failed("nonce", { err: shortMessage(err) }, "node rejected the nonce; resyncing");
    } else if (err instanceof TokenPausedError) {
      streak.failed("paused", {}, "the token contract is paused; mints wait until it is unpaused");
    } else if (isCircuitOpen(err)) {
      streak.failed("chain", {}, "chain circuit open; mints wait");
    } else if (isTransportError(err)) {
      this.resyncNonce = true;
      streak.failed("chain", { err: shortMessage(err) }, "chain unreachable; mints wait");
    } else if (isDatabaseUnavailable(err)) {
      this.resyncNonce = true;
      streak.failed("database", { err: shortMessage(err) }, "database unavailable; mints wait");
    } else {
      this.resyncNonce = true;
      streak.failed("unknown", { err }, "mint round failed; retrying with backoff", "error");
    }
  }

  /** One batch of mints, then one clawback: returns how many it handled (0 when there was nothing to do). */
  private async round(): Promise<number> {
    if (this.checkRequested || this.inDoubt) {
      this.checkRequested = false; // a request arriving from here on is kept for the next round
      try {
        await this.reconcileWithChain("queue");
        await this.reconcileClawbacks("queue");
      } catch (err) {
        this.checkRequested = true;
        throw err;
      }
      this.inDoubt = false;
    } else if ((this.held.waiting || this.heldClawbacks.waiting) && Date.now() - this.awaitCheckedAt >= 1_000) {
      // only the held-back keys, once a second
      if (this.held.waiting) await this.reconcileWithChain("awaiting");
      if (this.heldClawbacks.waiting) await this.reconcileClawbacks("awaiting");
    }
    return (await this.mintRound()) + (await this.clawbackRound());
  }

  private async mintRound(): Promise<number> {
    const { sendStore, alwaysEstimate, needsEstimate } = this.deps;
    if (needsEstimate?.size) await this.forgetFinished("mints", needsEstimate);
    if (sendStore && !alwaysEstimate && (needsEstimate?.size ?? 0) === 0) return this.boundedMintRound(sendStore);
    return this.estimatedMintRound();
  }

  /**
   * Drops from `keys` (needsEstimate, held mints) the mints that reached a final state by any way
   * (refused here, settled from the chain, sent by another adapter): left in needsEstimate, they
   * would keep every later round off the bounded path. Only final states: a key is added to
   * needsEstimate before its re-queue commits.
   */
  private async forgetFinished(table: "mints" | "clawbacks", keys: Set<string>): Promise<void> {
    if (keys.size === 0) return;
    const rows =
      table === "mints"
        ? await this.deps.db.$queryRaw<{ idempotency_key: string }[]>`
            SELECT idempotency_key FROM mints WHERE idempotency_key = ANY(${[...keys]}) AND status IN ('CONFIRMED', 'FAILED')`
        : await this.deps.db.$queryRaw<{ idempotency_key: string }[]>`
            SELECT idempotency_key FROM clawbacks WHERE idempotency_key = ANY(${[...keys]}) AND status IN ('CONFIRMED', 'FAILED')`;
    for (const r of rows) keys.delete(r.idempotency_key);
  }

  /**
   * The usual round: claim, lock the nonce, sign with a gas bound (nothing to ask the node but the
   * cached fees), record, broadcast, commit; three statements on `pg`. Nothing here can be refused
   * before the broadcast: a refusal shows as a revert, and Settlement sends those mints back to be
   * estimated (estimatedMintRound).
   */
  private async boundedMintRound(store: SendStore): Promise<number> {
    const { chain } = this.deps;
    let sent: { signed: SignedTx; txId: bigint; keys: string[] } | undefined;
    const phase = phaseTimer(this.deps.metrics);
    let sending: string[] = [];
    let committed = false;
    let handled: number;
    try {
      handled = await store.transaction(async (c) => {
        phase("begin");
        const claimed = await store.claimMints(c, { exclude: [...this.held.keys], limit: this.deps.batchMax });
        phase("claim");
        if (claimed.length === 0) return 0;
        const nonce = await store.lockNonce(c, chain.chainId, chain.signerAddress);
        phase("nonce");
        const prepared = await chain.prepareMints(claimed.map((m) => ({ to: m.to, amountWei: m.amountWei, mintId: m.mintId })), nonce, { estimate: false });
        phase("prepare");
        const signed = await chain.sign(prepared);
        phase("sign");
        const keys = claimed.map((m) => m.idempotencyKey);
        const txId = await store.recordSent(c, { chainId: chain.chainId, from: chain.signerAddress, to: signed.to ?? chain.token, signed, keys });
        phase("record");
        // From here a failure may leave the transaction on chain without our record of it: every
        // lane holds its keys back until the chain says (reconcileWithChain).
        this.inDoubt = true;
        this.held.sending((sending = keys));
        await broadcastMined(chain, signed);
        phase("broadcast");
        sent = { signed, txId, keys };
        return claimed.length;
      });
      committed = true;
    } finally {
      this.held.sent(sending, committed);
    }
    this.inDoubt = false;
    if (sent) {
      phase("commit");
      this.announce(sent);
    }
    return handled;
  }

  private announce(sent: { signed: SignedTx; txId: bigint; keys: string[] }): void {
    this.outOfFunds = false;
    this.deps.metrics.transactions.inc({ event: "sent" });
    this.deps.metrics.batchSize.observe(sent.keys.length);
    this.deps.logger.debug({ tx: sent.signed.hash, nonce: sent.signed.nonce.toString(), mints: sent.keys.length }, "mint transaction sent");
    this.deps.receipts.watch(sent.txId, sent.signed.hash);
  }

  /** A round that prices its batch with eth_estimateGas, halving it while the contract refuses an entry. */
  private async estimatedMintRound(): Promise<number> {
    const { db, chain } = this.deps;
    let sent: { signed: SignedTx; txId: bigint; keys: string[] } | undefined;
    let finished: string[] = [];
    const phase = phaseTimer(this.deps.metrics);
    let sending: string[] = [];
    let committed = false;
    let handled: number;
    try {
      handled = await db.$transaction(
        async (tx) => {
          phase("begin");
          const claimed = await tx.$queryRaw<PendingRow[]>`
            SELECT idempotency_key, mint_id, to_address, amount_wei FROM mints
            WHERE status = 'PENDING' AND NOT (idempotency_key = ANY(${[...this.held.keys]}))
            ORDER BY created_at LIMIT ${this.deps.batchMax} FOR UPDATE SKIP LOCKED`;
          phase("claim");
          if (claimed.length === 0) return 0;

          const nonce = await this.deps.nonces.lock(tx);
          phase("nonce");
          // A pause holds every mint back, and a refusal that concerns every mint (role revoked)
          // fails them all. Any other halves the batch until the contract accepts it: the entry it
          // refuses ends up alone and fails alone, and the rest stay queued for the next rounds.
          let rows = claimed;
          const needsEstimate = this.deps.needsEstimate;
          // Bounded gas unless some mint came back from a bounded transaction that reverted: then the
          // estimate names the refusal before anything else is signed.
          const estimate = this.deps.alwaysEstimate === true || (needsEstimate !== undefined && rows.some((r) => needsEstimate.has(r.idempotency_key)));
          let prepared;
          for (;;) {
            try {
              prepared = await chain.prepareMints(rows.map(toCall), nonce, { estimate });
              break;
            } catch (err) {
              if (!(err instanceof ContractRejectedError)) throw err;
              const next = splitRefusedBatch(rows.length, err.reason);
              if (next.step === "halt") throw new TokenPausedError(); // a halt, not a verdict
              if (next.step === "halve") {
                rows = rows.slice(0, next.keep);
                continue;
              }
              finished = await this.reject(tx, rows, err.reason);
              return claimed.length;
            }
          }
          phase("prepare");
          const signed = await chain.sign(prepared);
          phase("sign");
          const keys = rows.map((r) => r.idempotency_key);
          const txId = await txStore.recordSigned(tx, chain, signed, keys);
          await this.deps.nonces.advance(tx, signed.nonce);
          phase("record");
          // From here a failure may leave the transaction on chain without our record of it: every
          // lane holds its keys back until the chain says (reconcileWithChain).
          this.inDoubt = true;
          this.held.sending((sending = keys));
          await broadcastMined(chain, signed);
          phase("broadcast");
          if (estimate) for (const key of keys) needsEstimate?.delete(key);
          sent = { signed, txId, keys };
          return claimed.length;
        },
        { timeout: 60_000, maxWait: 10_000 },
      );
      committed = true;
    } finally {
      this.held.sent(sending, committed);
    }
    this.inDoubt = false;
    if (handled > 0) phase("commit");
    this.deps.completions.notify(finished);
    if (sent) this.announce(sent);
    return handled;
  }

  /**
   * Before sending after a doubtful failure: asks the contract (pending state included) which
   * queued mint ids are used already, settles those already mined from their events, and holds
   * back the others (in the mempool, or not findable now) until they are. Runs outside the nonce
   * lock. `scope` "awaiting" looks only at keys held back earlier.
   */
  private async reconcileWithChain(scope: "queue" | "awaiting"): Promise<void> {
    const { db, chain, settlement } = this.deps;
    this.awaitCheckedAt = Date.now();
    // Settled by a receipt or another adapter meanwhile: nothing left to wait for.
    if (scope === "awaiting") await this.forgetFinished("mints", this.held.keys);
    const held = [...this.held.keys];
    const settled = await db.$transaction(
      async (tx) => {
        const queued =
          scope === "queue"
            ? await tx.$queryRaw<PendingRow[]>`
                SELECT idempotency_key, mint_id, to_address, amount_wei FROM mints
                WHERE status = 'PENDING' ORDER BY created_at LIMIT 500 FOR UPDATE SKIP LOCKED`
            : await tx.$queryRaw<PendingRow[]>`
                SELECT idempotency_key, mint_id, to_address, amount_wei FROM mints
                WHERE status = 'PENDING' AND idempotency_key = ANY(${held}) FOR UPDATE SKIP LOCKED`;
        const used = await chain.mintIdsUsed(queued.map((r) => r.mint_id as Hex), "pending");
        const onChain = queued.filter((_, i) => used[i]);
        // Only ids already mined have an event to find; the others are still in a mempool.
        const mined = await chain.mintIdsUsed(onChain.map((r) => r.mint_id as Hex), "latest");
        const findable = onChain.filter((_, i) => mined[i]);
        const done = await settlement.settleMinted(tx, findable.map(toMintRef)).catch((err: unknown) => {
          this.deps.logger.warn({ err: shortMessage(err) }, "could not look up mints on chain; holding them back");
          return [] as string[];
        });
        // Only the rows looked at here: another lane's round in flight holds its keys (locked, skipped).
        for (const r of queued) this.held.keys.delete(r.idempotency_key);
        for (const r of onChain) if (!done.includes(r.idempotency_key)) this.held.keys.add(r.idempotency_key);
        return done;
      },
      { timeout: 60_000, maxWait: 10_000 },
    );
    this.deps.completions.notify(settled);
  }

  /**
   * One PENDING clawback in a transaction of its own, under the nonce lock like a mint batch.
   * A refusal in gas estimation settles it before anything is signed (see rejectClawback).
   */
  private async clawbackRound(): Promise<number> {
    const { db, chain, logger } = this.deps;
    let sent: { signed: SignedTx; txId: bigint; key: string } | undefined;
    let finished: string[] = [];
    let sending: string[] = [];
    let committed = false;
    let handled: number;
    try {
      handled = await db.$transaction(
        async (tx) => {
          const [row] = await tx.$queryRaw<PendingClawbackRow[]>`
            SELECT idempotency_key, ref_id, from_address, amount_wei FROM clawbacks
            WHERE status = 'PENDING' AND NOT (idempotency_key = ANY(${[...this.heldClawbacks.keys]}))
            ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED`;
          if (!row) return 0;
          const nonce = await this.deps.nonces.lock(tx);
          let prepared;
          try {
            prepared = await chain.prepareClawback(toClawbackCall(row), nonce);
          } catch (err) {
            if (!(err instanceof ContractRejectedError)) throw err;
            if (err.reason === "EnforcedPause") throw new TokenPausedError(); // a halt, not a verdict
            finished = await this.rejectClawback(tx, row, err);
            return 1;
          }
          const signed = await chain.sign(prepared);
          const txId = await txStore.recordSigned(tx, chain, signed);
          await clawbackStore.submitted(tx, row.idempotency_key, txId);
          await this.deps.nonces.advance(tx, signed.nonce);
          // From here a failure may leave the transaction on chain without our record of it: every
          // lane holds the key back until the chain says (reconcileClawbacks).
          this.inDoubt = true;
          this.heldClawbacks.sending((sending = [row.idempotency_key]));
          await chain.broadcast(signed.raw);
          sent = { signed, txId, key: row.idempotency_key };
          return 1;
        },
        { timeout: 60_000, maxWait: 10_000 },
      );
      committed = true;
    } finally {
      this.heldClawbacks.sent(sending, committed);
    }
    this.inDoubt = false;
    this.deps.completions.notify(finished);
    if (sent) {
      this.deps.metrics.transactions.inc({ event: "sent" });
      logger.debug({ tx: sent.signed.hash, nonce: sent.signed.nonce.toString(), clawback: sent.key }, "clawback transaction sent");
      this.deps.receipts.watch(sent.txId, sent.signed.hash);
    }
    return handled;
  }

  /** reconcileWithChain for clawbacks: refIds used on chain are settled from their events or held back. */
  private async reconcileClawbacks(scope: "queue" | "awaiting"): Promise<void> {
    const { db, chain, settlement } = this.deps;
    this.awaitCheckedAt = Date.now();
    if (scope === "awaiting") await this.forgetFinished("clawbacks", this.heldClawbacks.keys);
    const held = [...this.heldClawbacks.keys];
    const settled = await db.$transaction(
      async (tx) => {
        const queued =
          scope === "queue"
            ? await tx.$queryRaw<PendingClawbackRow[]>`
                SELECT idempotency_key, ref_id, from_address, amount_wei FROM clawbacks
                WHERE status = 'PENDING' ORDER BY created_at LIMIT 500 FOR UPDATE SKIP LOCKED`
            : await tx.$queryRaw<PendingClawbackRow[]>`
                SELECT idempotency_key, ref_id, from_address, amount_wei FROM clawbacks
                WHERE status = 'PENDING' AND idempotency_key = ANY(${held}) FOR UPDATE SKIP LOCKED`;
        if (queued.length === 0) return [] as string[];
        const used = await chain.refIdsUsed(queued.map((r) => r.ref_id as Hex), "pending");
        const onChain = queued.filter((_, i) => used[i]);
        const mined = await chain.refIdsUsed(onChain.map((r) => r.ref_id as Hex), "latest");
        const findable = onChain.filter((_, i) => mined[i]);
        const done = await settlement.settleClawedBack(tx, findable.map(toClawbackRef)).catch((err: unknown) => {
          this.deps.logger.warn({ err: shortMessage(err) }, "could not look up clawbacks on chain; holding them back");
          return [] as string[];
        });
        // Only the rows looked at here: another lane's round in flight holds its key (locked, skipped).
        for (const r of queued) this.heldClawbacks.keys.delete(r.idempotency_key);
        for (const r of onChain) if (!done.includes(r.idempotency_key)) this.heldClawbacks.keys.add(r.idempotency_key);
        return done;
      },
      { timeout: 60_000, maxWait: 10_000 },
    );
    this.deps.completions.notify(settled);
  }

  /**
   * Records a clawback's refusal. `ClawbackAlreadyApplied` is never final: some transaction
   * (perhaps one still in the mempool) used the refId, so it is settled from its event now or
   * later. A balance below the amount is final (INSUFFICIENT_BALANCE), as is any other refusal
   * (REVERTED). Returns the keys that reached a final state.
   */
  private async rejectClawback(tx: Tx, row: PendingClawbackRow, err: ContractRejectedError): Promise<string[]> {
    const key = row.idempotency_key;
    if (err.reason === "ClawbackAlreadyApplied") {
      const settled = await this.deps.settlement.settleClawedBack(tx, [toClawbackRef(row)]).catch(() => [] as string[]);
      if (settled.length === 0) this.heldClawbacks.keys.add(key); // looked up again later
      return settled;
    }
    if (err.reason === "ERC20InsufficientBalance") {
      const [, balance, needed] = err.args;
      await clawbackStore.failed(tx, key, "INSUFFICIENT_BALANCE", `the holder holds ${String(balance)} wei, less than the ${String(needed)} wei to claw back`);
    } else {
      await clawbackStore.failed(tx, key, "REVERTED", `the token contract rejected the clawback: ${err.reason}`);
    }
    this.deps.metrics.clawbacks.inc({ status: "failed" });
    this.deps.logger.warn({ key, reason: err.reason }, "clawback rejected by the contract");
    return [key];
  }

  /**
   * Records a refusal of `rows` (one entry, or every entry for a global refusal such as a revoked
   * minter role). `MintIdAlreadyUsed` is never final: the id was minted by some transaction
   * (perhaps one still in the mempool), so the mint is settled from its event now or later. For
   * any other refusal the chain is asked first which ids are used (pending state included): those
   * were minted by an earlier transaction of ours and are settled, not failed. Returns the keys
   * that reached a final state.
   */
  private async reject(tx: Tx, rows: readonly PendingRow[], reason: string): Promise<string[]> {
    const { chain, settlement } = this.deps;
    const finished: string[] = [];
    let onChain: readonly PendingRow[] = rows;
    if (reason !== "MintIdAlreadyUsed") {
      const used = await chain.mintIdsUsed(rows.map((r) => r.mint_id as Hex), "pending");
      onChain = rows.filter((_, i) => used[i]);
    }
    if (onChain.length) {
      const settled = await settlement.settleMinted(tx, onChain.map(toMintRef)).catch(() => [] as string[]); // held back, looked up later
      finished.push(...settled);
      for (const r of onChain) if (!settled.includes(r.idempotency_key)) this.held.keys.add(r.idempotency_key);
    }
    const failed = rows.filter((r) => !onChain.includes(r)).map((r) => r.idempotency_key);
    await txStore.mintsFailed(tx, failed, `the token contract rejected the mint: ${reason}`);
    finished.push(...failed);
    if (failed.length) {
      this.deps.metrics.mints.inc({ status: "failed" }, failed.length);
      this.deps.logger.warn({ rejected: failed, reason }, "mints rejected by the contract");
    }
    return finished;
  }
}

/**
 * Mint (or clawback) keys no lane may send now, shared by the signer lanes: ids used on chain by a
 * transaction not yet mined, and the keys of rounds between broadcast and commit. A round whose commit fails
 * leaves its keys held, so no other lane claims and sends them again before the chain is asked
 * (else a second send: refused by the contract, but a lone bounded mint reverts and costs gas).
 */
export class HeldKeys {
  readonly keys = new Set<string>();
  private readonly inFlight = new Set<string>();

  /** Before a broadcast. */
  sending(keys: readonly string[]): void {
    for (const key of keys) {
      this.keys.add(key);
      this.inFlight.add(key);
    }
  }

  /** After the round: committed (the keys are SUBMITTED now), or not (held until the chain is asked). */
  sent(keys: readonly string[], committed: boolean): void {
    for (const key of keys) {
      this.inFlight.delete(key);
      if (committed) this.keys.delete(key);
    }
  }

  /** Some key waits for the chain, not only for a round in flight. */
  get waiting(): boolean {
    return this.keys.size > this.inFlight.size;
  }
}

/**
 * Times a round's phases (each call: the time since the previous one). Observed at "commit" only,
 * so empty and failed rounds do not blur the figures.
 */
function phaseTimer(metrics: Metrics): (phase: string) => void {
  let last = performance.now();
  const seen: [string, number][] = [];
  return (phase) => {
    const now = performance.now();
    seen.push([phase, (now - last) / 1000]);
    last = now;
    if (phase === "commit") for (const [p, s] of seen) metrics.roundPhaseSeconds.observe({ phase: p }, s);
  };
}

/**
 * Broadcasts. A node that mines on arrival (Hardhat's automine) may answer a transaction that
 * reverted with the revert itself: it was mined all the same (its nonce is used), so it counts as
 * sent, and its receipt settles its mints like any other revert.
 */
async function broadcastMined(chain: ChainClient, signed: SignedTx): Promise<void> {
  try {
    await chain.broadcast(signed.raw);
  } catch (err) {
    if (!asContractRejection(err) || isNonceError(err) || !(await chain.receipt(signed.hash).catch(() => undefined))) throw err;
  }
}

/** The token is paused: mints stay queued and go out, with backoff, once it is unpaused. */
class TokenPausedError extends Error {
  override name = "TokenPausedError";
}

const toCall = (r: PendingRow) => ({ to: r.to_address as Hex, amountWei: fromDecimal(r.amount_wei as never), mintId: r.mint_id as Hex });
const toMintRef = (r: PendingRow) => ({ idempotencyKey: r.idempotency_key, mintId: r.mint_id });
const toClawbackCall = (r: PendingClawbackRow) => ({ from: r.from_address as Hex, amountWei: fromDecimal(r.amount_wei as never), refId: r.ref_id as Hex });
const toClawbackRef = (r: PendingClawbackRow) => ({ idempotencyKey: r.idempotency_key, refId: r.ref_id });
