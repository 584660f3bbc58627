import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { encodeEvent, subjectOf, type Envelope } from "@cashback/events";

export interface StreamMessage {
  seq: number;
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

/** Every message a stream holds, in order (empty when the stream does not exist). */
export async function streamMessages(nc: NatsConnection, stream: string): Promise<StreamMessage[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream).catch(() => undefined);
  if (!info || info.state.messages === 0) return [];
  const out: StreamMessage[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (!m) continue; // deleted
    const headers: Record<string, string> = {};
    if (m.header) for (const k of m.header.keys()) headers[k] = m.header.get(k);
    const text = Buffer.from(m.data).toString("utf8");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    out.push({ seq: m.seq, subject: m.subject, headers, data: m.data, text, json });
  }
  return out;
}

/**
 * Publishes an event to JetStream as a producer's outbox relay would (msgID = event id unless
 * another is given, e.g. to publish the same event twice past the duplicate window).
 */
export async function publishEvent(nc: NatsConnection, event: Envelope, opts: { msgID?: string; headers?: Record<string, string>; subject?: string } = {}) {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(opts.headers ?? {})) h.set(k, v);
  return jetstream(nc).publish(opts.subject ?? subjectOf(event.type), encodeEvent(event), { msgID: opts.msgID ?? event.id, headers: h });
}

/** Publishes raw bytes (a malformed message) to a subject. */
export async function publishRaw(nc: NatsConnection, subject: string, body: string | Uint8Array, msgID?: string) {
  return jetstream(nc).publish(subject, typeof body === "string" ? Buffer.from(body) : body, msgID ? { msgID } : undefined);
}
