import type pg from "pg";
import type { Logger } from "pino";
import { newEvent } from "@cashback/events";
import { forbidden, notFound, unprocessable } from "../http/errors.ts";
import type { Answer, Idempotency, IdempotencyRequest } from "../http/idempotency.ts";
import type { Metrics } from "../metrics.ts";
import { eligibleRules, evaluate, hasPeriodCap, periodsOf, type Evaluation, type Period, type Periods, type PurchaseFacts } from "../rules/engine.ts";
import { PurchaseBatcher, writePurchases, type PurchaseRow, type RowOutcome } from "./purchase-batch.ts";
import type { Rates } from "../rules/money.ts";
import type { RuleCache } from "../rules/rule-cache.ts";
import { Lru } from "../support/lru.ts";
import { uuidv7 } from "../support/uuid.ts";
import { purchaseView, type PurchaseView } from "./purchase-view.ts";

/**
 * POST /v1/purchases: the purchase, its cashback ledger entry, the `cashback.accrued` outbox
 * event, the user's cap usage and the Idempotency-Key record, written by ONE SQL statement (CTEs,
 * purchase-batch.ts) on a node-postgres pool: one round trip, one transaction, all or nothing;
 * purchases arriving together share the statement (PurchaseBatcher).
 *
 * Caps under concurrency. The engine needs what the user already received from capped rules
 * today and this month. That usage is read (or taken from this process's cache) together with
 * the user's `cap_version`; the statement locks the user's row and writes the purchase only if
 * `cap_version` is still the version read (bumping it). So two purchases of one user computed
 * from the same usage can not both commit: the second waits for the first's lock, then sees the
 * newest row version (Postgres re-reads a row it had to wait for), writes nothing, and is
 * computed again from fresh usage. After a few such losses the writer stops
 * being optimistic: it locks the user row (SELECT ... FOR NO KEY UPDATE) in a transaction, reads
 * the usage under the lock and writes, so a hot user still makes progress. Purchases with no
 * capped rule in play skip the guard altogether and never wait for each other.
 */

/** How far in the future occurred_at may be (clock skew between the merchant and us). */
const MAX_FUTURE_MS = 5 * 60_000;

export interface PurchaseRequest {
  principalKind: "admin" | "merchant";
  merchantId: string;
  userId: string;
  category: string;
  amountMinor: bigint;
  currency: string;
  occurredAt: Date;
  idempotency?: IdempotencyRequest;
  traceparent?: string;
}

/** What the writer knows about a user: who it belongs to, and (when read) its cap usage. */
interface UserState {
  merchantId: string;
  wallet: string;
  usage?: { capVersion: bigint; periods: Periods; used: Map<string, bigint> };
}

const usageKey = (ruleId: string, period: Period) => `${ruleId}:${period}`;

export interface PurchaseWriterDeps {
  pool: pg.Pool;
  rules: RuleCache;
  rates: Rates;
  idempotency: Idempotency;
  metrics: Metrics;
  logger: Logger;
  userCacheSize: number;
  /** Called after a commit that wrote an outbox event (wakes the relay of this process). */
  onEventWritten: () => void;
  /** Purchases per statement at most, and statements running at once (purchase-batch.ts). */
  batchMax: number;
  statementsInFlight: number;
  /** Guarded writes that may lose to a concurrent purchase before the writer locks the user (4). */
  optimisticAttempts: number;
}

export class PurchaseWriter {
  /** Users never change merchant or wallet, so this part never goes stale; usage is guarded. */
  private readonly users: Lru<string, UserState>;
  private readonly batcher: PurchaseBatcher;

  constructor(private readonly deps: PurchaseWriterDeps) {
    this.users = new Lru(Math.max(1, deps.userCacheSize));
    this.batcher = new PurchaseBatcher({
      pool: deps.pool,
      maxBatch: deps.batchMax,
      maxInFlight: deps.statementsInFlight,
      logger: deps.logger,
      onBatch: (size) => deps.metrics.purchaseBatch.observe(size),
    });
  }

  async create(req: PurchaseRequest): Promise<Answer<PurchaseView>> {
    if (!this.deps.rates.has(req.currency)) {
      throw unprocessable(`currency ${req.currency} is not accepted (configured: ${[...this.deps.rates.keys()].join(", ")})`, { currency: req.currency });
    }
    if (req.occurredAt.getTime() > Date.now() + MAX_FUTURE_MS) throw unprocessable("occurred_at is in the future");
    const periods = periodsOf(req.occurredAt);

    for (let attempt = 1; ; attempt++) {
      // Only a purchase with a capped rule in play can lose its guard and come round again; past
      // `optimisticAttempts` it is written under its user's row lock (0: every purchase is).
      const locked = attempt > this.deps.optimisticAttempts;
      const client = locked ? await this.deps.pool.connect() : undefined;
      let broken = false;
      try {
        if (client) await client.query("BEGIN");
        const outcome = await this.attempt(req, periods, client);
        if (client) await client.query("COMMIT");
        if (outcome.kind === "written") {
          if (client) this.deps.metrics.lockedWrites.inc();
          if (client && outcome.view.cashback.entry_id) this.deps.onEventWritten();
          return { status: 201, body: outcome.view, json: outcome.json };
        }
        if (outcome.kind === "key-taken") return this.deps.idempotency.replay(req.idempotency!) as Promise<Answer<PurchaseView>>;
        this.deps.metrics.capRetries.inc(); // "usage-changed": compute again from fresh usage
      } catch (err) {
        if (client) await client.query("ROLLBACK").catch(() => (broken = true));
        throw err;
      } finally {
        client?.release(broken);
      }
    }
  }

  private async attempt(req: PurchaseRequest, periods: Periods, client?: pg.PoolClient): Promise<{ kind: "written"; view: PurchaseView; json: string } | { kind: "key-taken" } | { kind: "usage-changed" }> {
    const db = client ?? this.deps.pool;
    let user = client ? await this.lockUser(client, req.userId) : await this.user(req.userId);
    if (user.merchantId !== req.merchantId) {
      if (req.principalKind === "merchant") throw forbidden("the user belongs to another merchant");
      throw unprocessable("the user belongs to another merchant than merchant_id");
    }

    const facts: PurchaseFacts = { merchantId: req.merchantId, category: req.category, amountMinor: req.amountMinor, currency: req.currency, occurredAt: req.occurredAt };
    const rules = this.deps.rules.forMerchant(req.merchantId);
    const capped = eligibleRules(facts, rules, this.deps.rates).some(hasPeriodCap);
    if (capped && (client || !sameUsagePeriods(user, periods))) user = await this.readUsage(db, req.userId, periods, user);
    const stacking = await this.deps.rules.stacking(req.merchantId);
    const used = user.usage?.used;
    const evaluation = evaluate(facts, rules, { rates: this.deps.rates, stacking, usage: (ruleId, period) => used?.get(usageKey(ruleId, period)) ?? 0n });

    const now = new Date();
    const ids = { purchase: uuidv7(now.getTime()), entry: uuidv7(now.getTime()) };
    const view = purchaseView(
      {
        id: ids.purchase,
        merchantId: req.merchantId,
        userId: req.userId,
        category: req.category,
        amountMinor: req.amountMinor,
        currency: req.currency,
        occurredAt: req.occurredAt,
        createdAt: now,
        refundedMinor: 0n,
        cashbackWei: evaluation.totalWei,
        cashbackRules: evaluation.applied.map((a) => ({ rule_id: a.ruleId, name: a.name, amount_wei: a.amountWei.toString() })),
      },
      evaluation.totalWei > 0n ? { id: ids.entry, status: "pending", chainRef: null, txHash: null, blockNumber: null, failureReason: null, failureMessage: null } : null,
    );
    const json = JSON.stringify(view); // no bigints in a view: the answer and the idempotency record
    const guardVersion = capped ? user.usage!.capVersion : undefined;
    const row = purchaseRow({ req, user, ids, now, evaluation, json, guardVersion });
    // the locked path writes inside its transaction; everything else shares statements
    const outcome: RowOutcome = client ? (await writePurchases(client, [row]))[0]! : await this.batcher.write(row);

    if (outcome === "usage-changed") {
      this.forgetUsage(req.userId, guardVersion!);
      return { kind: "usage-changed" };
    }
    if (outcome === "key-taken") {
      if (capped) this.forgetUsage(req.userId, guardVersion!); // our guard may have bumped the version for nothing
      return { kind: "key-taken" };
    }
    if (capped) this.rememberUsage(req.userId, user, evaluation);
    if (evaluation.totalWei > 0n && !client) this.deps.onEventWritten(); // the locked path wakes after its COMMIT
    this.deps.metrics.purchases.inc({ cashback: evaluation.totalWei > 0n ? "yes" : "no" });
    return { kind: "written", view, json };
  }

  /** The user from the cache, else from the database (404 when there is none). */
  private async user(userId: string): Promise<UserState> {
    const cached = this.users.get(userId);
    if (cached) return cached;
    const { rows } = await this.deps.pool.query<{ merchant_id: string; wallet_address: string }>({
      name: "purchase_user",
      text: "SELECT merchant_id, wallet_address FROM users WHERE id = $1::uuid",
      values: [userId],
    });
    if (rows.length === 0) throw notFound("user");
    const state: UserState = { merchantId: rows[0]!.merchant_id, wallet: rows[0]!.wallet_address };
    this.users.set(userId, state);
    return state;
  }

  /** The pessimistic path: the user's row locked for the rest of the transaction. */
  private async lockUser(client: pg.PoolClient, userId: string): Promise<UserState> {
    const { rows } = await client.query<{ merchant_id: string; wallet_address: string }>({
      name: "purchase_lock_user",
      text: "SELECT merchant_id, wallet_address FROM users WHERE id = $1::uuid FOR NO KEY UPDATE",
      values: [userId],
    });
    if (rows.length === 0) throw notFound("user");
    return { merchantId: rows[0]!.merchant_id, wallet: rows[0]!.wallet_address };
  }

  /**
   * cap_version and the usage of the purchase's day and month, from one snapshot (one
   * statement), so the version vouches for exactly these numbers.
   */
  private async readUsage(db: pg.Pool | pg.PoolClient, userId: string, periods: Periods, user: UserState): Promise<UserState> {
    const { rows } = await db.query<{ cap_version: string; rule_id: string | null; period: Period | null; used_wei: string | null }>({
      name: "purchase_usage",
      text: `SELECT u.cap_version, c.rule_id, c.period, c.used_wei
             FROM users u
             LEFT JOIN cashback_usage c ON c.user_id = u.id
               AND ((c.period = 'day' AND c.period_start = $2::date) OR (c.period = 'month' AND c.period_start = $3::date))
             WHERE u.id = $1::uuid`,
      values: [userId, periods.day, periods.month],
    });
    if (rows.length === 0) throw notFound("user");
    const used = new Map<string, bigint>();
    for (const r of rows) if (r.rule_id && r.period && r.used_wei) used.set(usageKey(r.rule_id, r.period), BigInt(r.used_wei));
    const state: UserState = { merchantId: user.merchantId, wallet: user.wallet, usage: { capVersion: BigInt(rows[0]!.cap_version), periods, used } };
    this.users.set(userId, state);
    return state;
  }

  private rememberUsage(userId: string, user: UserState, evaluation: Evaluation): void {
    const usage = user.usage!;
    const used = new Map(usage.used);
    for (const d of evaluation.usage) {
      const key = usageKey(d.ruleId, d.period);
      used.set(key, (used.get(key) ?? 0n) + d.amountWei);
    }
    this.users.set(userId, { ...user, usage: { capVersion: usage.capVersion + 1n, periods: usage.periods, used } });
  }

  /** Drops the cached usage read at `version` (a fresher one, written by a sibling purchase, stays). */
  private forgetUsage(userId: string, version: bigint): void {
    const cached = this.users.get(userId);
    if (cached?.usage && cached.usage.capVersion <= version) this.users.set(userId, { merchantId: cached.merchantId, wallet: cached.wallet });
  }
}

function sameUsagePeriods(user: UserState, periods: Periods): boolean {
  return user.usage !== undefined && user.usage.periods.day === periods.day && user.usage.periods.month === periods.month;
}

/** Everything one purchase writes, for purchase-batch.ts. */
function purchaseRow(s: {
  req: PurchaseRequest;
  user: UserState;
  ids: { purchase: string; entry: string };
  now: Date;
  evaluation: Evaluation;
  json: string;
  guardVersion?: bigint;
}): PurchaseRow {
  const { req, ids, evaluation } = s;
  let accrual: PurchaseRow["accrual"];
  if (evaluation.totalWei > 0n) {
    const event = newEvent(
      "cashback.accrued",
      { entry_id: ids.entry, purchase_id: ids.purchase, merchant_id: req.merchantId, user_id: req.userId, wallet: s.user.wallet, amount_wei: evaluation.totalWei.toString() },
      { correlationId: ids.purchase, occurredAt: s.now },
    );
    accrual = { entryId: ids.entry, wallet: s.user.wallet, eventId: event.id, eventJson: JSON.stringify(event), headersJson: JSON.stringify(req.traceparent ? { traceparent: req.traceparent } : {}) };
  }
  return {
    purchaseId: ids.purchase,
    merchantId: req.merchantId,
    userId: req.userId,
    category: req.category,
    amountMinor: req.amountMinor,
    currency: req.currency,
    occurredAt: req.occurredAt,
    cashbackWei: evaluation.totalWei,
    rulesJson: JSON.stringify(evaluation.applied.map((a) => ({ rule_id: a.ruleId, name: a.name, amount_wei: a.amountWei.toString() }))),
    createdAt: s.now,
    guardVersion: s.guardVersion,
    idempotency: req.idempotency ? { scope: req.idempotency.scope, key: req.idempotency.key, path: req.idempotency.path, hash: req.idempotency.hash } : undefined,
    responseJson: s.json,
    accrual,
    usage: evaluation.usage,
  };
}
