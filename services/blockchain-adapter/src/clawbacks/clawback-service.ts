import type { CircuitBreakerPolicy } from "cockatiel";
import { chainDown } from "../chain/circuit-breaker.ts";
import { AdapterError } from "../errors.ts";
import { fromDecimal, RECORD_TX, type Db } from "../db.ts";
import type { Completions } from "../mints/completions.ts";
import { toClawbackResult, type ClawbackResult } from "../mints/views.ts";
import { DEFAULT_METADATA_LIMITS, type MetadataLimits } from "../validation.ts";
import { clawbackStore } from "./clawback-store.ts";
import { parseClawbackRequest, sameClawback, type ClawbackRequest } from "./clawback-request.ts";

type ClawbackInput = Parameters<typeof parseClawbackRequest>[0];

/**
 * The Clawback API: validates, records each idempotency key once, lets the dispatcher send it
 * (one `clawback` transaction each), and waits up to the receipt timeout for the outcome. Same
 * guarantees as MintService: once recorded, the clawback happens whatever happens to the call.
 */
export class ClawbackService {
  private readonly deps: {
    db: Db;
    breaker: CircuitBreakerPolicy;
    /** The signer lanes: woken for new work; outOfFunds when no lane can pay for gas. */
    dispatcher: { nudge(): void; readonly outOfFunds?: boolean };
    completions: Completions;
    receiptTimeoutMs: number;
    metadataLimits?: MetadataLimits;
  };

  constructor(deps: ClawbackService["deps"]) {
    this.deps = deps;
  }

  /** `signal`: the caller went away; stop waiting (the clawback itself goes on). */
  async clawback(input: ClawbackInput, signal?: AbortSignal): Promise<ClawbackResult> {
    const req = parseClawbackRequest(input, this.deps.metadataLimits ?? DEFAULT_METADATA_LIMITS);
    // New work waits in the caller's queue while the breaker is open; a known key is answered
    // from the database, chain or no chain.
    if (chainDown(this.deps.breaker) && !(await this.deps.db.clawback.findUnique({ where: { idempotencyKey: req.idempotencyKey }, select: { idempotencyKey: true } }))) {
      throw new AdapterError("unavailable", "CIRCUIT_OPEN", "the chain is unreachable (circuit breaker open); try again later");
    }
    const fresh = await this.record(req);
    if (fresh) this.deps.dispatcher.nudge();
    const row = await this.awaitFinal(req.idempotencyKey, Date.now() + this.deps.receiptTimeoutMs, signal);
    return toClawbackResult(row, !fresh);
  }

  /** Inserts the key if new (returns true). A known key with other parameters, or a mint's key, is refused. */
  private record(req: ClawbackRequest): Promise<boolean> {
    return this.deps.db.$transaction(async (tx) => {
      const key = req.idempotencyKey;
      if (await tx.mint.findUnique({ where: { idempotencyKey: key }, select: { idempotencyKey: true } })) {
        throw new AdapterError("already_exists", "IDEMPOTENCY_KEY_REUSED", `idempotency key "${key}" was used for a mint`);
      }
      if ((await clawbackStore.insert(tx, [req])).has(key)) return true;
      const stored = await tx.clawback.findUnique({ where: { idempotencyKey: key } });
      if (stored && !sameClawback({ fromAddress: stored.fromAddress, amountWei: fromDecimal(stored.amountWei) }, req)) {
        throw new AdapterError("already_exists", "IDEMPOTENCY_KEY_REUSED", `idempotency key "${key}" was used for a different clawback`);
      }
      return false;
    }, RECORD_TX);
  }

  /**
   * Waits until the clawback is final, the deadline passes, the caller goes away, or the breaker
   * opens while it is unsent; every early exit answers SUBMITTED (ask again with the same key).
   */
  private async awaitFinal(key: string, deadline: number, signal?: AbortSignal) {
    const { db, completions } = this.deps;
    for (;;) {
      // Woken by our own dispatcher; the short cap covers other adapter processes.
      const woken = completions.wait([key], Math.max(1, Math.min(250, deadline - Date.now())));
      const row = await db.clawback.findUniqueOrThrow({ where: { idempotencyKey: key }, include: { transaction: true } });
      const open = row.status === "PENDING" || row.status === "SUBMITTED";
      if (!open || Date.now() >= deadline || signal?.aborted) return row;
      if (row.status === "PENDING" && chainDown(this.deps.breaker)) return row;
      await woken;
    }
  }
}
