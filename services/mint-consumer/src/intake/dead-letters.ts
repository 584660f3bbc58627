import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { deadLetterSubject, DLQ_HEADERS, REPLAY_HEADER } from "@cashback/events";
import { dlqReason } from "../requests/results.ts";

/** Headers JetStream sets or reads itself; never carried over to another publish. */
const TRANSPORT_HEADERS = new Set(["nats-msg-id", "nats-expected-stream", "nats-expected-last-sequence", "nats-expected-last-msg-id", "nats-expected-last-subject-sequence"]);
const DLQ_HEADER_NAMES = new Set([...Object.values(DLQ_HEADERS), REPLAY_HEADER].map((h) => h.toLowerCase()));

/** A message's own headers as a plain object, without JetStream's transport headers. */
export function plainHeaders(h: MsgHdrs | undefined, opts: { dropDlq?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const key of h.keys()) {
    const lower = key.toLowerCase();
    if (TRANSPORT_HEADERS.has(lower)) continue;
    if (opts.dropDlq && DLQ_HEADER_NAMES.has(lower)) continue;
    out[key] = h.get(key);
  }
  return out;
}

export function toNatsHeaders(values: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(values)) h.set(k, v);
  return h;
}

/**
 * Puts a message the consumer can not process on CASHBACK_DLQ as it came (body and headers),
 * with the reason, and waits for JetStream's ack; the caller acks the original only then. The
 * msgID is the original's stream sequence, so dead-lettering a redelivery again within the
 * duplicate window adds nothing.
 */
export async function publishDeadLetter(js: JetStreamClient, msg: JsMsg, reason: string, message: string): Promise<void> {
  const h = toNatsHeaders({
    ...plainHeaders(msg.headers, { dropDlq: true }),
    [DLQ_HEADERS.reason]: dlqReason(reason, message),
    [DLQ_HEADERS.subject]: msg.subject,
    [DLQ_HEADERS.stream]: msg.info.stream,
    [DLQ_HEADERS.sequence]: String(msg.info.streamSequence),
    [DLQ_HEADERS.deliveries]: String(msg.info.deliveryCount),
  });
  await js.publish(deadLetterSubject(msg.subject), msg.data, { msgID: `${msg.info.stream}:${msg.info.streamSequence}`, headers: h });
}
