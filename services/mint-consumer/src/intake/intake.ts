import { setTimeout as sleep } from "node:timers/promises";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { decodeEvent, DLQ_HEADERS, REPLAY_HEADER, STREAMS } from "@cashback/events";
import type { Logger } from "@cashback/runtime";
import { context, contextFrom } from "@cashback/telemetry";
import type { Metrics } from "../metrics.ts";
import type { IntakeItem, IntakeResult, RequestStore } from "../requests/store.ts";
import { plainHeaders, publishDeadLetter } from "./dead-letters.ts";

/** The durable pull consumer on CASHBACK (docs/events.md). */
export const DURABLE_NAME = "mint-consumer";

export interface DurableSettings {
  maxDeliver: number;
  ackWaitMs: number;
  maxAckPending: number;
}

/** Creates the durable consumer, or brings an existing one's limits to these settings. Idempotent. */
export async function ensureDurable(jsm: JetStreamManager, settings: DurableSettings): Promise<void> {
  const limits = { max_deliver: settings.maxDeliver, ack_wait: nanos(settings.ackWaitMs), max_ack_pending: settings.maxAckPending };
  const existing = await jsm.consumers.info(STREAMS.cashback.name, DURABLE_NAME).catch((err: unknown) => {
    if (/not found/i.test(String(err))) return undefined;
    throw err;
  });
  if (!existing) {
    await jsm.consumers.add(STREAMS.cashback.name, {
      durable_name: DURABLE_NAME,
      description: "mint-consumer: cashback to mint, refunds to claw back",
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...limits,
    });
  } else if (existing.config.max_deliver !== limits.max_deliver || existing.config.ack_wait !== limits.ack_wait || existing.config.max_ack_pending !== limits.max_ack_pending) {
    await jsm.consumers.update(STREAMS.cashback.name, DURABLE_NAME, limits);
  }
}

export interface IntakeDeps {
  nats: NatsConnection;
  store: RequestStore;
  logger: Logger;
  metrics: Metrics;
  settings: DurableSettings & { fetchBatch: number };
  /** Called after a batch created or revived requests (wakes the dispatcher). */
  onRecorded?: (result: IntakeResult) => void;
}

const CONSUMED = new Set<string>(STREAMS.cashback.subjects);

/**
 * Takes events from CASHBACK and records them: a durable pull consumer with explicit acks.
 *
 * - Whatever has arrived is taken as one batch (up to fetchBatch) and recorded in ONE database
 *   transaction (processed_events + the requests); the messages are acked only after the commit,
 *   so a crash before it means a redelivery, which the event ids make a no-op.
 * - A message that is not a valid event, or is one this service does not consume, goes to
 *   CASHBACK_DLQ with the reason and is then acked: never redelivered forever, never a crash.
 * - While the database is down the batch is kept, and it and the buffered messages are kept alive
 *   with in-progress acks, so an outage does not burn their deliveries (max_deliver).
 * - A message on its last allowed delivery is dead-lettered (MAX_DELIVERIES) instead of being
 *   tried once more, so JetStream never drops one silently.
 */
export class Intake {
  private readonly deps: IntakeDeps;
  private readonly js: JetStreamClient;
  private running = false;
  private messages?: ConsumerMessages;
  private buffer: JsMsg[] = [];
  private wake?: () => void;
  private pullLoop?: Promise<void>;
  private processLoop?: Promise<void>;

  constructor(deps: IntakeDeps) {
    this.deps = deps;
    this.js = jetstream(deps.nats);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.pullLoop = this.pull();
    this.processLoop = this.process();
  }

  /** Stops taking messages; the batch under way is finished, buffered ones are handed back (nak). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await Promise.race([this.messages?.close().catch(() => {}), sleep(5_000)]);
    this.wake?.();
    await this.pullLoop;
    await this.processLoop;
    for (const m of this.buffer.splice(0)) m.nak();
  }

  private async pull(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        const consumer = await this.js.consumers.get(STREAMS.cashback.name, DURABLE_NAME);
        const messages = await consumer.consume({ max_messages: Math.max(this.deps.settings.fetchBatch * 2, 64) });
        if (!this.running) {
          // Stopped while it was being set up (closing one never iterated does not settle).
          void messages.close().catch(() => {});
          break;
        }
        this.messages = messages;
        void this.watch(messages);
        failures = 0;
        for await (const m of messages) {
          this.buffer.push(m);
          this.wake?.();
        }
        // The iterator ended by itself (consumer deleted, say): start over, without spinning.
        if (this.running) await sleep(500);
      } catch (err) {
        if (!this.running) break;
        failures++;
        this.deps.logger[failures === 1 ? "warn" : "debug"]({ err: String(err), failures }, "JetStream consume failed; retrying");
        await sleep(Math.min(5_000, 200 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (s.type === "consumer_not_found" || s.type === "consumer_deleted" || s.type === "stream_not_found") {
        this.deps.logger.warn({ status: s.type }, "JetStream consumer lost; recreating it");
        const jsm = await jetstreamManager(this.deps.nats).catch(() => undefined);
        await jsm?.streams.info(STREAMS.cashback.name).then(() => ensureDurable(jsm, this.deps.settings)).catch(() => {});
      }
    }
  }

  private async process(): Promise<void> {
    while (this.running) {
      if (this.buffer.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const batch = this.buffer.splice(0, this.deps.settings.fetchBatch);
      try {
        await this.handle(batch);
      } catch (err) {
        // Only a stop ends up here (see until()); hand the batch back.
        for (const m of batch) m.nak();
        if (this.running) this.deps.logger.error({ err }, "intake batch abandoned");
      }
    }
  }

  /** One batch: sort out dead letters, record the rest in one transaction, then ack all. */
  async handle(batch: JsMsg[]): Promise<void> {
    const { metrics, settings } = this.deps;
    const items: IntakeItem[] = [];
    const dead: { msg: JsMsg; reason: string; message: string }[] = [];
    for (const msg of batch) {
      if (msg.info.deliveryCount > 1) metrics.redeliveries.inc();
      if (msg.info.deliveryCount >= settings.maxDeliver) {
        dead.push({ msg, reason: "MAX_DELIVERIES", message: `delivered ${msg.info.deliveryCount} times without being processed` });
        continue;
      }
      const decoded = decodeEvent(msg.data);
      if (!decoded.ok) {
        dead.push({ msg, reason: decoded.reason, message: decoded.message });
        continue;
      }
      const event = decoded.event;
      if (event.type !== "cashback.accrued" && event.type !== "cashback.clawback_requested") {
        dead.push({ msg, reason: "UNEXPECTED_TYPE", message: `${event.type} is not consumed by mint-consumer` });
        continue;
      }
      if (!CONSUMED.has(msg.subject) || event.type !== msg.subject) {
        dead.push({ msg, reason: "UNEXPECTED_TYPE", message: `${event.type} event on subject ${msg.subject}` });
        continue;
      }
      const replay = msg.headers?.get(REPLAY_HEADER) ?? "";
      if (replay !== "" && !/^[1-9][0-9]{0,15}$/.test(replay)) {
        dead.push({ msg, reason: "INVALID_ENVELOPE", message: `${REPLAY_HEADER} must be a dead-letter sequence, got "${replay.slice(0, 40)}"` });
        continue;
      }
      const headers = plainHeaders(msg.headers, { dropDlq: true });
      // Kept for a later dead letter of the request (RETRIES_EXHAUSTED, a refusal).
      headers[DLQ_HEADERS.deliveries] = String(msg.info.deliveryCount);
      items.push({ event, replayOf: replay ? Number(replay) : 0, subject: msg.subject, streamSeq: msg.info.streamSequence, headers });
    }

    if (items.length > 0) {
      const result = await this.until("record events", batch, () => this.deps.store.recordEvents(items));
      metrics.events.inc({ outcome: "recorded" }, result.fresh);
      metrics.events.inc({ outcome: "duplicate" }, result.duplicates);
      if (result.conflicts) metrics.deadLetters.inc({ reason: "CONFLICTING_DUPLICATE" }, result.conflicts);
      if (result.created > 0 || result.revived > 0) this.deps.onRecorded?.(result);
      // At debug, a line per event in its own trace: when the consumer took it (latency hunting).
      if (this.deps.logger.isLevelEnabled("debug")) {
        for (const item of items) {
          context.with(contextFrom(item.headers.traceparent, context.active()), () =>
            this.deps.logger.debug({ eventId: item.event.id, type: item.event.type, seq: item.streamSeq }, "event recorded"),
          );
        }
      }
    }
    for (const d of dead) {
      this.deps.logger.warn({ subject: d.msg.subject, seq: d.msg.info.streamSequence, reason: d.reason, message: d.message }, "dead-lettering a message");
      await this.until("dead-letter a message", batch, () => publishDeadLetter(this.js, d.msg, d.reason, d.message));
      metrics.events.inc({ outcome: "dead_lettered" });
      metrics.deadLetters.inc({ reason: d.reason });
    }
    for (const m of batch) m.ack();
  }

  /**
   * Retries `work` (a database or JetStream outage) with backoff until it succeeds or the intake
   * stops, keeping this batch and the buffered messages alive meanwhile.
   */
  private async until<T>(what: string, batch: JsMsg[], work: () => Promise<T>): Promise<T> {
    let failures = 0;
    let lastKeepAlive = Date.now();
    for (;;) {
      try {
        return await work();
      } catch (err) {
        if (!this.running) throw err;
        failures++;
        this.deps.logger[failures === 1 || failures % 20 === 0 ? "warn" : "debug"]({ err: String(err), failures }, `intake could not ${what}; retrying`);
        if (Date.now() - lastKeepAlive > this.deps.settings.ackWaitMs / 3) {
          for (const m of [...batch, ...this.buffer]) m.working();
          lastKeepAlive = Date.now();
        }
        await sleep(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)));
      }
    }
  }
}
