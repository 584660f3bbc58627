import type { CircuitBreakerPolicy } from "cockatiel";
import { chainDown } from "../chain/circuit-breaker.ts";
import { AdapterError, invalidArgument } from "../errors.ts";
import type { Db } from "../db.ts";
import { DEFAULT_METADATA_LIMITS, type MetadataLimits } from "../validation.ts";
import type { Completions, Confirmation } from "./completions.ts";
import { parseMintRequest, sameMint, type MintRequest } from "./mint-request.ts";
import { toMintResult, type MintResult } from "./views.ts";
import { requestTraceparent } from "../rpc/tracing.ts";
import type { MintCallStore, MintOutcome } from "../transactions/tx-store.ts";

export const MAX_BATCH = 200;
type MintInput = Parameters<typeof parseMintRequest>[0];

/**
 * The mint API the transport calls: validates, records each idempotency key once, lets the
 * dispatcher send, and waits (up to the receipt timeout) for the outcome.
 */
export class MintService {
  private readonly deps: {
    db: Db;
    breaker: CircuitBreakerPolicy;
    /** The signer lanes: woken for new work; outOfFunds when no lane can pay for gas. */
    dispatcher: { nudge(): void; readonly outOfFunds?: boolean };
    completions: Completions;
    /** Recording the keys and reading their outcome, one `pg` statement each. */
    store: MintCallStore;
    receiptTimeoutMs: number;
    metadataLimits?: MetadataLimits;
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
    const limits = this.deps.metadataLimits ?? DEFAULT_METADATA_LIMITS;
    const requests = inputs.map((input) => parseMintRequest(input, limits));
    const keys = requests.map((r) => r.idempotencyKey);
    if (new Set(keys).size !== keys.length) throw invalidArgument("idempotency keys in one batch must be distinct");
    await this.failFastWhenChainDown(keys);

    const fresh = await this.record(requests);
    if (fresh.size > 0) this.deps.dispatcher.nudge();
    // Keys recorded just now are PENDING: no read until the first wake-up (the waiter is registered
    // before the dispatcher can run a round, so no notification is missed).
    const rows = await this.awaitFinal(requests, Date.now() + this.deps.receiptTimeoutMs, signal, fresh.size === keys.length);
    return keys.map((key) => toMintResult(rows.get(key)!, !fresh.has(key)));
  }

  /**
   * New work is refused while the breaker is open: it waits in the caller's queue instead. Keys
   * we already hold are answered from the database (their stored state), chain or no chain.
   */
  private async failFastWhenChainDown(keys: string[]): Promise<void> {
    const down = chainDown(this.deps.breaker);
    const broke = this.deps.dispatcher.outOfFunds === true;
    if (!down && !broke) return;
    const known = await this.deps.db.mint.count({ where: { idempotencyKey: { in: keys } } });
    if (known < keys.length) {
      if (down) throw new AdapterError("unavailable", "CIRCUIT_OPEN", "the chain is unreachable (circuit breaker open); try again later");
      throw new AdapterError("unavailable", "SIGNER_OUT_OF_FUNDS", "the adapter's signer can not pay for gas (it needs funding); try again later");
    }
  }

  /** Inserts the new keys; returns which were new. A known key with other parameters, or a clawback's key, is refused. */
  private async record(requests: MintRequest[]): Promise<Set<string>> {
    const { store } = this.deps;
    const { fresh, clash, stored } = await store.record(requests, (r) => requestTraceparent(r.metadata));
    // Keys are one namespace with clawbacks, so GetTransaction by key is never ambiguous.
    if (clash !== undefined) throw new AdapterError("already_exists", "IDEMPOTENCY_KEY_REUSED", `idempotency key "${clash}" was used for a clawback`);
    const replays = requests.filter((r) => !fresh.has(r.idempotencyKey));
    // A key inserted by a concurrent call after the statement's snapshot: read it now.
    const late = replays.filter((r) => !stored.has(r.idempotencyKey)).map((r) => r.idempotencyKey);
    if (late.length) for (const [k, v] of await store.stored(late)) stored.set(k, v);
    for (const r of replays) {
      const s = stored.get(r.idempotencyKey);
      if (s && !sameMint(s, r)) {
        throw new AdapterError("already_exists", "IDEMPOTENCY_KEY_REUSED", `idempotency key "${r.idempotencyKey}" was used for a different mint`);
      }
    }
    return fresh;
  }

  /**
   * Waits until the mints are final, the deadline passes, the caller goes away, or the breaker
   * opens with mints still unsent. The keys are recorded by then and will be minted in any case,
   * so every early exit answers SUBMITTED: the caller asks again with the same key. Keys the
   * wake-up itself says are confirmed (Completions' Confirmation) are not read again.
   */
  private async awaitFinal(requests: MintRequest[], deadline: number, signal?: AbortSignal, allPending = false) {
    const { store, completions } = this.deps;
    const keys = requests.map((r) => r.idempotencyKey);
    const byKey = new Map<string, MintOutcome>();
    const learn = (c: Confirmation | undefined) => {
      if (!c) return;
      for (const r of requests) {
        if (!c.keys.has(r.idempotencyKey)) continue;
        byKey.set(r.idempotencyKey, { idempotencyKey: r.idempotencyKey, mintId: r.mintId, status: "CONFIRMED", errorReason: null, errorMessage: null, transaction: { txHash: c.txHash, blockNumber: c.blockNumber } });
      }
    };
    const openKeys = () => keys.filter((k) => {
      const status = byKey.get(k)?.status;
      return status === undefined || status === "PENDING" || status === "SUBMITTED";
    });
    const cap = () => Math.max(1, Math.min(250, deadline - Date.now()));
    if (allPending) learn(await completions.wait(keys, cap()));
    for (;;) {
      let open = openKeys();
      if (open.length === 0) return byKey;
      // Woken by our own dispatcher; the short cap covers other adapter processes.
      const woken = completions.wait(open, cap());
      for (const row of await store.outcomes(open)) byKey.set(row.idempotencyKey, row);
      open = openKeys();
      if (open.length === 0 || Date.now() >= deadline || signal?.aborted) return byKey;
      if (open.some((k) => byKey.get(k)?.status === "PENDING") && chainDown(this.deps.breaker)) return byKey;
      learn(await woken);
    }
  }
}
