import { jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** Every message in a stream, in order (an ephemeral ordered consumer; the stream is not changed). */
export async function streamMessages(nc: NatsConnection, stream: string): Promise<JsMsg[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0) return [];
  const consumer = await jetstream(nc).consumers.get(stream);
  const out: JsMsg[] = [];
  const messages = await consumer.fetch({ max_messages: info.state.messages, expires: 10_000 });
  for await (const m of messages) {
    out.push(m);
    if (out.length === info.state.messages) break;
  }
  return out;
}
