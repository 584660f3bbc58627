import { clawbackKey, mintKey, type Envelope } from "@cashback/events";
import { insertOutboxSql, type OutboxRecord } from "@cashback/outbox";
import pg from "pg";
import { keccak256, stringToHex } from "viem";
import { initialState, next, type Kind, type RequestEvent, type RequestState, type Status } from "./machine.ts";
import { deadLetterRecord, effectRecords, type RequestFacts } from "./results.ts";
import type { RetryPolicy } from "./retry-policy.ts";

/**
 * The one module that writes `mint_requests` and `clawbacks` statuses (and `processed_events`).
 * Every change of state is the state machine's (machine.ts) answer to an event, written with its
 * outbox rows (result events, dead letters) in the same transaction. node-postgres, one statement
 * per step: this is the hot path (see DESIGN.md's measurements).
 */

/** An event taken from the stream, decoded and valid, with where it came from. */
export interface IntakeItem {
  event: Envelope<"cashback.accrued"> | Envelope<"cashback.clawback_requested">;
  /** The dead-letter sequence this delivery replays; 0 for an original delivery. */
  replayOf: number;
  subject: string;
  streamSeq: number;
  /** Its NATS headers (without Nats-Msg-Id), kept for a later dead letter. */
  headers: Record<string, string>;
}

export interface IntakeResult {
  /** Events seen for the first time. */
  fresh: number;
  /** Requests created. */
  created: number;
  /** Redeliveries and re-publications of events already processed. */
  duplicates: number;
  /** Failed requests sent round again by a replay. */
  revived: number;
  /** Events for a known entry/refund with another wallet or amount (dead-lettered). */
  conflicts: number;
}

/** A request claimed for an adapter call. */
export interface ClaimedRequest {
  id: string;
  entryId: string;
  idempotencyKey: string;
  wallet: string;
  amountWei: bigint;
  purchaseId: string;
  merchantId: string;
  userId: string;
  createdAt: Date;
  /** W3C traceparent of the event that asked for it (its NATS header), when it had one. */
  traceparent?: string;
  /** End of this claim's lease (its next_attempt_at): handBack() matches on it. */
  leasedUntil: Date;
}

export interface AppliedTransition {
  id: string;
  from: Status;
  to: Status;
  createdAt: Date;
  /** Set when the transition failed the request. */
  problem?: { reason: string; message: string; deadLettered: boolean };
}

const TABLES = {
  mint: { table: "mint_requests", idColumn: "entry_id", statusType: "mint_request_status", chainIdColumn: "mint_id" },
  clawback: { table: "clawbacks", idColumn: "refund_id", statusType: "clawback_status", chainIdColumn: "ref_id" },
} as const;

interface RequestRow {
  id: string;
  entry_id: string;
  wallet: string;
  amount_wei: string;
  chain_id: string;
  status: Status;
  attempts: number;
  adapter_may_know: boolean;
  retry_since: Date;
  next_attempt_at: Date;
  last_error_reason: string | null;
  last_error: string | null;
  tx_hash: string | null;
  block_number: string | null;
  source_event: Envelope;
  source_subject: string;
  source_seq: string;
  source_headers: Record<string, string>;
  created_at: Date;
}

export interface RequestStoreDeps {
  pool: pg.Pool;
  policy: RetryPolicy;
  now?: () => number;
  random?: () => number;
  /** Called after a commit that wrote outbox rows (the app wakes its relay). */
  onOutboxWritten?: () => void;
}

export class RequestStore {
  private readonly deps: Required<RequestStoreDeps>;

  constructor(deps: RequestStoreDeps) {
    this.deps = { now: Date.now, random: Math.random, onOutboxWritten: () => {}, ...deps };
  }

  /**
   * Records a batch of events in one transaction: each event id (per replay) once in
   * processed_events, a request for each new entry/refund. A redelivery or re-publication is a
   * no-op; a replay revives a FAILED request; a conflicting duplicate is dead-lettered.
   */
  async recordEvents(items: readonly IntakeItem[]): Promise<IntakeResult> {
    const result: IntakeResult = { fresh: 0, created: 0, duplicates: 0, revived: 0, conflicts: 0 };
    if (items.length === 0) return result;
    const now = new Date(this.deps.now());
    const rows = items.map((item) => {
      const p = item.event.payload;
      const kind: Kind = item.event.type === "cashback.accrued" ? "mint" : "clawback";
      const key = kind === "mint" ? mintKey(p.entry_id) : clawbackKey((p as { refund_id: string }).refund_id);
      return {
        event_id: item.event.id,
        replay_of: item.replayOf,
        event_type: item.event.type,
        seq: item.streamSeq,
        subject: item.subject,
        kind,
        id: kind === "mint" ? p.entry_id : (p as { refund_id: string }).refund_id,
        entry_id: p.entry_id,
        key,
        chain_id: keccak256(stringToHex(key)),
        wallet: p.wallet,
        amount_wei: p.amount_wei,
        purchase_id: p.purchase_id,
        merchant_id: p.merchant_id,
        user_id: p.user_id,
        event: item.event,
        headers: item.headers,
      };
    });

    return this.transaction(async (client) => {
      const { rows: [out] } = await client.query<{ fresh: [string, string][]; mints: string[]; clawbacks: string[] }>(
        `WITH input AS (
           SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
             event_id uuid, replay_of bigint, event_type text, seq bigint, subject text, kind text, id uuid, entry_id uuid,
             key text, chain_id text, wallet text, amount_wei numeric, purchase_id uuid, merchant_id uuid, user_id uuid,
             event jsonb, headers jsonb)
         ),
         fresh AS (
           INSERT INTO processed_events (event_id, replay_of, event_type, stream_seq)
           SELECT event_id, replay_of, event_type, seq FROM input
           ON CONFLICT DO NOTHING
           RETURNING event_id, replay_of
         ),
         todo AS (
           SELECT DISTINCT ON (i.kind, i.id) i.* FROM input i JOIN fresh f USING (event_id, replay_of) ORDER BY i.kind, i.id, i.seq
         ),
         mints AS (
           INSERT INTO mint_requests (entry_id, idempotency_key, mint_id, wallet, amount_wei, purchase_id, merchant_id, user_id,
             status, retry_since, next_attempt_at, source_event_id, source_subject, source_seq, source_event, source_headers, created_at, updated_at)
           SELECT id, key, chain_id, wallet, amount_wei, purchase_id, merchant_id, user_id,
             $2::mint_request_status, $4, $4, event_id, subject, seq, event, headers, $4, $4
           FROM todo WHERE kind = 'mint'
           ON CONFLICT (entry_id) DO NOTHING
           RETURNING entry_id
         ),
         clawbacks AS (
           INSERT INTO clawbacks (refund_id, entry_id, idempotency_key, ref_id, wallet, amount_wei, purchase_id, merchant_id, user_id,
             status, retry_since, next_attempt_at, source_event_id, source_subject, source_seq, source_event, source_headers, created_at, updated_at)
           SELECT id, entry_id, key, chain_id, wallet, amount_wei, purchase_id, merchant_id, user_id,
             $3::clawback_status, $4, $4, event_id, subject, seq, event, headers, $4, $4
           FROM todo WHERE kind = 'clawback'
           ON CONFLICT (refund_id) DO NOTHING
           RETURNING refund_id
         )
         SELECT (SELECT COALESCE(json_agg(json_build_array(event_id, replay_of::text)), '[]') FROM fresh) AS fresh,
                (SELECT COALESCE(array_agg(entry_id::text), '{}') FROM mints) AS mints,
                (SELECT COALESCE(array_agg(refund_id::text), '{}') FROM clawbacks) AS clawbacks`,
        [JSON.stringify(rows), initialState("mint", 0).status, initialState("clawback", 0).status, now],
      );
      const fresh = new Set(out!.fresh.map(([id, replay]) => `${id}/${replay}`));
      const created = new Set([...out!.mints, ...out!.clawbacks]);
      result.fresh = fresh.size;
      result.created = created.size;
      result.duplicates = items.length - fresh.size;

      // Fresh events for a request that already exists: another event for the same entry/refund,
      // or a replay. Rare, so done row by row.
      const known: typeof rows = [];
      const requests = new Set<string>();
      for (const r of rows) {
        // Once per fresh event (a batch may hold the same one twice), once per request.
        if (!fresh.delete(`${r.event_id}/${r.replay_of}`) || created.has(r.id) || requests.has(`${r.kind}/${r.id}`)) continue;
        requests.add(`${r.kind}/${r.id}`);
        known.push(r);
      }
      const records: OutboxRecord[] = [];
      for (const kind of ["mint", "clawback"] as const) {
        const mine = known.filter((r) => r.kind === kind);
        if (mine.length === 0) continue;
        const locked = await this.lock(client, kind, mine.map((r) => r.id));
        const replays: { id: string; event: RequestEvent }[] = [];
        for (const r of mine) {
          const row = locked.get(r.id);
          if (!row) continue;
          if (row.wallet.toLowerCase() !== r.wallet.toLowerCase() || row.amount_wei !== BigInt(r.amount_wei).toString()) {
            result.conflicts++;
            records.push(
              deadLetterRecord({
                envelope: r.event,
                subject: r.subject,
                seq: String(r.seq),
                headers: r.headers,
                reason: "CONFLICTING_DUPLICATE",
                message: `${kind === "mint" ? "entry" : "refund"} ${r.id} was recorded for ${row.wallet} / ${row.amount_wei} wei by event ${row.source_event.id}`,
                aggregateId: `dlq:${r.entry_id}`,
              }),
            );
          } else if (r.replay_of > 0) {
            replays.push({ id: r.id, event: { type: "REPLAYED" } });
          }
        }
        const applied = await this.transitionLocked(client, kind, locked, replays, records);
        result.revived += applied.filter((t) => t.from === "FAILED").length;
      }
      if (records.length) await client.query(insertOutboxSql(records));
      return { result, wrote: records.length > 0 };
    }).then(({ result, wrote }) => {
      if (wrote) this.deps.onOutboxWritten();
      return result;
    });
  }

  /**
   * Feeds events to the machine for each request (adapter answers, releases) and writes what it
   * decides, with the effects' outbox rows, in one transaction. Events for a request in a final
   * state are no-ops, so a late or duplicate answer can do no harm.
   */
  async apply(kind: Kind, outcomes: readonly { id: string; event: RequestEvent }[]): Promise<AppliedTransition[]> {
    if (outcomes.length === 0) return [];
    return this.transaction(async (client) => {
      const locked = await this.lock(client, kind, [...new Set(outcomes.map((o) => o.id))]);
      const records: OutboxRecord[] = [];
      const applied = await this.transitionLocked(client, kind, locked, outcomes, records);
      if (records.length) await client.query(insertOutboxSql(records));
      return { applied, wrote: records.length > 0 };
    }).then(({ applied, wrote }) => {
      if (wrote) this.deps.onOutboxWritten();
      return applied;
    });
  }

  /**
   * Claims requests due for an adapter call: PENDING ones to send, or SUBMITTED ones to ask about.
   * The claim is a lease: next_attempt_at moves `leaseMs` ahead, so no other worker or instance
   * takes them meanwhile, and a crash mid-call only delays them until the lease ends.
   */
  async claim(kind: Kind, status: "PENDING" | "SUBMITTED", limit: number, leaseMs: number): Promise<ClaimedRequest[]> {
    const t = TABLES[kind];
    const now = this.deps.now();
    const { rows } = await this.deps.pool.query<{
      id: string; entry_id: string; idempotency_key: string; wallet: string; amount_wei: string; purchase_id: string; merchant_id: string; user_id: string; created_at: Date; traceparent: string | null;
    }>(
      `WITH due AS (
         SELECT ${t.idColumn} AS id FROM ${t.table}
         WHERE status = $1::${t.statusType} AND next_attempt_at <= $2
         ORDER BY next_attempt_at
         LIMIT $3
         FOR UPDATE SKIP LOCKED
       )
       UPDATE ${t.table} r SET next_attempt_at = $4, updated_at = $2
       FROM due WHERE r.${t.idColumn} = due.id
       RETURNING r.${t.idColumn} AS id, r.entry_id, r.idempotency_key, r.wallet, r.amount_wei::text AS amount_wei,
                 r.purchase_id, r.merchant_id, r.user_id, r.created_at, r.source_headers->>'traceparent' AS traceparent`,
      [status, new Date(now), limit, new Date(now + leaseMs)],
    );
    const leasedUntil = new Date(now + leaseMs);
    return rows.map((r) => ({
      leasedUntil,
      id: r.id,
      entryId: r.entry_id,
      idempotencyKey: r.idempotency_key,
      wallet: r.wallet,
      amountWei: BigInt(r.amount_wei),
      purchaseId: r.purchase_id,
      merchantId: r.merchant_id,
      userId: r.user_id,
      createdAt: r.created_at,
      traceparent: r.traceparent ?? undefined,
    }));
  }

  /**
   * Ends the lease of claimed requests whose call was cut short (shutdown), so another worker or
   * instance takes them now rather than when the lease runs out. Only rows still under this very
   * lease; the adapter is idempotent on each key, so asking again is safe.
   */
  async handBack(kind: Kind, items: readonly ClaimedRequest[]): Promise<number> {
    if (items.length === 0) return 0;
    const t = TABLES[kind];
    const { rowCount } = await this.deps.pool.query(
      `UPDATE ${t.table} SET next_attempt_at = $3, updated_at = $3 WHERE ${t.idColumn} = ANY($1::uuid[]) AND next_attempt_at = $2`,
      [items.map((i) => i.id), items[0]!.leasedUntil, new Date(this.deps.now())],
    );
    return rowCount ?? 0;
  }

  /**
   * Clawbacks whose entry's mint has settled: WAITING ones (and ones failed for want of a mint
   * that has since been replayed and confirmed), with the event that releases them.
   */
  async releasable(limit: number): Promise<{ id: string; event: RequestEvent }[]> {
    const { rows } = await this.deps.pool.query<{ id: string; mint_status: string }>(
      `SELECT c.refund_id AS id, m.status::text AS mint_status
       FROM clawbacks c JOIN mint_requests m ON m.entry_id = c.entry_id
       WHERE (c.status = 'WAITING' AND m.status IN ('CONFIRMED', 'FAILED'))
          OR (c.status = 'FAILED' AND c.last_error_reason = 'MINT_FAILED' AND m.status = 'CONFIRMED')
       LIMIT $1`,
      [limit],
    );
    return rows.map((r) => ({ id: r.id, event: { type: r.mint_status === "CONFIRMED" ? "MINT_CONFIRMED" : "MINT_FAILED" } }));
  }

  /** When the earliest PENDING/SUBMITTED request falls due (epoch ms), if any. */
  async nextDueAt(): Promise<number | undefined> {
    const { rows } = await this.deps.pool.query<{ at: Date | null }>(
      `SELECT LEAST(
         (SELECT min(next_attempt_at) FROM mint_requests WHERE status IN ('PENDING', 'SUBMITTED')),
         (SELECT min(next_attempt_at) FROM clawbacks WHERE status IN ('PENDING', 'SUBMITTED'))) AS at`,
    );
    return rows[0]?.at?.getTime();
  }

  /** At start-up: ask the adapter about every SUBMITTED request now (reconciliation). */
  async reconcileNow(): Promise<number> {
    const now = new Date(this.deps.now());
    let n = 0;
    for (const t of Object.values(TABLES)) {
      const { rowCount } = await this.deps.pool.query(`UPDATE ${t.table} SET next_attempt_at = $1 WHERE status = 'SUBMITTED' AND next_attempt_at > $1`, [now]);
      n += rowCount ?? 0;
    }
    return n;
  }

  private async lock(client: pg.PoolClient, kind: Kind, ids: string[]): Promise<Map<string, RequestRow>> {
    const t = TABLES[kind];
    const { rows } = await client.query<RequestRow>(
      `SELECT ${t.idColumn} AS id, entry_id, wallet, amount_wei::text AS amount_wei, ${t.chainIdColumn} AS chain_id, status::text AS status,
              attempts, adapter_may_know, retry_since, next_attempt_at, last_error_reason, last_error, tx_hash,
              block_number::text AS block_number, source_event, source_subject, source_seq::text AS source_seq, source_headers, created_at
       FROM ${t.table} WHERE ${t.idColumn} = ANY($1::uuid[])
       ORDER BY ${t.idColumn}
       FOR UPDATE`,
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** Runs the machine over locked rows, writes the changed ones, collects their outbox rows. */
  private async transitionLocked(
    client: pg.PoolClient,
    kind: Kind,
    locked: Map<string, RequestRow>,
    outcomes: readonly { id: string; event: RequestEvent }[],
    records: OutboxRecord[],
  ): Promise<AppliedTransition[]> {
    const now = this.deps.now();
    const states = new Map<string, RequestState>();
    const applied: AppliedTransition[] = [];
    for (const { id, event } of outcomes) {
      const row = locked.get(id);
      if (!row) continue;
      const state = states.get(id) ?? toState(row);
      const t = next(state, event, { kind, now, jitter: this.deps.random(), policy: this.deps.policy });
      if (t.state === state) continue;
      states.set(id, t.state);
      const failure = t.effects.find((e) => e.type === "EMIT_FAILED");
      applied.push({
        id,
        from: state.status,
        to: t.state.status,
        createdAt: row.created_at,
        ...(failure && { problem: { reason: failure.reason, message: failure.message, deadLettered: t.effects.some((e) => e.type === "DEAD_LETTER") } }),
      });
      records.push(...effectRecords(factsOf(kind, row), t.state, t.effects));
    }
    if (states.size === 0) return applied;
    const tbl = TABLES[kind];
    const updates = [...states].map(([id, state]) => ({ id, ...toColumns(state, now) }));
    await client.query(
      `UPDATE ${tbl.table} r SET
         status = u.status::${tbl.statusType},
         attempts = u.attempts,
         adapter_may_know = u.adapter_may_know,
         retry_since = COALESCE(u.retry_since, r.retry_since),
         next_attempt_at = COALESCE(u.next_attempt_at, r.next_attempt_at),
         last_error_reason = COALESCE(u.last_error_reason, r.last_error_reason),
         last_error = COALESCE(u.last_error, r.last_error),
         tx_hash = COALESCE(u.tx_hash, r.tx_hash),
         block_number = COALESCE(u.block_number, r.block_number),
         finished_at = u.finished_at,
         updated_at = $2
       FROM jsonb_to_recordset($1::jsonb) AS u(id uuid, status text, attempts int, adapter_may_know boolean, retry_since timestamptz,
         next_attempt_at timestamptz, last_error_reason text, last_error text, tx_hash text, block_number bigint, finished_at timestamptz)
       WHERE r.${tbl.idColumn} = u.id`,
      [JSON.stringify(updates), new Date(now)],
    );
    return applied;
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.deps.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      broken = err as Error;
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      // A connection that failed mid-transaction is not reused.
      client.release(broken && isConnectionError(broken) ? broken : undefined);
    }
  }
}

/** The machine's view of a row. */
export function toState(row: Pick<RequestRow, "status" | "attempts" | "adapter_may_know" | "retry_since" | "next_attempt_at" | "last_error_reason" | "last_error" | "tx_hash" | "block_number">): RequestState {
  const progress = {
    attempts: row.attempts,
    retrySince: row.retry_since.getTime(),
    dueAt: row.next_attempt_at.getTime(),
    adapterMayKnow: row.adapter_may_know,
    lastError: row.last_error_reason ? { reason: row.last_error_reason, message: row.last_error ?? "" } : null,
  };
  switch (row.status) {
    case "WAITING":
    case "PENDING":
      return { status: row.status, ...progress };
    case "SUBMITTED":
      return { status: "SUBMITTED", txHash: row.tx_hash, ...progress };
    case "CONFIRMED":
      return { status: "CONFIRMED", attempts: row.attempts, txHash: row.tx_hash ?? "", blockNumber: BigInt(row.block_number ?? 0) };
    case "FAILED":
      return { status: "FAILED", attempts: row.attempts, adapterMayKnow: row.adapter_may_know, reason: row.last_error_reason ?? "FAILED", message: row.last_error ?? "" };
  }
}

/** The columns a state writes; null keeps the row's value (history such as the last error). */
export function toColumns(state: RequestState, now: number) {
  const base = {
    status: state.status,
    attempts: state.attempts,
    retry_since: null as Date | null,
    next_attempt_at: null as Date | null,
    last_error_reason: null as string | null,
    last_error: null as string | null,
    tx_hash: null as string | null,
    block_number: null as string | null,
    finished_at: null as Date | null,
  };
  switch (state.status) {
    case "WAITING":
    case "PENDING":
    case "SUBMITTED":
      return {
        ...base,
        adapter_may_know: state.adapterMayKnow,
        retry_since: new Date(state.retrySince),
        next_attempt_at: new Date(state.dueAt),
        last_error_reason: state.lastError?.reason ?? null,
        last_error: state.lastError?.message ?? null,
        tx_hash: state.status === "SUBMITTED" ? state.txHash : null,
      };
    case "CONFIRMED":
      return { ...base, adapter_may_know: true, tx_hash: state.txHash.toLowerCase(), block_number: state.blockNumber.toString(), finished_at: new Date(now) };
    case "FAILED":
      return { ...base, adapter_may_know: state.adapterMayKnow, last_error_reason: state.reason, last_error: state.message, finished_at: new Date(now) };
  }
}

function factsOf(kind: Kind, row: RequestRow): RequestFacts {
  return {
    kind,
    id: row.id,
    entryId: row.entry_id,
    wallet: row.wallet,
    amountWei: row.amount_wei,
    chainId: row.chain_id,
    sourceEvent: row.source_event,
    sourceSubject: row.source_subject,
    sourceSeq: row.source_seq,
    sourceHeaders: row.source_headers,
  };
}

function isConnectionError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code !== "string" || /^(08|57P0)/.test(code) || code === "ECONNRESET" || code === "ECONNREFUSED";
}
