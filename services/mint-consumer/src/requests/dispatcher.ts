import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@cashback/runtime";
import { context, contextFrom, inSpan, SpanKind, trace, validTraceparent, type Tracer } from "@cashback/telemetry";
import type { AdapterCalls, AdapterWork } from "../adapter/adapter-calls.ts";
import type { Metrics } from "../metrics.ts";
import type { Kind, RequestEvent } from "./machine.ts";
import type { AppliedTransition, ClaimedRequest, RequestStore } from "./store.ts";

export interface DispatcherDeps {
  store: RequestStore;
  calls: AdapterCalls;
  logger: Logger;
  metrics: Metrics;
  /** Adapter calls in flight at once. */
  concurrency: number;
  /** Mints per call: > 1 sends MintBatch when several are due, 1 sends MintToken each. */
  mintBatchMax: number;
  /** How long a claim holds requests (longer than one adapter call). */
  leaseMs: number;
  /** Fallback poll for due work (another instance's, or retries falling due). */
  pollIntervalMs: number;
  /** GetTransaction calls per reconciliation job. */
  reconcileBatch?: number;
  /** Spans of the adapter calls (default: the process's tracer provider). */
  tracer?: Tracer;
}

type Source = { kind: Kind; status: "PENDING" | "SUBMITTED" };
interface Job extends Source {
  items: ClaimedRequest[];
}

/** Each kind of work, in turn, so a backlog of one does not starve the others. */
const SOURCES: Source[] = [
  { kind: "mint", status: "PENDING" },
  { kind: "mint", status: "SUBMITTED" },
  { kind: "clawback", status: "PENDING" },
  { kind: "clawback", status: "SUBMITTED" },
];

/**
 * Drives requests through the adapter: claims due work from the store (a lease, so several
 * workers or instances never send the same request at once), calls the adapter, and hands each
 * answer to the store, which runs the state machine. Up to `concurrency` calls run at once;
 * whatever is due when a slot frees up goes in one MintBatch, so batches grow with the backlog.
 * SUBMITTED requests are settled with GetTransaction (reconciliation) when due; WAITING
 * clawbacks are released when their mint settles.
 */
export class Dispatcher {
  private readonly deps: Required<DispatcherDeps>;
  private running = false;
  private loop?: Promise<void>;
  private readonly active = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private wakeUp?: () => void;
  private woken = false;
  private turn = 0;

  constructor(deps: DispatcherDeps) {
    this.deps = { reconcileBatch: 20, tracer: trace.getTracer("mint-consumer"), ...deps };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** New or revived work: look now rather than at the next poll. */
  nudge(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Stops claiming; calls under way get `graceMs` to finish, then are aborted (their leases expire). */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.nudge();
    // The grace period starts now, not after the loop ends: a claim stuck on the database must
    // not hold calls under way past it.
    const timer = setTimeout(() => this.abort.abort(), graceMs);
    await this.loop;
    await Promise.allSettled([...this.active]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.woken = false;
      let claimed = 0;
      try {
        claimed += await this.release();
        while (this.running && this.active.size < this.deps.concurrency) {
          const job = await this.claimNext();
          if (!job) break;
          claimed++;
          const p = this.execute(job).finally(() => {
            this.active.delete(p);
            this.nudge();
          });
          this.active.add(p);
        }
        failures = 0;
      } catch (err) {
        failures++;
        this.deps.logger[failures === 1 || failures % 20 === 0 ? "warn" : "debug"]({ err: String(err), failures }, "dispatcher could not claim work; retrying");
        await sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)));
        continue;
      }
      if (claimed > 0 && this.active.size < this.deps.concurrency) continue; // there may be more
      await this.idle();
    }
  }

  /** Sleeps until nudged, or until the next request falls due (at most the poll interval). */
  private async idle(): Promise<void> {
    if (this.woken || !this.running) return;
    let ms = this.deps.pollIntervalMs;
    if (this.active.size < this.deps.concurrency) {
      const due = await this.deps.store.nextDueAt().catch(() => undefined);
      if (due !== undefined) ms = Math.max(0, Math.min(ms, due - Date.now()));
    }
    if (this.woken || ms === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
    this.wakeUp = undefined;
  }

  private async claimNext(): Promise<Job | undefined> {
    const { store, mintBatchMax, reconcileBatch, leaseMs } = this.deps;
    for (let i = 0; i < SOURCES.length; i++) {
      const source = SOURCES[(this.turn + i) % SOURCES.length]!;
      const limit = source.status === "SUBMITTED" ? reconcileBatch : source.kind === "mint" ? mintBatchMax : 1;
      const items = await store.claim(source.kind, source.status, limit, leaseMs);
      if (items.length > 0) {
        this.turn = (this.turn + i + 1) % SOURCES.length;
        return { ...source, items };
      }
    }
    return undefined;
  }

  /** Clawbacks whose mint settled: no adapter call, just their next state. */
  private async release(): Promise<number> {
    const released = await this.deps.store.releasable(200);
    if (released.length === 0) return 0;
    const applied = await this.deps.store.apply("clawback", released);
    this.record("clawback", applied);
    return applied.length;
  }

  private async execute(job: Job): Promise<void> {
    const { calls, metrics } = this.deps;
    const signal = this.abort.signal;
    const { tracer } = this.deps;
    // Each call runs in a span of the trace its event came with (a batch: the first's, linking
    // the others), so the traceparent the adapter receives continues the purchase's trace.
    const traced = <T>(name: string, items: ClaimedRequest[], fn: () => Promise<T>) =>
      inSpan(tracer, name, { kind: SpanKind.CLIENT, parent: items[0]?.traceparent, links: linksOf(items.slice(1)), attributes: { "cashback.requests": items.length } }, fn);
    let events: Map<string, RequestEvent>;
    try {
      if (job.status === "SUBMITTED") {
        const answers = await Promise.all(job.items.map((item) => traced("GetTransaction", [item], async () => [item.id, await calls.status(item.idempotencyKey, signal)] as const)));
        events = new Map(answers);
      } else if (job.kind === "mint") {
        metrics.batchSize.observe(job.items.length);
        events = await traced(job.items.length > 1 ? "MintBatch" : "MintToken", job.items, () => calls.mint(job.items.map((i) => toWork("mint", i)), signal));
      } else {
        const item = job.items[0]!;
        events = new Map([[item.id, await traced("Clawback", [item], () => calls.clawback(toWork("clawback", item), signal))]]);
      }
    } catch (err) {
      // The calls never throw; this is a bug. The leases expire and the requests are retried.
      this.deps.logger.error({ err }, "adapter call failed unexpectedly");
      return;
    }
    if (signal.aborted) {
      // Shutting down: the answers are cut short. Hand the requests back at once (another
      // instance takes them now); if that fails too, their leases expire.
      await this.deps.store.handBack(job.kind, job.items).catch((err: unknown) => this.deps.logger.warn({ err: String(err) }, "could not hand back requests; their lease will expire"));
      return;
    }
    const outcomes = job.items.map((item) => ({ id: item.id, event: events.get(item.id)! }));
    // The adapter's answer is worth keeping: retry the write through a database blip.
    for (let failures = 0; ; failures++) {
      try {
        this.record(job.kind, await this.deps.store.apply(job.kind, outcomes), job.items);
        return;
      } catch (err) {
        if (!this.running || failures >= 20) {
          this.deps.logger.warn({ err: String(err), kind: job.kind, requests: job.items.length }, "could not record the adapter's answers; the requests will be asked again");
          return;
        }
        await sleep(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  private record(kind: Kind, applied: AppliedTransition[], items: ClaimedRequest[] = []): void {
    const { metrics, logger } = this.deps;
    const traces = new Map(items.map((i) => [i.id, i.traceparent]));
    let settled = false;
    let confirmed = 0;
    let failed = 0;
    const debug = logger.isLevelEnabled("debug");
    for (const t of applied) {
      metrics.transitions.inc({ kind, from: t.from, to: t.to });
      // Logged in the request's own trace: its line carries the purchase's trace id.
      const inTrace = (log: () => void) => context.with(contextFrom(traces.get(t.id), context.active()), log);
      if (t.to === "CONFIRMED") {
        metrics.mintLatency.observe({ kind }, (Date.now() - t.createdAt.getTime()) / 1000);
        settled = true;
        confirmed++;
        // Per request at debug (a line each cost CPU at pipeline rates); the round has its info line.
        if (debug) inTrace(() => logger.debug({ kind, id: t.id, from: t.from }, `${kind} confirmed`));
      }
      if (t.to === "FAILED" && t.problem) {
        settled = true;
        failed++;
        if (t.problem.deadLettered) metrics.deadLetters.inc({ reason: t.problem.reason });
        const problem = t.problem;
        inTrace(() => logger.warn({ kind, id: t.id, reason: problem.reason, message: problem.message, deadLettered: problem.deadLettered }, `${kind} failed`));
      }
    }
    if (confirmed > 0) logger.info({ kind, confirmed, failed, traceIds: traceIdsOf(applied.map((t) => traces.get(t.id))) }, `${kind}s confirmed`);
    // A settled mint may release clawbacks waiting for it.
    if (settled && kind === "mint") this.nudge();
  }
}

/** What the adapter is sent; the ids in metadata let an operator trace a mint back to its purchase. */
function toWork(kind: Kind, item: ClaimedRequest): AdapterWork {
  const ids = { entry_id: item.entryId, purchase_id: item.purchaseId, merchant_id: item.merchantId, user_id: item.userId };
  return {
    id: item.id,
    idempotencyKey: item.idempotencyKey,
    wallet: item.wallet,
    amountWei: item.amountWei,
    // The entry's own traceparent travels with it, so the adapter stores it even inside a MintBatch.
    metadata: { ...(kind === "clawback" ? { refund_id: item.id, ...ids } : ids), ...(validTraceparent(item.traceparent) ? { traceparent: item.traceparent! } : {}) },
  };
}

function linksOf(items: ClaimedRequest[]) {
  return items.flatMap((i) => {
    const sc = trace.getSpanContext(contextFrom(i.traceparent, context.active()));
    return validTraceparent(i.traceparent) && sc ? [{ context: sc }] : [];
  });
}

/** The trace ids of traceparents (00-<trace id>-<span id>-<flags>), for a line about many requests. */
function traceIdsOf(traceparents: (string | null | undefined)[]): string[] {
  return traceparents.flatMap((tp) => (tp ? [tp.split("-")[1] ?? ""] : [])).filter(Boolean);
}
