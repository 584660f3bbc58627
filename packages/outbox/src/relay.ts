import { setTimeout as sleep } from "node:timers/promises";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import pg from "pg";
import type { Logger } from "pino";

export interface OutboxRelayDeps {
  pool: pg.Pool;
  nats: NatsConnection;
  logger: Logger;
  /** Default "outbox_events" (sql/outbox_events.sql); also the LISTEN channel for NOTIFYs from other processes. */
  table?: string;
  /** Rows claimed per pass (default 500). */
  batchSize?: number;
  /** Passes running at once (default 2): while one waits for JetStream's acks, another claims. */
  workers?: number;
  /** Poll when nothing wakes it (default 1000 ms): rows written by processes that neither wake() nor NOTIFY. */
  pollIntervalMs?: number;
  /**
   * Wait this long before a pass that follows a pass that emptied the table (default 5 ms), so a
   * steady stream of wakes is published in batches rather than a pass per row. An idle relay
   * woken up starts at once; a full batch is followed at once.
   */
  lingerMs?: number;
  /** How long one publish waits for JetStream's ack (default 5000 ms). */
  publishTimeoutMs?: number;
  /** Published rows are kept this long (the purchase trace shows them), then pruned (default 7 days). */
  retentionMs?: number;
  /** Called after each pass that published something. */
  onPublished?: (count: number) => void;
}

interface ClaimedRow {
  seq: string;
  id: string;
  subject: string;
  payload: string;
  headers: Record<string, string>;
}

/**
 * Publishes what services wrote to their outbox table, at least once and in order per aggregate:
 *
 * - A pass claims unpublished rows with FOR UPDATE SKIP LOCKED, so any number of relays (threads
 *   or processes) share the table without taking the same row; a row is skipped while an earlier
 *   row of its aggregate is unpublished, so one aggregate's events go out in the order written.
 * - Each is published with msgID = event id; JetStream drops a re-publish within the stream's
 *   duplicate window (a relay that crashed after publishing but before marking), and readers
 *   de-duplicate on the id beyond it.
 * - Rows are marked published in the same transaction that claimed them. When NATS is down the
 *   publishes fail, the rows stay unpublished (attempts and last_error are recorded) and the
 *   relay backs off and tries again: an outage delays events, it never loses one.
 * - It wakes at once when the producer in its own process calls `wake()` after committing rows,
 *   or on `NOTIFY <table>` (LISTEN) from any other process, and polls as a fallback.
 *
 * Why producers call wake() instead of a NOTIFY trigger on every insert: a transaction that
 * NOTIFYs takes a cluster-wide lock at commit and holds it through its WAL flush (Postgres keeps
 * the notification queue in commit order), so every such commit waits for the previous one's
 * fsync. Measured on our 2-core machines with 32 writers: single-row INSERTs at ~2,600/s plain,
 * ~340-460/s with a per-statement NOTIFY trigger. A NOTIFY now and then (a batch job, another
 * service) is fine; one per business transaction caps the write path.
 */
export class OutboxRelay {
  private readonly deps: Required<Omit<OutboxRelayDeps, "onPublished">> & Pick<OutboxRelayDeps, "onPublished">;
  private readonly js: JetStreamClient;
  private running = false;
  private loops: Promise<void>[] = [];
  /** Bumped by every wake (wake() or a NOTIFY); a pass that found nothing re-runs if it moved meanwhile. */
  private generation = 0;
  private waiters = new Set<() => void>();
  private listener?: pg.Client;
  private listenerLoop?: Promise<void>;
  private pruneTimer?: NodeJS.Timeout;

  constructor(deps: OutboxRelayDeps) {
    this.deps = {
      table: "outbox_events",
      batchSize: 500,
      workers: 2,
      pollIntervalMs: 1_000,
      lingerMs: 5,
      publishTimeoutMs: 5_000,
      retentionMs: 7 * 24 * 3600 * 1000,
      ...deps,
    };
    if (!/^[a-z_][a-z0-9_]*$/.test(this.deps.table)) throw new Error(`bad outbox table name ${this.deps.table}`);
    this.js = jetstream(deps.nats, { timeout: this.deps.publishTimeoutMs });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.listenerLoop = this.listen();
    for (let i = 0; i < this.deps.workers; i++) this.loops.push(this.work());
    const prune = () => {
      void this.prune()
        .catch((err: unknown) => this.deps.logger.warn({ err: errorText(err) }, "outbox prune failed"))
        .finally(() => {
          if (this.running) this.pruneTimer = setTimeout(prune, 60_000);
        });
    };
    this.pruneTimer = setTimeout(prune, 5_000);
  }

  /** Stops claiming; a pass under way finishes (its rows are published or left for later). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.pruneTimer);
    this.wakeAll();
    await Promise.all(this.loops);
    this.loops = [];
    await this.listener?.end().catch(() => {});
    await this.listenerLoop;
  }

  /**
   * Tells the relay that rows were just committed: an idle relay starts a pass now instead of at
   * its next poll. Cheap (no I/O); call it after every commit that wrote outbox rows.
   */
  wake(): void {
    this.wakeAll();
  }

  /** Rows waiting to be published, and the age of the oldest, for metrics and readiness. */
  async backlog(): Promise<{ unpublished: number; oldestAgeSeconds: number }> {
    const { rows } = await this.deps.pool.query<{ n: number; age: number }>(
      `SELECT count(*)::int AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS age
       FROM ${this.deps.table} WHERE published_at IS NULL`,
    );
    return { unpublished: rows[0]!.n, oldestAgeSeconds: rows[0]!.age };
  }

  /** One claim-publish-mark pass; returns how many rows it published. */
  async relayOnce(): Promise<number> {
    const { pool, table, batchSize } = this.deps;
    const client = await pool.connect();
    // While we hold it, the pool's own 'error' listener is off; a server that goes away between
    // our queries (a Postgres restart while we wait for JetStream's acks) emits 'error' on the
    // client, which would crash the process without a listener. The next query fails instead.
    let lost: Error | undefined;
    const onError = (err: Error) => (lost ??= err);
    client.on("error", onError);
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const { rows } = await client.query<ClaimedRow>(
        `SELECT o.seq, o.id, o.subject, o.payload::text AS payload, o.headers
         FROM ${table} o
         WHERE o.published_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM ${table} e
                           WHERE e.aggregate_id = o.aggregate_id AND e.published_at IS NULL AND e.seq < o.seq)
         ORDER BY o.seq
         LIMIT $1
         FOR UPDATE OF o SKIP LOCKED`,
        [batchSize],
      );
      if (rows.length === 0) {
        await client.query("COMMIT");
        return 0;
      }
      const results = await Promise.allSettled(rows.map((row) => this.publish(row)));
      const published: string[] = [];
      const failed: string[] = [];
      let firstError: unknown;
      results.forEach((r, i) => {
        if (r.status === "fulfilled") published.push(rows[i]!.seq);
        else {
          failed.push(rows[i]!.seq);
          firstError ??= r.reason;
        }
      });
      if (published.length) await client.query(`UPDATE ${table} SET published_at = now() WHERE seq = ANY($1::bigint[])`, [published]);
      if (failed.length) {
        await client.query(`UPDATE ${table} SET attempts = attempts + 1, last_error = $2 WHERE seq = ANY($1::bigint[])`, [failed, errorText(firstError)]);
      }
      await client.query("COMMIT");
      if (published.length) this.deps.onPublished?.(published.length);
      if (failed.length) throw new PublishFailedError(failed.length, rows.length, firstError);
      return published.length;
    } catch (err) {
      if (!(err instanceof PublishFailedError)) {
        broken = err as Error;
        await client.query("ROLLBACK").catch(() => {});
      }
      throw err;
    } finally {
      client.removeListener("error", onError);
      client.release(broken ?? lost);
    }
  }

  private publish(row: ClaimedRow) {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(row.headers ?? {})) h.set(k, String(v));
    return this.js.publish(row.subject, Buffer.from(row.payload), { msgID: row.id, headers: h });
  }

  private async work(): Promise<void> {
    let failures = 0;
    while (this.running) {
      const seen = this.generation;
      try {
        const published = await this.relayOnce();
        failures = 0;
        if (published >= this.deps.batchSize) continue; // a full batch: more is waiting now
        if (published > 0 || this.generation !== seen) {
          // More is arriving: let it gather for a moment instead of a pass per row.
          if (this.deps.lingerMs > 0) await sleep(this.deps.lingerMs);
          continue;
        }
      } catch (err) {
        failures++;
        const level = failures === 1 || failures % 20 === 0 ? "warn" : "debug";
        this.deps.logger[level]({ err: errorText(err), failures }, "outbox relay pass failed; retrying with backoff");
        await sleep(backoffMs(failures));
        continue;
      }
      await this.idle(this.deps.pollIntervalMs);
    }
  }

  private idle(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wakeAll(): void {
    this.generation++;
    for (const wake of [...this.waiters]) wake();
  }

  /** Keeps a LISTEN connection open (reconnecting with backoff); polling covers the gaps. */
  private async listen(): Promise<void> {
    let failures = 0;
    while (this.running) {
      const client = new pg.Client(this.deps.pool.options);
      const ended = new Promise<void>((resolve) => {
        client.on("end", resolve);
        client.on("error", () => resolve());
      });
      client.on("notification", () => this.wakeAll());
      try {
        await client.connect();
        await client.query(`LISTEN ${this.deps.table}`);
        this.listener = client;
        failures = 0;
        this.wakeAll(); // rows may have arrived while we were not listening
        await ended;
      } catch {
        // reported by the passes themselves when the database is down
      }
      this.listener = undefined;
      await client.end().catch(() => {});
      if (this.running) await sleep(backoffMs(++failures));
    }
  }

  private async prune(): Promise<void> {
    const { table, retentionMs, pool } = this.deps;
    for (;;) {
      const { rowCount } = await pool.query(
        `DELETE FROM ${table} WHERE seq IN (
           SELECT seq FROM ${table} WHERE published_at < now() - ($1::bigint * interval '1 millisecond') LIMIT 5000)`,
        [retentionMs],
      );
      if (!rowCount || rowCount < 5000 || !this.running) return;
    }
  }
}

class PublishFailedError extends Error {
  override name = "PublishFailedError";
  constructor(failed: number, of: number, cause: unknown) {
    super(`${failed} of ${of} events not published: ${errorText(cause)}`);
  }
}

/** Exponential backoff with full jitter: 100 ms doubling, capped at 5 s. */
export function backoffMs(failures: number, baseMs = 100, capMs = 5_000): number {
  return Math.floor(Math.random() * Math.min(capMs, baseMs * 2 ** Math.min(failures, 16))) + 1;
}

function errorText(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.split("\n")[0]!.slice(0, 500);
}
