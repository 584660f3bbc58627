/**
 * The transaction lifecycle's decisions, as pure functions of what the database and the chain
 * said: no I/O here, so each rule is table-tested alone (test/lifecycle.test.ts) and the code that
 * asks the chain (tx-monitor.ts, receipt-watcher.ts, dispatcher.ts) only gathers and acts.
 * docs/blockchain-adapter.md has the transition table these implement.
 */

/** Blocks on top of and including `minedIn`: 1 in the head block itself, 0 when not mined (yet). */
export function confirmationsAt(head: bigint, minedIn: bigint | null | undefined): bigint {
  if (minedIn === null || minedIn === undefined || head < minedIn) return 0n;
  return head - minedIn + 1n;
}

/** Whether a receipt in block `minedIn` is deep enough to be recorded as final. */
export function isSettled(head: bigint, minedIn: bigint, required: number): boolean {
  return confirmationsAt(head, minedIn) >= BigInt(required);
}

export interface Fees {
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** Fee bump for a replacement, in percent; nodes require at least +10% on both fee fields. */
export const BUMP_PERCENT = 125n;

/**
 * The fees of a replacement: each field at least the old one raised by BUMP_PERCENT (else the
 * node refuses it as underpriced) and at least what the market asks now, never above `cap`; the
 * priority fee never above the max fee. Undefined when the old max fee already reached the cap:
 * a replacement could not outbid it.
 */
export function replacementFees(old: Fees, market: Fees, cap: bigint): Fees | undefined {
  if (old.maxFeePerGas >= cap) return undefined;
  // Rounded up: at a few wei, rounding down would offer less than the +10% a node wants.
  const bump = (was: bigint, now: bigint) => min(max((was * BUMP_PERCENT + 99n) / 100n, now), cap);
  const maxFeePerGas = bump(old.maxFeePerGas, market.maxFeePerGas);
  return { maxFeePerGas, maxPriorityFeePerGas: min(bump(old.maxPriorityFeePerGas, market.maxPriorityFeePerGas), maxFeePerGas) };
}

/** What the monitor knows of one open transaction (its nonce's attempts have no recorded receipt). */
export interface Observed {
  /** A receipt of any attempt with this nonce, with the head's confirmations of it. */
  receipt?: { confirmations: bigint };
  nonce: bigint;
  /** The chain's count of mined transactions of this signer (the next nonce to be mined). */
  minedNonce: bigint;
  ageMs: number;
  stuckAfterMs: number;
  /** Whether we hold the signed bytes (a recovered transaction has none). */
  hasRaw: boolean;
  /** Whether the node knows the transaction; asked only when the verdict needs it. */
  known?: boolean;
  requiredConfirmations: number;
}

export type Verdict =
  /** A receipt with enough confirmations: record it (Settlement). */
  | { action: "record" }
  /** Nothing to do now (the reason, for tests and logs). */
  | { action: "wait"; reason: "confirming" | "young" | "no-raw" | "behind-stuck-nonce" }
  /** Its nonce was used by a transaction that is not ours on file: DROPPED, its mints re-queued. */
  | { action: "drop" }
  /** Ask the node whether it knows the transaction, then decide again with `known`. */
  | { action: "ask-node" }
  /** The node forgot it: send the same signed bytes (replace if the node refuses them). */
  | { action: "rebroadcast" }
  /** Pending too long at the next nonce to be mined: same call, same nonce, higher fees. */
  | { action: "replace" };

/** The monitor's choice for one open transaction. */
export function monitorVerdict(o: Observed): Verdict {
  if (o.receipt) return o.receipt.confirmations >= BigInt(o.requiredConfirmations) ? { action: "record" } : { action: "wait", reason: "confirming" };
  if (o.nonce < o.minedNonce) return { action: "drop" };
  if (o.ageMs < o.stuckAfterMs) return { action: "wait", reason: "young" };
  if (!o.hasRaw) return { action: "wait", reason: "no-raw" };
  if (o.known === undefined) return { action: "ask-node" };
  if (!o.known) return { action: "rebroadcast" };
  // Only the next nonce to be mined can be stuck on its own fees; the others wait behind it.
  return o.nonce === o.minedNonce ? { action: "replace" } : { action: "wait", reason: "behind-stuck-nonce" };
}

/**
 * The nonces to fill with 0-value transfers to ourselves: our lowest open transaction has waited
 * `stuckAfterMs` for a nonce below it that nobody holds (a broadcast that reached the node but not
 * our database, later evicted). Nothing would ever fill it, and everything later would wait.
 */
export function nonceGap(o: {
  lowestOpenNonce: bigint;
  lowestOpenAgeMs: number;
  minedNonce: bigint;
  /** The node's count including its mempool; above minedNonce means it holds something there. */
  pendingNonce: bigint;
  /** Our SUBMITTED/REPLACED attempts at minedNonce. */
  oursAtMinedNonce: number;
  stuckAfterMs: number;
}): { from: bigint; to: bigint } | undefined {
  if (o.lowestOpenNonce <= o.minedNonce || o.lowestOpenAgeMs < o.stuckAfterMs) return undefined;
  if (o.pendingNonce > o.minedNonce || o.oursAtMinedNonce > 0) return undefined;
  return { from: o.minedNonce, to: o.lowestOpenNonce }; // [from, to)
}

/** Refusals that do not depend on the entry: splitting the batch would not help. */
export const GLOBAL_REFUSALS: ReadonlySet<string> = new Set(["AccessControlUnauthorizedAccount"]);

export type RefusalStep =
  /** The token is paused: a halt, not a verdict; everything stays queued. */
  | { step: "halt" }
  /** Try the first `keep` entries alone; the rest stay queued for later rounds. */
  | { step: "halve"; keep: number }
  /** The refusal is final for every entry tried (after asking the chain which ids were minted). */
  | { step: "fail-all" };

/**
 * What to do when the contract refuses a batch of `size` in gas estimation. One refused entry ends
 * up alone and fails alone: the batch is halved until the contract accepts it.
 */
export function splitRefusedBatch(size: number, reason: string): RefusalStep {
  if (reason === "EnforcedPause") return { step: "halt" };
  if (size > 1 && !GLOBAL_REFUSALS.has(reason)) return { step: "halve", keep: Math.ceil(size / 2) };
  return { step: "fail-all" };
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);
