import { subjectOf, type Envelope } from "@cashback/events";

/** One row of `outbox_events` (sql/outbox_events.sql), in the shape of the Prisma model. */
export interface OutboxRecord {
  /** The event id: JetStream msgID and the readers' de-duplication key. */
  id: string;
  subject: string;
  /** Events with the same aggregate id are published in the order they were written. */
  aggregateId: string;
  /** The whole envelope, published as JSON. */
  payload: Envelope;
  /** NATS headers to publish with it (e.g. traceparent). */
  headers: Record<string, string>;
}

export function outboxRecord(event: Envelope, opts: { aggregateId: string; headers?: Record<string, string> }): OutboxRecord {
  return { id: event.id, subject: subjectOf(event.type), aggregateId: opts.aggregateId, payload: event, headers: opts.headers ?? {} };
}

/**
 * One INSERT for any number of records, for node-postgres (run it inside the transaction of the
 * state change). Parameters are sent as text; Postgres casts them.
 */
export function insertOutboxSql(records: readonly OutboxRecord[], table = "outbox_events"): { text: string; values: unknown[] } {
  if (records.length === 0) throw new Error("insertOutboxSql needs at least one record");
  const values: unknown[] = [];
  const rows = records.map((r) => {
    values.push(r.id, r.subject, r.aggregateId, JSON.stringify(r.payload), JSON.stringify(r.headers));
    const n = values.length;
    return `($${n - 4}::uuid, $${n - 3}, $${n - 2}, $${n - 1}::jsonb, $${n}::jsonb)`;
  });
  return { text: `INSERT INTO ${table} (id, subject, aggregate_id, payload, headers) VALUES ${rows.join(", ")}`, values };
}
