import type { EventType } from "./catalog.ts";

/**
 * The JetStream streams, as plain data (packages/outbox creates them idempotently at start).
 * An event's subject is its type. Dead letters keep the original subject under "dlq.".
 */
export interface StreamSpec {
  name: string;
  subjects: string[];
  description: string;
  /** JetStream's duplicate window for msgID (= event id) de-duplication, in ms. */
  duplicateWindowMs: number;
  /** How long messages are kept, in ms. */
  maxAgeMs: number;
}

const DAY = 24 * 60 * 60 * 1000;

export const STREAMS = {
  cashback: {
    name: "CASHBACK",
    subjects: ["cashback.accrued", "cashback.clawback_requested"],
    description: "cashback-service-api: cashback to mint, refunds to claw back",
    duplicateWindowMs: 10 * 60 * 1000,
    maxAgeMs: 7 * DAY,
  },
  results: {
    name: "CASHBACK_RESULTS",
    subjects: ["cashback.minted", "cashback.mint_failed", "cashback.clawed_back", "cashback.clawback_failed"],
    description: "mint-consumer: the outcome of each mint and clawback",
    duplicateWindowMs: 10 * 60 * 1000,
    maxAgeMs: 7 * DAY,
  },
  deadLetters: {
    name: "CASHBACK_DLQ",
    subjects: ["dlq.>"],
    description: "mint-consumer: messages it could not decode or process, with the reason (see `npm run dlq`)",
    duplicateWindowMs: 10 * 60 * 1000,
    maxAgeMs: 30 * DAY,
  },
} as const satisfies Record<string, StreamSpec>;

export function subjectOf(type: EventType): string {
  return type;
}

/** Where a message that could not be processed goes, keeping its subject for replay. */
export function deadLetterSubject(originalSubject: string): string {
  return `dlq.${originalSubject}`;
}

/** Headers on a dead letter (besides the original message's own). */
export const DLQ_HEADERS = {
  reason: "Cashback-Dlq-Reason",
  subject: "Cashback-Dlq-Subject",
  stream: "Cashback-Dlq-Stream",
  sequence: "Cashback-Dlq-Sequence",
  deliveries: "Cashback-Dlq-Deliveries",
} as const;

/**
 * On a message re-published from the dead-letter stream (`npm run dlq -- replay`): the dead
 * letter's sequence in CASHBACK_DLQ. The body is the original event, id unchanged; a reader
 * de-duplicates a replay on (event id, this value), so each replay is processed once, apart from
 * the original delivery.
 */
export const REPLAY_HEADER = "Cashback-Replay-Of";
