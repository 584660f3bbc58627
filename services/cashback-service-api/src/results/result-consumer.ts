import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders, nanos, type NatsConnection } from "@nats-io/transport-node";
import { deadLetterSubject, DLQ_HEADERS, STREAMS } from "@cashback/events";
import { backoffMs } from "@cashback/outbox";
import type { Logger } from "pino";
import type { Metrics } from "../metrics.ts";
import type { HandleOutcome, ResultHandler } from "./result-handler.ts";
import { context, contextFrom } from "@cashback/telemetry";

export const RESULTS_DURABLE = "cashback-service-api";
/** A message failing this many times for a reason other than a bad message is parked too. */
const MAX_DELIVERIES = 30;
/**
 * Result events are applied in batches, each ONE transaction on the pg pool (result-batch.ts):
 * one commit (one WAL flush) and a handful of set-based statements for up to RESULT_BATCH_MAX
 * events, where one Prisma transaction per event cost the API most of its CPU and kept events
 * waiting seconds in front of it (bench:pipeline). Up to RESULT_BATCHES batches run at once (on
 * distinct entries they do not wait on each other; shared ones are locked in id order). A batch
 * that can not be applied whole (a poison event in it, a database error) is applied one by one,
 * as before, so one bad event never holds back the others.
 */
export const RESULT_BATCH_MAX = 64;
export const RESULT_BATCHES = 4;
/** Connections the result consumer needs on its pg pool. */
export const RESULT_POOL_SIZE = RESULT_BATCHES;

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

  constructor(private readonly deps: { nats: NatsConnection; handler: ResultHandler; logger: Logger; metrics: Metrics; batchMax?: number; batches?: number }) {}

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
        const batchMax = this.deps.batchMax ?? RESULT_BATCH_MAX;
        const batches = this.deps.batches ?? RESULT_BATCHES;
        const waiting: JsMsg[] = [];
        const inFlight = new Set<Promise<void>>();
        let flushQueued = false;
        const flush = () => {
          flushQueued = false;
          while (waiting.length > 0 && inFlight.size < batches) {
            const p: Promise<void> = this.processBatch(waiting.splice(0, batchMax)).finally(() => {
              inFlight.delete(p);
              flush();
            });
            inFlight.add(p);
          }
        };
        try {
          for await (const m of this.messages) {
            waiting.push(m);
            // After the messages already received (delivered to this loop in microtasks): a batch
            // takes all of them, not just the first.
            if (!flushQueued) {
              flushQueued = true;
              setImmediate(flush);
            }
            while (waiting.length >= batchMax * batches && inFlight.size >= batches) await Promise.race(inFlight);
            if (!this.running) break;
          }
        } finally {
          // each received message is acked or naked before we re-attach or stop
          flush();
          while (inFlight.size > 0 || waiting.length > 0) {
            await Promise.allSettled(inFlight);
            flush();
          }
        }
      } catch (err) {
        if (!this.running) break;
        failures++;
        (failures === 1 ? logger.warn.bind(logger) : logger.debug.bind(logger))({ err: String(err), failures }, "result consumer interrupted; re-attaching");
      }
      if (this.running) await sleep(backoffMs(failures + 1));
    }
  }

  /**
   * A batch in one transaction, then each message settled in order (dead letters, metrics, ack
   * after the commit); one by one when it can not be applied whole.
   */
  private async processBatch(batch: JsMsg[]): Promise<void> {
    const { handler, logger } = this.deps;
    let outcomes: HandleOutcome[] | undefined;
    try {
      outcomes = await handler.handleBatch(batch.map((m) => m.data));
    } catch (err) {
      logger.warn({ err: String(err), size: batch.length }, "result batch not applied; applying its events one by one");
    }
    if (!outcomes) {
      for (const m of batch) await this.process(m);
      return;
    }
    const counts: Record<string, number> = {};
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      const result = outcomes[i]!;
      counts[result.outcome] = (counts[result.outcome] ?? 0) + 1;
      await this.inTrace(m, () => this.settle(m, result));
    }
    logger.info({ size: batch.length, ...counts, traceIds: batch.map(traceIdOf).filter(Boolean) }, "result events applied to the ledger");
  }

  /** Each event is handled in the trace it carries (the purchase's): its log lines name it. */
  private inTrace<T>(m: JsMsg, fn: () => Promise<T>): Promise<T> {
    return context.with(contextFrom(m.headers?.get("traceparent") || undefined, context.active()), fn);
  }

  private process(m: JsMsg): Promise<void> {
    return this.inTrace(m, () => this.settle(m));
  }

  /** Applies one message (unless its outcome is given, from a batch), then acks or naks it. */
  private async settle(m: JsMsg, given?: HandleOutcome): Promise<void> {
    const { handler, logger, metrics } = this.deps;
    try {
      const result = given ?? (await handler.handle(m.data));
      // Per event at debug (a line each cost CPU at pipeline rates); each batch has its info line.
      if (result.outcome === "applied" && logger.isLevelEnabled("debug")) logger.debug({ type: result.type, seq: m.seq }, "result event applied to the ledger");
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

/** The trace id of a message's traceparent (00-<trace id>-<span id>-<flags>), if it has one. */
function traceIdOf(m: JsMsg): string | undefined {
  return m.headers?.get("traceparent")?.split("-")[1] || undefined;
}
