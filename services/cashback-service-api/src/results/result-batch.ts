import type pg from "pg";
import type { AnyEvent } from "@cashback/events";
import { next, type LedgerKind, type LedgerStatus, type ResultEvent } from "../ledger/ledger-state.ts";

/** One decoded result event of a batch, as ResultHandler reads it. */
export interface BatchEvent {
  event: AnyEvent;
  result: ResultEvent;
  by: { entryId: string } | { refundId: string };
  entryId: string;
  refundId: string | null;
}

export type BatchOutcome = { outcome: "applied" | "ignored" | "duplicate"; type: string };

interface EntryRow {
  id: string;
  kind: LedgerKind;
  status: LedgerStatus;
  refund_id: string | null;
  accrual_id: string | null;
  chain_ref: string | null;
  tx_hash: string | null;
  block_number: string | null;
  failure_reason: string | null;
  failure_message: string | null;
}

/**
 * Applies a batch of result events in ONE transaction on a node-postgres client, in four
 * set-based statements (record the event ids, lock the entries, write the entries, record the
 * outcomes) instead of some six Prisma round trips per event. The same rules as one by one:
 * an event id already in processed_events (an earlier delivery, or earlier in this batch) is a
 * duplicate and changes nothing; each transition is ledger-state's `next`, applied in the
 * batch's order to the entry as the previous events of the batch left it.
 *
 * Returns undefined, with everything rolled back, when an event of the batch would be parked
 * (unknown entry, wrong kind, mismatched clawback): the caller applies that batch one by one,
 * so the poison is parked alone and the others still go through. Throws on database errors
 * (nothing committed).
 */
export async function applyResultBatch(client: pg.PoolClient, events: readonly BatchEvent[]): Promise<BatchOutcome[] | undefined> {
  await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
  try {
    const outcomes = await applyInTransaction(client, events);
    if (!outcomes) {
      await client.query("ROLLBACK");
      return undefined;
    }
    await client.query("COMMIT");
    return outcomes;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

async function applyInTransaction(client: pg.PoolClient, events: readonly BatchEvent[]): Promise<BatchOutcome[] | undefined> {
  // Event ids in a fixed order: two batches sharing ids wait on each other instead of deadlocking.
  const firstById = new Map<string, BatchEvent>();
  for (const e of events) if (!firstById.has(e.event.id)) firstById.set(e.event.id, e);
  const unique = [...firstById.values()].sort((a, b) => (a.event.id < b.event.id ? -1 : 1));
  const { rows: inserted } = await client.query<{ event_id: string }>(
    `INSERT INTO processed_events (event_id, type, entry_id, refund_id, outcome, envelope)
     SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::uuid[], $4::uuid[], $5::varchar[], $6::jsonb[])
     ON CONFLICT (event_id) DO NOTHING
     RETURNING event_id`,
    [
      unique.map((e) => e.event.id),
      unique.map((e) => e.event.type),
      unique.map((e) => e.entryId),
      unique.map((e) => e.refundId),
      unique.map(() => "received"),
      unique.map((e) => JSON.stringify(e.event)),
    ],
  );
  const fresh = new Set(inserted.map((r) => r.event_id));
  const toApply = events.filter((e, i) => fresh.has(e.event.id) && events.findIndex((o) => o.event.id === e.event.id) === i);

  const entries = new Map<string, EntryRow>(); // by accrual id, and by "refund:<id>" for clawbacks
  if (toApply.length > 0) {
    const ids = toApply.flatMap((e) => ("entryId" in e.by ? [e.by.entryId] : []));
    const refundIds = toApply.flatMap((e) => ("refundId" in e.by ? [e.by.refundId] : []));
    // Locked in id order, for the same reason as above.
    const { rows } = await client.query<EntryRow>(
      `SELECT id, kind, status, refund_id, accrual_id, chain_ref, tx_hash, block_number::text, failure_reason, failure_message
       FROM cashback_ledger WHERE id = ANY($1::uuid[]) OR refund_id = ANY($2::uuid[])
       ORDER BY id FOR UPDATE`,
      [ids, refundIds],
    );
    for (const row of rows) {
      entries.set(row.id, row);
      if (row.refund_id) entries.set(`refund:${row.refund_id}`, row);
    }
  }

  const outcomeById = new Map<string, "applied" | "ignored">();
  const changed = new Set<EntryRow>();
  for (const e of toApply) {
    const entry = entries.get("entryId" in e.by ? e.by.entryId : `refund:${e.by.refundId}`);
    // Found by id, an entry must be the one named (a clawback's id given as an accrual's is wrong_kind below).
    if (!entry) return undefined; // UNKNOWN_ENTRY
    const transition = next(entry.kind, entry.status, e.result);
    if (transition.outcome === "wrong_kind") return undefined;
    if (entry.kind === "clawback" && entry.accrual_id !== e.entryId) return undefined; // ENTRY_MISMATCH
    if (transition.outcome === "applied") {
      entry.status = transition.status;
      for (const effect of transition.effects) {
        if (effect.type === "record_chain") {
          Object.assign(entry, { chain_ref: effect.chainRef, tx_hash: effect.txHash, block_number: effect.blockNumber.toString(), failure_reason: null, failure_message: null });
        } else {
          Object.assign(entry, { failure_reason: effect.reason.slice(0, 64), failure_message: effect.message.slice(0, 1000) });
        }
      }
      changed.add(entry);
    }
    outcomeById.set(e.event.id, transition.outcome);
  }

  if (changed.size > 0) {
    const rows = [...changed];
    await client.query(
      `UPDATE cashback_ledger l
       SET status = v.status::ledger_status, chain_ref = v.chain_ref, tx_hash = v.tx_hash, block_number = v.block_number,
           failure_reason = v.failure_reason, failure_message = v.failure_message, updated_at = clock_timestamp()
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[])
         AS v(id, status, chain_ref, tx_hash, block_number, failure_reason, failure_message)
       WHERE l.id = v.id`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.status),
        rows.map((r) => r.chain_ref),
        rows.map((r) => r.tx_hash),
        rows.map((r) => r.block_number),
        rows.map((r) => r.failure_reason),
        rows.map((r) => r.failure_message),
      ],
    );
  }
  if (outcomeById.size > 0) {
    await client.query(
      `UPDATE processed_events p SET outcome = v.outcome
       FROM unnest($1::uuid[], $2::text[]) AS v(event_id, outcome) WHERE p.event_id = v.event_id`,
      [[...outcomeById.keys()], [...outcomeById.values()]],
    );
  }

  // In the batch's order: the first delivery of an id carries its outcome, any other is a duplicate.
  const seen = new Set<string>();
  return events.map((e) => {
    const first = !seen.has(e.event.id);
    seen.add(e.event.id);
    const outcome = first ? outcomeById.get(e.event.id) : undefined;
    return { outcome: outcome ?? "duplicate", type: e.event.type };
  });
}
