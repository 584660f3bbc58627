import type { CircuitBreakerPolicy } from "cockatiel";
import { CircuitState } from "cockatiel";
import { isHash } from "viem";
import type { ChainClient } from "../chain/chain-client.ts";
import { AdapterError, invalidArgument } from "../errors.ts";
import { fromDecimal, toDecimal, type Db } from "../db.ts";
import type { Completions } from "./completions.ts";
import type { MintDispatcher } from "./dispatcher.ts";
import { parseMintRequest, sameMint, type MintRequest } from "./mint-request.ts";
import { toMintResult, toTransactionView, type MintResult, type TransactionView } from "./views.ts";

export const MAX_BATCH = 200;
type MintInput = Parameters<typeof parseMintRequest>[0];

/**
 * The mint API the transport calls: validates, records each idempotency key once, lets the
 * dispatcher send, and waits (up to the receipt timeout) for the outcome.
 */
export class MintService {
  private readonly deps: {
    db: Db;
    chain: ChainClient;
    breaker: CircuitBreakerPolicy;
    dispatcher: MintDispatcher;
    completions: Completions;
    receiptTimeoutMs: number;
  };

  constructor(deps: MintService["deps"]) {
    this.deps = deps;
  }

  async mint(input: MintInput, signal?: AbortSignal): Promise<MintResult> {
    const [result] = await this.mintMany([input], signal);
    return result!;
  }

  /** `signal`: the caller went away; stop waiting (the mints themselves go on). */
  async mintMany(inputs: MintInput[], signal?: AbortSignal): Promise<MintResult[]> {
    if (inputs.length === 0) throw invalidArgument("mints must not be empty");
    if (inputs.length > MAX_BATCH) throw invalidArgument(`at most ${MAX_BATCH} mints per batch`);
    const requests = inputs.map(parseMintRequest);
    const keys = requests.map((r) => r.idempotencyKey);
    if (new Set(keys).size !== keys.length) throw invalidArgument("idempotency keys in one batch must be distinct");
    this.failFastWhenChainDown();

    const fresh = await this.record(requests);
    if (fresh.size > 0) this.deps.dispatcher.nudge();
    const rows = await this.awaitFinal(keys, Date.now() + this.deps.receiptTimeoutMs, signal);
    return keys.map((key) => toMintResult(rows.get(key)!, !fresh.has(key)));
  }

  async getTransaction(lookup: { idempotencyKey?: string; txHash?: string }): Promise<TransactionView> {
    const { db } = this.deps;
    let tx;
    if (lookup.txHash !== undefined) {
      if (!isHash(lookup.txHash)) throw invalidArgument("tx_hash must be 32 bytes of 0x-hex");
      tx = await db.blockchainTransaction.findUnique({ where: { txHash: lookup.txHash.toLowerCase() }, include: { mints: true } });
      if (!tx) throw new AdapterError("not_found", "NOT_FOUND", `no transaction ${lookup.txHash}`);
    } else if (lookup.idempotencyKey !== undefined) {
      const mint = await db.mint.findUnique({ where: { idempotencyKey: lookup.idempotencyKey } });
      if (!mint) throw new AdapterError("not_found", "NOT_FOUND", `no mint with idempotency key "${lookup.idempotencyKey}"`);
      if (mint.transactionId === null) return toTransactionView(undefined, [mint], 0n);
      tx = await db.blockchainTransaction.findUniqueOrThrow({ where: { id: mint.transactionId }, include: { mints: true } });
    } else {
      throw invalidArgument("give idempotency_key or tx_hash");
    }
    if (tx.status === "REPLACED" || tx.status === "DROPPED") {
      // Answer for the transaction that took its nonce (and its mints), if it is ours.
      const successor = await db.blockchainTransaction.findFirst({
        where: { chainId: tx.chainId, fromAddress: tx.fromAddress, nonce: tx.nonce, status: { in: ["CONFIRMED", "FAILED", "SUBMITTED"] } },
        orderBy: [{ blockNumber: { sort: "desc", nulls: "last" } }, { id: "desc" }],
        include: { mints: true },
      });
      if (successor) tx = successor;
    }
    const latest = tx.blockNumber === null ? 0n : await this.deps.chain.blockNumber();
    return toTransactionView(tx, tx.mints, latest);
  }

  private chainDown(): boolean {
    return this.deps.breaker.state === CircuitState.Open || this.deps.breaker.state === CircuitState.Isolated;
  }

  /** New work is refused while the breaker is open: it waits in the caller's queue instead. */
  private failFastWhenChainDown(): void {
    if (this.chainDown()) {
      throw new AdapterError("unavailable", "CIRCUIT_OPEN", "the chain is unreachable (circuit breaker open); try again later");
    }
  }

  /** Inserts the new keys; returns which were new. A known key with other parameters is refused. */
  private async record(requests: MintRequest[]): Promise<Set<string>> {
    return this.deps.db.$transaction(async (tx) => {
      const created = await tx.mint.createManyAndReturn({
        data: requests.map((r) => ({
          idempotencyKey: r.idempotencyKey,
          mintId: r.mintId,
          toAddress: r.to,
          amountWei: toDecimal(r.amountWei),
          metadata: r.metadata,
        })),
        skipDuplicates: true,
        select: { idempotencyKey: true },
      });
      const fresh = new Set(created.map((c) => c.idempotencyKey));
      const replays = requests.filter((r) => !fresh.has(r.idempotencyKey));
      if (replays.length) {
        const stored = await tx.mint.findMany({ where: { idempotencyKey: { in: replays.map((r) => r.idempotencyKey) } } });
        const byKey = new Map(stored.map((s) => [s.idempotencyKey, s]));
        for (const r of replays) {
          const s = byKey.get(r.idempotencyKey);
          if (s && !sameMint({ toAddress: s.toAddress, amountWei: fromDecimal(s.amountWei) }, r)) {
            throw new AdapterError("already_exists", "IDEMPOTENCY_KEY_REUSED", `idempotency key "${r.idempotencyKey}" was used for a different mint`);
          }
        }
      }
      return fresh;
    });
  }

  /**
   * Waits until the mints are final, the deadline passes, the caller goes away, or the breaker
   * opens with mints still unsent. The keys are recorded by then and will be minted in any case,
   * so every early exit answers SUBMITTED: the caller asks again with the same key.
   */
  private async awaitFinal(keys: string[], deadline: number, signal?: AbortSignal) {
    const { db, completions } = this.deps;
    let waiting = keys;
    for (;;) {
      // Woken by our own dispatcher; the short cap covers other adapter processes.
      const woken = completions.wait(waiting, Math.max(1, Math.min(250, deadline - Date.now())));
      const rows = await db.mint.findMany({ where: { idempotencyKey: { in: keys } }, include: { transaction: true } });
      const byKey = new Map(rows.map((r) => [r.idempotencyKey, r]));
      const open = rows.filter((r) => r.status === "PENDING" || r.status === "SUBMITTED");
      if (open.length === 0 || Date.now() >= deadline || signal?.aborted) return byKey;
      if (open.some((r) => r.status === "PENDING") && this.chainDown()) return byKey;
      waiting = open.map((r) => r.idempotencyKey);
      await woken;
    }
  }
}

