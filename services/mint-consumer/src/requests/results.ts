import { randomUUID } from "node:crypto";
import { deadLetterSubject, DLQ_HEADERS, newEvent, STREAMS, type Envelope } from "@cashback/events";
import { outboxRecord, type OutboxRecord } from "@cashback/outbox";
import type { Effect, Kind, RequestState } from "./machine.ts";

/** What a request row knows that its result events and dead letters need. */
export interface RequestFacts {
  kind: Kind;
  /** entry id (mint) or refund id (clawback). */
  id: string;
  entryId: string;
  wallet: string;
  amountWei: string;
  /** keccak256 of the idempotency key: the contract's mint id / clawback ref id. */
  chainId: string;
  sourceEvent: Envelope;
  sourceSubject: string;
  sourceSeq: string;
  sourceHeaders: Record<string, string>;
}

/**
 * The outbox rows for a transition's effects: result events on CASHBACK_RESULTS, and the source
 * event on the dead-letter stream. Written in the transaction that writes the new state.
 */
export function effectRecords(facts: RequestFacts, state: RequestState, effects: readonly Effect[]): OutboxRecord[] {
  const opts = { correlationId: facts.sourceEvent.correlation_id, causationId: facts.sourceEvent.id };
  // Results of one entry (minted, then clawed back) keep their order through the relay.
  const aggregateId = facts.entryId;
  // A result continues the trace of the event that asked for it (OpenTelemetry, W3C traceparent).
  const traceparent = facts.sourceHeaders.traceparent;
  const headers: Record<string, string> = traceparent ? { traceparent } : {};
  return effects.map((effect): OutboxRecord => {
    switch (effect.type) {
      case "EMIT_SUCCEEDED": {
        if (state.status !== "CONFIRMED") throw new Error(`EMIT_SUCCEEDED from ${state.status}`);
        const chain = { tx_hash: state.txHash.toLowerCase(), block_number: state.blockNumber.toString(), wallet: facts.wallet, amount_wei: facts.amountWei };
        const event =
          facts.kind === "mint"
            ? newEvent("cashback.minted", { entry_id: facts.entryId, mint_id: facts.chainId, ...chain }, opts)
            : newEvent("cashback.clawed_back", { refund_id: facts.id, entry_id: facts.entryId, ref_id: facts.chainId, ...chain }, opts);
        return outboxRecord(event, { aggregateId, headers });
      }
      case "EMIT_FAILED": {
        const failure = { reason: effect.reason, message: effect.message.slice(0, 1000) };
        const event =
          facts.kind === "mint"
            ? newEvent("cashback.mint_failed", { entry_id: facts.entryId, ...failure }, opts)
            : newEvent("cashback.clawback_failed", { refund_id: facts.id, entry_id: facts.entryId, ...failure }, opts);
        return outboxRecord(event, { aggregateId, headers });
      }
      case "DEAD_LETTER":
        return deadLetterRecord({
          envelope: facts.sourceEvent,
          subject: facts.sourceSubject,
          seq: facts.sourceSeq,
          headers: facts.sourceHeaders,
          reason: effect.reason,
          message: effect.message,
          aggregateId: `dlq:${facts.entryId}`,
        });
    }
  });
}

/** A dead letter written through the outbox: the source event as it came, with the DLQ headers. */
export function deadLetterRecord(opts: {
  envelope: Envelope;
  subject: string;
  seq: string;
  headers: Record<string, string>;
  reason: string;
  message: string;
  aggregateId: string;
}): OutboxRecord {
  return {
    // Its own id (the relay's msgID): the same event may be dead-lettered again after a replay.
    id: randomUUID(),
    subject: deadLetterSubject(opts.subject),
    aggregateId: opts.aggregateId,
    payload: opts.envelope,
    headers: {
      ...opts.headers,
      [DLQ_HEADERS.reason]: dlqReason(opts.reason, opts.message),
      [DLQ_HEADERS.subject]: opts.subject,
      [DLQ_HEADERS.stream]: STREAMS.cashback.name,
      [DLQ_HEADERS.sequence]: opts.seq,
    },
  };
}

/** "CODE: short message", on one line (a header value). */
export function dlqReason(reason: string, message: string): string {
  return `${reason}: ${message}`.replace(/[\r\n]+/g, " ").slice(0, 500);
}
