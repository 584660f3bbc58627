import { backoffMs, exhausted, type RetryPolicy } from "./retry-policy.ts";

/**
 * The life of a mint request (one per ledger entry) and of a clawback (one per refund), as one
 * pure function: next(state, event, ctx) -> { state, effects }. No I/O: the store
 * (store.ts) loads the row, calls next, and writes the new state and the effects' outbox rows in
 * one transaction. Every transition is in test/machine.test.ts.
 *
 *   mint:      PENDING ──CONFIRMED──> CONFIRMED                        (emit minted)
 *                 │  └──SUBMITTED──> SUBMITTED ──GetTransaction──> CONFIRMED | FAILED
 *                 ├──REFUSED──> FAILED                                  (emit failed, dead-letter)
 *                 └──TRANSIENT──> PENDING (backoff) ... exhausted ──> FAILED, or SUBMITTED when the
 *                                 adapter may hold the key (only its answer may fail it then)
 *   clawback:  WAITING ──MINT_CONFIRMED──> PENDING ... as a mint
 *                 └──MINT_FAILED──> FAILED(MINT_FAILED)                 (emit failed, no dead letter)
 *   FAILED ──REPLAYED (a replay from the dead-letter stream)──> PENDING (mint) / WAITING (clawback)
 */
export type Kind = "mint" | "clawback";

export interface Problem {
  /** Stable code, e.g. CHAIN_UNAVAILABLE, REVERTED, RETRIES_EXHAUSTED. */
  reason: string;
  message: string;
}

/** Retry bookkeeping of a request still in progress (columns of its row). */
export interface Progress {
  /** Transient failures since the request was recorded (or replayed). */
  attempts: number;
  /** Epoch ms the retry age counts from. */
  retrySince: number;
  /** Epoch ms of the next attempt (next_attempt_at). */
  dueAt: number;
  /** A call may have reached the adapter, so it may hold the key and mint it whatever we decide. */
  adapterMayKnow: boolean;
  lastError: Problem | null;
}

export type RequestState =
  /** Clawback only: its entry's mint is not confirmed yet. */
  | ({ status: "WAITING" } & Progress)
  /** To be sent at dueAt. */
  | ({ status: "PENDING" } & Progress)
  /** The adapter holds the key (or may): ask it (GetTransaction) at dueAt; never given up. */
  | ({ status: "SUBMITTED"; txHash: string | null } & Progress)
  | { status: "CONFIRMED"; attempts: number; txHash: string; blockNumber: bigint }
  | ({ status: "FAILED"; attempts: number; adapterMayKnow: boolean } & Problem);

export type Status = RequestState["status"];

export type RequestEvent =
  /** The adapter: mined with its confirmations. */
  | { type: "CONFIRMED"; txHash: string; blockNumber: bigint }
  /** The adapter: accepted, no receipt yet. */
  | { type: "SUBMITTED"; txHash: string | null }
  /** The adapter's final no (FAILED with retryable = false, or a non-retryable error). */
  | ({ type: "REFUSED" } & Problem)
  /** A failure that may pass (adapter or network down, timeouts). */
  | ({ type: "TRANSIENT"; mayHaveReached: boolean } & Problem)
  /** GetTransaction: the adapter does not hold the key. */
  | { type: "NOT_FOUND" }
  /** Clawback only: the entry's mint is confirmed / failed for good. */
  | { type: "MINT_CONFIRMED" }
  | { type: "MINT_FAILED" }
  /** The event that created the request came back from the dead-letter stream. */
  | { type: "REPLAYED" };

export type Effect =
  /** Publish cashback.minted / cashback.clawed_back. */
  | { type: "EMIT_SUCCEEDED" }
  /** Publish cashback.mint_failed / cashback.clawback_failed. */
  | ({ type: "EMIT_FAILED" } & Problem)
  /** Put the request's source event on the dead-letter stream, with the reason. */
  | ({ type: "DEAD_LETTER" } & Problem);

export interface MachineContext {
  kind: Kind;
  /** Epoch ms. */
  now: number;
  /** A random draw in [0, 1) for the backoff's jitter. */
  jitter: number;
  policy: RetryPolicy;
}

export interface Transition {
  state: RequestState;
  effects: Effect[];
}

export const RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED";
export const MINT_FAILED = "MINT_FAILED";

/**
 * Final refusals that are an answer about the shopper, not a fault an operator should look at:
 * reported (clawback failed) but not dead-lettered.
 */
const BUSINESS_OUTCOMES: Record<Kind, ReadonlySet<string>> = {
  mint: new Set(),
  clawback: new Set(["INSUFFICIENT_BALANCE"]),
};

/** A new request: a mint is sent at once; a clawback waits for its entry's mint. */
export function initialState(kind: Kind, now: number): RequestState {
  const progress: Progress = { attempts: 0, retrySince: now, dueAt: now, adapterMayKnow: false, lastError: null };
  return kind === "mint" ? { status: "PENDING", ...progress } : { status: "WAITING", ...progress };
}

export function isFinal(state: RequestState): boolean {
  return state.status === "CONFIRMED" || state.status === "FAILED";
}

export function next(state: RequestState, event: RequestEvent, ctx: MachineContext): Transition {
  const same: Transition = { state, effects: [] };
  switch (state.status) {
    case "WAITING":
      if (event.type === "MINT_CONFIRMED") return { state: { ...state, status: "PENDING", dueAt: ctx.now }, effects: [] };
      if (event.type === "MINT_FAILED") {
        const problem = { reason: MINT_FAILED, message: "the entry's mint failed, so nothing was minted to take back" };
        return failed(state, problem, { deadLetter: false });
      }
      return same;

    case "PENDING":
    case "SUBMITTED":
      return inFlight(state, event, ctx) ?? same;

    case "CONFIRMED":
      return same;

    case "FAILED": {
      const fresh = { attempts: 0, retrySince: ctx.now, dueAt: ctx.now, adapterMayKnow: state.adapterMayKnow, lastError: null };
      if (event.type === "REPLAYED") {
        return { state: ctx.kind === "mint" ? { status: "PENDING", ...fresh } : { status: "WAITING", ...fresh }, effects: [] };
      }
      // A mint replayed after its clawback had failed for want of it: the clawback goes ahead.
      if (event.type === "MINT_CONFIRMED" && ctx.kind === "clawback" && state.reason === MINT_FAILED) {
        return { state: { status: "PENDING", ...fresh }, effects: [] };
      }
      return same;
    }
  }
}

/** PENDING or SUBMITTED: what the adapter's answers do. */
function inFlight(state: Extract<RequestState, { status: "PENDING" | "SUBMITTED" }>, event: RequestEvent, ctx: MachineContext): Transition | undefined {
  const { now, policy } = ctx;
  switch (event.type) {
    case "CONFIRMED":
      return {
        state: { status: "CONFIRMED", attempts: state.attempts, txHash: event.txHash, blockNumber: event.blockNumber },
        effects: [{ type: "EMIT_SUCCEEDED" }],
      };

    case "SUBMITTED":
      return {
        state: {
          ...state,
          status: "SUBMITTED",
          txHash: event.txHash ?? (state.status === "SUBMITTED" ? state.txHash : null),
          adapterMayKnow: true,
          dueAt: now + policy.reconcileMs,
        },
        effects: [],
      };

    case "REFUSED":
      return failed(state, event, { deadLetter: !BUSINESS_OUTCOMES[ctx.kind].has(event.reason) });

    case "TRANSIENT": {
      const attempts = state.attempts + 1;
      const lastError = { reason: event.reason, message: event.message };
      const dueAt = now + backoffMs(attempts, ctx.jitter, policy);
      if (state.status === "SUBMITTED") {
        // The adapter holds the key: it will settle it whatever we do, so we keep asking.
        return { state: { ...state, attempts, lastError, dueAt }, effects: [] };
      }
      const adapterMayKnow = state.adapterMayKnow || event.mayHaveReached;
      if (!exhausted(attempts, state.retrySince, now, policy)) {
        return { state: { ...state, attempts, lastError, adapterMayKnow, dueAt }, effects: [] };
      }
      if (adapterMayKnow) {
        // Failing it now could contradict a mint the adapter still makes: ask it first.
        return { state: { ...state, status: "SUBMITTED", txHash: null, attempts, lastError, adapterMayKnow, dueAt: now }, effects: [] };
      }
      return failed({ ...state, attempts, adapterMayKnow }, exhaustedProblem(attempts, state.retrySince, now, lastError), { deadLetter: true });
    }

    case "NOT_FOUND": {
      if (state.status !== "SUBMITTED") return undefined;
      // The adapter does not hold the key: sending it again is safe, and so is giving up.
      if (exhausted(state.attempts, state.retrySince, now, policy)) {
        const last = state.lastError ?? { reason: "NOT_FOUND", message: "the adapter does not know the request" };
        return failed({ ...state, adapterMayKnow: false }, exhaustedProblem(state.attempts, state.retrySince, now, last), { deadLetter: true });
      }
      const { txHash: _, ...progress } = state;
      return { state: { ...progress, status: "PENDING", adapterMayKnow: false, dueAt: now }, effects: [] };
    }

    default:
      return undefined;
  }
}

function failed(state: { attempts: number; adapterMayKnow: boolean }, problem: Problem, opts: { deadLetter: boolean }): Transition {
  const p = { reason: problem.reason, message: problem.message };
  const effects: Effect[] = [{ type: "EMIT_FAILED", ...p }];
  if (opts.deadLetter) effects.push({ type: "DEAD_LETTER", ...p });
  return { state: { status: "FAILED", attempts: state.attempts, adapterMayKnow: state.adapterMayKnow, ...p }, effects };
}

function exhaustedProblem(attempts: number, retrySince: number, now: number, last: Problem): Problem {
  const seconds = Math.round((now - retrySince) / 1000);
  return { reason: RETRIES_EXHAUSTED, message: `gave up after ${attempts} attempts over ${seconds} s; last error ${last.reason}: ${last.message}` };
}
