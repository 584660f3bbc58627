import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders, nanos, type NatsConnection } from "@nats-io/transport-node";
import { deadLetterSubject, DLQ_HEADERS, STREAMS } from "@cashback/events";
import { backoffMs } from "@cashback/outbox";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.ts";
import type { ResultHandler } from "./result-handler.ts";
import { context, contextFrom } from "@cashback/telemetry";

export const RESULTS_DURABLE = "cashback-service-api";
/** A message failing this many times for a reason other than a bad message is parked too. */
const MAX_DELIVERIES = 30;
/**
 * Result events applied at once. Each is one transaction that waits for its own commit (WAL
 * flush); one at a time, that capped the whole pipeline at the rate of serial commits on a busy
 * Postgres (bench:pipeline: events waited seconds in front of an apply of a few ms). Concurrent
 * commits share flushes. Events are independent: each locks only its own entry, and the ledger
 * transition is order-insensitive (a success after a failure wins, a failure after a success is
 * ignored). The Prisma pool is sized for it (app.ts).
 */
export const RESULT_CONCURRENCY = 16;

/**
 * The durable pull consumer of CASHBACK_RESULTS (explicit ack). Each message is applied by
 * ResultHandler, then acked; a database failure naks it with a growing delay (redelivered later,
 * nothing lost); a message that can not be applied is dead-lettered to CASHBACK_DLQ (subject
 * dlq.<subject>, with the Cashback-Dlq-* headers of docs/events.md) and acked. It survives NATS
 * outages (the client reconnects; the loop re-attaches) and never throws.
 */
export class ResultConsumer {
  private running = false;
  private loop?: Promise<void>;
  private messages?: ConsumerMessages;

  constructor(private readonly deps: { nats: NatsConnection; handler: ResultHandler; logger: Logger; metrics: Metrics; concurrency?: number }) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.messages?.close().catch(() => {});
    await this.loop;
  }

  private async run(): Promise<void> {
    const { nats, logger } = this.deps;
    let failures = 0;
    while (this.running) {
      try {
        const jsm = await jetstreamManager(nats);
        await jsm.consumers.add(STREAMS.results.name, {
          durable_name: RESULTS_DURABLE,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(30_000),
          max_deliver: -1,
          // no subject filter: the stream holds only result events (and filter_subjects needs
          // nats-server 2.10, Debian ships 2.9)
        });
        const consumer = await jetstream(nats).consumers.get(STREAMS.results.name, RESULTS_DURABLE);
        this.messages = await consumer.consume({ max_messages: 100 });
        if (!this.running) await this.messages.close();
        failures = 0;
        const limit = this.deps.concurrency ?? RESULT_CONCURRENCY;
        const inFlight = new Set<Promise<void>>();
        try {
          for await (const m of this.messages) {
            const p: Promise<void> = this.process(m).finally(() => inFlight.delete(p));
            inFlight.add(p);
            if (inFlight.size >= limit) await Promise.race(inFlight);
            if (!this.running) break;
          }
        } finally {
          await Promise.allSettled(inFlight); // each is acked or naked before we re-attach or stop
        }
      } catch (err) {
        if (!this.running) break;
        failures++;
        (failures === 1 ? logger.warn.bind(logger) : logger.debug.bind(logger))({ err: String(err), failures }, "result consumer interrupted; re-attaching");
      }
      if (this.running) await sleep(backoffMs(failures + 1));
    }
  }

  /** Each event is handled in the trace it carries (the purchase's): its log lines name it. */
  private process(m: JsMsg): Promise<void> {
    return context.with(contextFrom(m.headers?.get("traceparent") || undefined, context.active()), () => this.processInTrace(m));
  }

  private async processInTrace(m: JsMsg): Promise<void> {
    const { handler, logger, metrics } = this.deps;
    try {
      const result = await handler.handle(m.data);
      if (result.outcome === "applied") logger.info({ type: result.type, seq: m.seq }, "result event applied to the ledger");
      if (result.outcome === "parked") {
        logger.error({ subject: m.subject, seq: m.seq, reason: result.reason, message: result.message }, "result event parked in the dead-letter stream");
        await this.deadLetter(m, result.reason, result.message);
      }
      metrics.resultEvents.inc({ type: result.type, outcome: result.outcome });
      m.ack();
    } catch (err) {
      const deliveries = m.info.deliveryCount;
      if (deliveries >= MAX_DELIVERIES) {
        logger.error({ err: String(err), subject: m.subject, seq: m.seq, deliveries }, "result event failed too often; parking it");
        try {
          await this.deadLetter(m, "RETRIES_EXHAUSTED", String(err).slice(0, 300));
          metrics.resultEvents.inc({ type: m.subject, outcome: "parked" });
          m.ack();
          return;
        } catch {
          /* NATS is down too: nak below */
        }
      }
      logger.warn({ err: String(err), subject: m.subject, seq: m.seq, deliveries }, "result event not applied; will be redelivered");
      m.nak(Math.min(30_000, 500 * 2 ** Math.min(deliveries, 6)));
    }
  }

  private async deadLetter(m: JsMsg, reason: string, message: string): Promise<void> {
    const h = natsHeaders();
    for (const [k, values] of m.headers ?? []) for (const v of values) h.append(k, v);
    h.set(DLQ_HEADERS.reason, `${reason} ${message}`.slice(0, 1000));
    h.set(DLQ_HEADERS.subject, m.subject);
    h.set(DLQ_HEADERS.stream, STREAMS.results.name);
    h.set(DLQ_HEADERS.sequence, String(m.seq));
    h.set(DLQ_HEADERS.deliveries, String(m.info.deliveryCount));
    // msgID: one dead letter per stream message, however often it is redelivered
    await jetstream(this.deps.nats).publish(deadLetterSubject(m.subject), m.data, { headers: h, msgID: `${STREAMS.results.name}:${m.seq}` });
  }
}
