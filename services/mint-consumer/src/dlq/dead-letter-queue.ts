import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager, type StoredMsg } from "@nats-io/jetstream";
import { DLQ_HEADERS, REPLAY_HEADER, STREAMS } from "@cashback/events";
import { plainHeaders, toNatsHeaders } from "../intake/dead-letters.ts";

/** One message in CASHBACK_DLQ, as `npm run dlq -- list` shows it. */
export interface DeadLetter {
  seq: number;
  time: Date;
  /** Where it came from and where a replay sends it, e.g. cashback.accrued. */
  originalSubject: string;
  /** "CODE: message". */
  reason: string;
  originalSeq: string;
  deliveries: string;
  /** From the body when it is an event: its id, type and the entry/refund it concerns. */
  eventId?: string;
  eventType?: string;
  subjectId?: string;
}

const DLQ = STREAMS.deadLetters.name;
/** Subjects a replay may publish to: the streams this project owns. */
const REPLAYABLE = new Set<string>([...STREAMS.cashback.subjects, ...STREAMS.results.subjects]);

export async function listDeadLetters(nc: NatsConnection): Promise<DeadLetter[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(DLQ).catch(() => undefined);
  if (!info || info.state.messages === 0) return [];
  const out: DeadLetter[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await getMessage(jsm, seq);
    if (m) out.push(describe(m));
  }
  return out;
}

/**
 * Re-publishes one dead letter to its original subject, body unchanged (the same event id), with
 * `Cashback-Replay-Of: <dlq seq>`, then deletes it from the dead-letter stream. The consumer
 * processes each replay once (processed_events is keyed on event id and replay); a replay never
 * mints twice because the mint's key comes from the ledger entry, not from the message. If it
 * fails again it comes back to the dead-letter stream as a new entry.
 */
export async function replayDeadLetter(nc: NatsConnection, seq: number): Promise<{ seq: number; subject: string; streamSeq: number }> {
  const jsm = await jetstreamManager(nc);
  const m = await getMessage(jsm, seq);
  if (!m) throw new Error(`no dead letter ${seq} in ${DLQ}`);
  const letter = describe(m);
  if (!REPLAYABLE.has(letter.originalSubject)) throw new Error(`dead letter ${seq} came from "${letter.originalSubject}", which no stream of ours takes`);
  const headers = toNatsHeaders({ ...plainHeaders(m.header, { dropDlq: true }), [REPLAY_HEADER]: String(seq) });
  // msgID per dead letter: replaying the same one twice within the duplicate window is one message.
  const ack = await jetstream(nc).publish(letter.originalSubject, m.data, { msgID: `replay:${DLQ}:${seq}`, headers });
  await jsm.streams.deleteMessage(DLQ, seq, false);
  return { seq, subject: letter.originalSubject, streamSeq: ack.seq };
}

/** Replays every dead letter there is now (not those that come back while it runs). */
export async function replayAllDeadLetters(nc: NatsConnection): Promise<{ replayed: { seq: number; subject: string; streamSeq: number }[]; failed: { seq: number; error: string }[] }> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(DLQ).catch(() => undefined);
  const replayed: { seq: number; subject: string; streamSeq: number }[] = [];
  const failed: { seq: number; error: string }[] = [];
  if (!info || info.state.messages === 0) return { replayed, failed };
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    if (!(await getMessage(jsm, seq))) continue;
    try {
      replayed.push(await replayDeadLetter(nc, seq));
    } catch (err) {
      failed.push({ seq, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return { replayed, failed };
}

async function getMessage(jsm: JetStreamManager, seq: number): Promise<StoredMsg | null> {
  return jsm.streams.getMessage(DLQ, { seq }).catch((err: unknown) => {
    if (/no message found|not found/i.test(String(err))) return null;
    throw err;
  });
}

function describe(m: StoredMsg): DeadLetter {
  const h = (name: string) => (m.header?.has(name) ? m.header.get(name) : "");
  const letter: DeadLetter = {
    seq: m.seq,
    time: m.time,
    originalSubject: h(DLQ_HEADERS.subject) || m.subject.replace(/^dlq\./, ""),
    reason: h(DLQ_HEADERS.reason),
    originalSeq: h(DLQ_HEADERS.sequence),
    deliveries: h(DLQ_HEADERS.deliveries),
  };
  try {
    const body = JSON.parse(Buffer.from(m.data).toString("utf8")) as { id?: unknown; type?: unknown; payload?: { entry_id?: unknown; refund_id?: unknown } };
    if (typeof body.id === "string") letter.eventId = body.id;
    if (typeof body.type === "string") letter.eventType = body.type;
    const id = body.payload?.refund_id ?? body.payload?.entry_id;
    if (typeof id === "string") letter.subjectId = id;
  } catch {
    // not JSON: shown without event fields
  }
  return letter;
}
