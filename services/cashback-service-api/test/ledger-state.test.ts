import { describe, expect, it } from "vitest";
import { next, type LedgerKind, type LedgerStatus, type ResultEvent } from "../src/ledger/ledger-state.ts";

const minted: ResultEvent = { type: "cashback.minted", chainRef: `0x${"a".repeat(64)}`, txHash: `0x${"b".repeat(64)}`, blockNumber: 7n };
const mintFailed: ResultEvent = { type: "cashback.mint_failed", reason: "REVERTED", message: "reverted" };
const clawedBack: ResultEvent = { type: "cashback.clawed_back", chainRef: `0x${"c".repeat(64)}`, txHash: `0x${"d".repeat(64)}`, blockNumber: 9n };
const clawbackFailed: ResultEvent = { type: "cashback.clawback_failed", reason: "INSUFFICIENT_BALANCE", message: "balance too low" };

// kind, status, event -> status, outcome, effect
const table: [LedgerKind, LedgerStatus, ResultEvent, LedgerStatus, string, string | null][] = [
  ["accrual", "pending", minted, "minted", "applied", "record_chain"],
  ["accrual", "pending", mintFailed, "failed", "applied", "record_failure"],
  ["accrual", "failed", minted, "minted", "applied", "record_chain"], // a retried mint went through: the chain wins
  ["accrual", "failed", mintFailed, "failed", "applied", "record_failure"], // the newer reason is kept
  ["accrual", "minted", minted, "minted", "ignored", null],
  ["accrual", "minted", mintFailed, "minted", "ignored", null], // stale failure after success
  ["accrual", "pending", clawedBack, "pending", "wrong_kind", null],
  ["accrual", "minted", clawbackFailed, "minted", "wrong_kind", null],
  ["clawback", "clawback_pending", clawedBack, "clawed_back", "applied", "record_chain"],
  ["clawback", "clawback_pending", clawbackFailed, "clawback_failed", "applied", "record_failure"],
  ["clawback", "clawback_failed", clawedBack, "clawed_back", "applied", "record_chain"],
  ["clawback", "clawback_failed", clawbackFailed, "clawback_failed", "applied", "record_failure"],
  ["clawback", "clawed_back", clawedBack, "clawed_back", "ignored", null],
  ["clawback", "clawed_back", clawbackFailed, "clawed_back", "ignored", null],
  ["clawback", "clawback_pending", minted, "clawback_pending", "wrong_kind", null],
  ["clawback", "clawback_pending", mintFailed, "clawback_pending", "wrong_kind", null],
];

describe("ledger entry transitions", () => {
  it.each(table)("%s %s + %o -> %s (%s)", (kind, status, event, expected, outcome, effect) => {
    const t = next(kind, status, event);
    expect(t.status).toBe(expected);
    expect(t.outcome).toBe(outcome);
    expect(t.effects.map((e) => e.type)).toEqual(effect ? [effect] : []);
  });

  it("records what the chain said", () => {
    expect(next("accrual", "pending", minted).effects).toEqual([{ type: "record_chain", chainRef: minted.type === "cashback.minted" ? minted.chainRef : "", txHash: `0x${"b".repeat(64)}`, blockNumber: 7n }]);
    expect(next("clawback", "clawback_pending", clawbackFailed).effects).toEqual([{ type: "record_failure", reason: "INSUFFICIENT_BALANCE", message: "balance too low" }]);
  });
});
