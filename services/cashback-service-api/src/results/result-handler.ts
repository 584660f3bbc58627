import type pg from "pg";
import type { Logger } from "pino";
import { decodeEvent, type AnyEvent } from "@cashback/events";
import type { Db, Prisma } from "../db.ts";
import { applyTransition, lockEntry } from "../ledger/ledger-store.ts";
import { next, type ResultEvent } from "../ledger/ledger-state.ts";
import { applyResultBatch, type BatchEvent } from "./result-batch.ts";

/** What became of one message. `parked` ones go to the dead-letter stream with the reason. */
export type HandleOutcome =
  | { outcome: "applied" | "ignored" | "duplicate"; type: string }
  | { outcome: "parked"; type: string; reason: string; message: string };

const RESULT_TYPES = new Set(["cashback.minted", "cashback.mint_failed", "cashback.clawed_back", "cashback.clawback_failed"]);

class Park extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Applies one result event to the ledger, exactly once: the event id goes into processed_events
 * in the same transaction as the entry's transition (decided by ledger-state.ts `next`), so a
 * redelivered or replayed event finds its id there and changes nothing. A message that is not a
 * valid result event, or names an entry this service does not have, is parked (never applied,
 * never retried forever, never a crash).
 */
export class ResultHandler {
  constructor(private readonly deps: { db: Db; logger: Logger; pool?: pg.Pool }) {}

  /**
   * Applies many messages at once: those that do not decode are parked (no database), the others
   * in one transaction on the pg pool (result-batch.ts). Undefined when the batch can not be
   * applied as a whole (an event in it would be parked): the caller then uses `handle` one by one.
   * Throws on database errors (nothing applied).
   */
  async handleBatch(data: readonly Uint8Array[]): Promise<HandleOutcome[] | undefined> {
    const { pool } = this.deps;
    if (!pool) return undefined;
    const read = data.map((d) => this.read(d));
    const events = read.filter((r): r is BatchEvent => "event" in r);
    let applied: HandleOutcome[] = [];
    if (events.length > 0) {
      const client = await pool.connect();
      try {
        const outcomes = await applyResultBatch(client, events);
        if (!outcomes) return undefined;
        applied = outcomes;
      } finally {
        client.release();
      }
    }
    let i = 0;
    return read.map((r) => ("event" in r ? applied[i++]! : r));
  }

  private read(data: Uint8Array): BatchEvent | HandleOutcome {
    const decoded = decodeEvent(data);
    if (!decoded.ok) return { outcome: "parked", type: "unknown", reason: decoded.reason, message: decoded.message };
    const event = decoded.event;
    if (!RESULT_TYPES.has(event.type)) return { outcome: "parked", type: event.type, reason: "UNEXPECTED_TYPE", message: `${event.type} is not a result event` };
    return { event, ...toResult(event) };
  }

  async handle(data: Uint8Array): Promise<HandleOutcome> {
    const read = this.read(data);
    if (!("event" in read)) return read;
    const { event, result, by, entryId, refundId } = read;
    try {
      return await this.deps.db.$transaction(
        async (tx) => {
          const inserted = await tx.$executeRaw`
            INSERT INTO processed_events (event_id, type, entry_id, refund_id, outcome, envelope)
            VALUES (${event.id}::uuid, ${event.type}, ${entryId}::uuid, ${refundId}::uuid, 'received', ${JSON.stringify(event)}::jsonb)
            ON CONFLICT (event_id) DO NOTHING`;
          if (inserted === 0) return { outcome: "duplicate" as const, type: event.type };
          const entry = await lockEntry(tx, by);
          if (!entry) throw new Park("UNKNOWN_ENTRY", `no ledger entry for ${"entryId" in by ? `entry ${by.entryId}` : `refund ${by.refundId}`}`);
          const transition = next(entry.kind, entry.status, result);
          if (transition.outcome === "wrong_kind") throw new Park("WRONG_KIND", `${event.type} does not apply to a ${entry.kind} entry`);
          if (entry.kind === "clawback" && entry.accrualId !== entryId) {
            throw new Park("ENTRY_MISMATCH", `refund ${refundId} claws back entry ${entry.accrualId}, the event says ${entryId}`);
          }
          if (transition.outcome === "applied") await applyTransition(tx, entry.id, transition.status, transition.effects);
          if (transition.outcome === "ignored") this.deps.logger.debug({ eventId: event.id, type: event.type, entryId: entry.id, status: entry.status }, "result event ignored: the entry is already final");
          await tx.processedEvent.update({ where: { eventId: event.id }, data: { outcome: transition.outcome } });
          return { outcome: transition.outcome, type: event.type };
        },
        { timeout: 15_000, maxWait: 10_000, isolationLevel: "ReadCommitted" as Prisma.TransactionIsolationLevel },
      );
    } catch (err) {
      if (err instanceof Park) return { outcome: "parked", type: event.type, reason: err.reason, message: err.message };
      throw err;
    }
  }
}

function toResult(event: AnyEvent): { result: ResultEvent; by: { entryId: string } | { refundId: string }; entryId: string; refundId: string | null } {
  switch (event.type) {
    case "cashback.minted": {
      const p = event.payload;
      return { result: { type: event.type, chainRef: p.mint_id, txHash: p.tx_hash, blockNumber: BigInt(p.block_number) }, by: { entryId: p.entry_id }, entryId: p.entry_id, refundId: null };
    }
    case "cashback.mint_failed": {
      const p = event.payload;
      return { result: { type: event.type, reason: p.reason, message: p.message }, by: { entryId: p.entry_id }, entryId: p.entry_id, refundId: null };
    }
    case "cashback.clawed_back": {
      const p = event.payload;
      return { result: { type: event.type, chainRef: p.ref_id, txHash: p.tx_hash, blockNumber: BigInt(p.block_number) }, by: { refundId: p.refund_id }, entryId: p.entry_id, refundId: p.refund_id };
    }
    case "cashback.clawback_failed": {
      const p = event.payload;
      return { result: { type: event.type, reason: p.reason, message: p.message }, by: { refundId: p.refund_id }, entryId: p.entry_id, refundId: p.refund_id };
    }
    default:
      throw new Park("UNEXPECTED_TYPE", `${event.type} is not a result event`);
  }
}
