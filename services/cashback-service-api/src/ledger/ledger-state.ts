/**
 * The life of a ledger entry, as one pure transition function (table-tested in
 * test/ledger-state.test.ts). An accrual goes pending -> minted | failed; a clawback goes
 * clawback_pending -> clawed_back | clawback_failed. The chain is the truth: a success that
 * arrives after a reported failure wins (a retried mint or clawback went through); a failure
 * arriving after a success is stale and ignored.
 */
export type LedgerKind = "accrual" | "clawback";
export type LedgerStatus = "pending" | "minted" | "failed" | "clawback_pending" | "clawed_back" | "clawback_failed";

export type ResultEvent =
  | { type: "cashback.minted"; chainRef: string; txHash: string; blockNumber: bigint }
  | { type: "cashback.clawed_back"; chainRef: string; txHash: string; blockNumber: bigint }
  | { type: "cashback.mint_failed"; reason: string; message: string }
  | { type: "cashback.clawback_failed"; reason: string; message: string };

export type Effect =
  | { type: "record_chain"; chainRef: string; txHash: string; blockNumber: bigint }
  | { type: "record_failure"; reason: string; message: string };

/** applied: the entry changed; ignored: stale or repeated news; wrong_kind: the event does not fit the entry (parked). */
export type Outcome = "applied" | "ignored" | "wrong_kind";

export interface Transition {
  status: LedgerStatus;
  effects: Effect[];
  outcome: Outcome;
}

const SUCCESS = { accrual: "cashback.minted", clawback: "cashback.clawed_back" } as const;
const FAILURE = { accrual: "cashback.mint_failed", clawback: "cashback.clawback_failed" } as const;
const DONE = { accrual: "minted", clawback: "clawed_back" } as const;
const FAILED = { accrual: "failed", clawback: "clawback_failed" } as const;

export function next(kind: LedgerKind, status: LedgerStatus, event: ResultEvent): Transition {
  const unchanged = (outcome: Outcome): Transition => ({ status, effects: [], outcome });
  if (event.type !== SUCCESS[kind] && event.type !== FAILURE[kind]) return unchanged("wrong_kind");
  if (status === DONE[kind]) return unchanged("ignored"); // already final; a repeat or a stale failure
  if (event.type === "cashback.minted" || event.type === "cashback.clawed_back") {
    return { status: DONE[kind], effects: [{ type: "record_chain", chainRef: event.chainRef, txHash: event.txHash, blockNumber: event.blockNumber }], outcome: "applied" };
  }
  return { status: FAILED[kind], effects: [{ type: "record_failure", reason: event.reason, message: event.message }], outcome: "applied" };
}

/** The status an entry starts in. */
export function initialStatus(kind: LedgerKind): LedgerStatus {
  return kind === "accrual" ? "pending" : "clawback_pending";
}
