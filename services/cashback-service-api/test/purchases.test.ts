import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEvent } from "@cashback/events";
import { expectStatus, purchaseBody, startTestApi, until, WALLETS, type TestApi } from "./support/api.ts";

const CBK = 10n ** 18n;
let t: TestApi;
beforeAll(async () => {
  t = await startTestApi();
});
afterAll(async () => t?.close());

const q = async <T = any>(sql: string, values: unknown[] = []) => (await t.api.pool.query(sql, values)).rows as T[];
const n = async (sql: string, values: unknown[] = []) => Number((await q<{ n: string }>(sql, values))[0]!.n);

describe("POST /v1/purchases", () => {
  it("writes the purchase, its ledger entry and its outbox event together", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client, { wallet: WALLETS[2].toLowerCase() });
    const rule = await t.rule(m.client, { name: "groceries 2.5%", kind: "percentage", basis_points: 250, categories: ["groceries"] });
    const p = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id, { amount_minor: 12_999 })), 201);
    const cashback = (12_999n * 10n ** 16n * 250n) / 10_000n; // $129.99 at 1 CBK/$, 2.5%, rounded down
    expect(p).toMatchObject({ merchant_id: m.id, user_id: u.id, amount_minor: 12_999, currency: "USD", refunded_minor: 0 });
    expect(p.cashback).toMatchObject({ amount_wei: cashback.toString(), status: "pending", rules: [{ rule_id: rule.id, name: "groceries 2.5%", amount_wei: cashback.toString() }] });

    const [purchase] = await q("SELECT amount_minor, cashback_wei FROM purchases WHERE id = $1", [p.id]);
    expect(purchase).toEqual({ amount_minor: "12999", cashback_wei: cashback.toString() });
    const [entry] = await q("SELECT * FROM cashback_ledger WHERE purchase_id = $1", [p.id]);
    expect(entry).toMatchObject({ id: p.cashback.entry_id, kind: "accrual", status: "pending", amount_wei: cashback.toString(), wallet_address: WALLETS[2] });
    const [outbox] = await q("SELECT id, subject, aggregate_id, payload::text AS payload FROM outbox_events WHERE id = $1", [entry.event_id]);
    expect(outbox).toMatchObject({ subject: "cashback.accrued", aggregate_id: entry.id });
    const decoded = decodeEvent(outbox.payload);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.event).toMatchObject({
      id: outbox.id,
      type: "cashback.accrued",
      version: 1,
      correlation_id: p.id,
      payload: { entry_id: entry.id, purchase_id: p.id, merchant_id: m.id, user_id: u.id, wallet: WALLETS[2], amount_wei: cashback.toString() },
    });

    // a purchase no rule pays for: no entry, no event
    const none = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id, { category: "travel" })), 201);
    expect(none.cashback).toMatchObject({ amount_wei: "0", status: "none", entry_id: null, rules: [] });
    expect(await n("SELECT count(*) AS n FROM cashback_ledger WHERE purchase_id = $1", [none.id])).toBe(0);
    expect(await n("SELECT count(*) AS n FROM outbox_events WHERE payload->'payload'->>'purchase_id' = $1", [none.id])).toBe(0);
  });

  it("leaves nothing behind when any part of the transaction fails, and the Idempotency-Key unused", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    await t.rule(m.client, { name: "capped", kind: "percentage", basis_points: 1000, user_daily_cap_wei: (100n * CBK).toString() });
    const count = async () => ({
      purchases: await n("SELECT count(*) AS n FROM purchases WHERE user_id = $1", [u.id]),
      ledger: await n("SELECT count(*) AS n FROM cashback_ledger WHERE user_id = $1", [u.id]),
      usage: await n("SELECT count(*) AS n FROM cashback_usage WHERE user_id = $1", [u.id]),
      outbox: await n("SELECT count(*) AS n FROM outbox_events WHERE payload->'payload'->>'user_id' = $1", [u.id]),
      keys: await n("SELECT count(*) AS n FROM idempotency_keys WHERE principal = $1", [m.id]),
    });
    expect(await count()).toEqual({ purchases: 0, ledger: 0, usage: 0, outbox: 0, keys: 0 });
    // the last write of the statement fails
    await q(`CREATE FUNCTION test_outbox_fails() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.payload->'payload'->>'user_id' = '${u.id}' THEN RAISE EXCEPTION 'outbox is broken'; END IF; RETURN NEW; END $$`);
    await q("CREATE TRIGGER test_outbox_fails BEFORE INSERT ON outbox_events FOR EACH ROW EXECUTE FUNCTION test_outbox_fails()");
    try {
      const failed = await m.client.post("/v1/purchases", purchaseBody(u.id), { "idempotency-key": "fails-once" });
      expect(failed.status).toBe(500);
      expect(failed.body).toEqual({ error: { code: "internal", message: "internal error", details: {} } });
      expect(await count()).toEqual({ purchases: 0, ledger: 0, usage: 0, outbox: 0, keys: 0 });
    } finally {
      await q("DROP TRIGGER test_outbox_fails ON outbox_events");
      await q("DROP FUNCTION test_outbox_fails()");
    }
    const retried = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id), { "idempotency-key": "fails-once" }), 201);
    expect(retried.cashback.amount_wei).toBe((10n * CBK).toString());
    expect(await count()).toEqual({ purchases: 1, ledger: 1, usage: 2, outbox: 1, keys: 1 });
  });
});

describe("Idempotency-Key", () => {
  it("replays the first answer for the same request, 422 for another", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    await t.rule(m.client, { name: "1%", kind: "percentage", basis_points: 100 });
    const body = purchaseBody(u.id);
    const first = await m.client.post("/v1/purchases", body, { "idempotency-key": "order-1" });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    // same meaning, other key order
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const again = await m.client.post("/v1/purchases", reordered, { "idempotency-key": "order-1" });
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    const other = await m.client.post("/v1/purchases", { ...body, amount_minor: 1 }, { "idempotency-key": "order-1" });
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ error: { code: "idempotency_key_reused" } });
    expect(await n("SELECT count(*) AS n FROM purchases WHERE user_id = $1", [u.id])).toBe(1);
    // keys belong to the caller: another merchant's "order-1" is its own
    const other2 = await t.merchant();
    const u2 = await t.user(other2.client);
    expect((await other2.client.post("/v1/purchases", purchaseBody(u2.id), { "idempotency-key": "order-1" })).headers.get("idempotent-replayed")).toBeNull();
  });

  it("creates one purchase for 20 concurrent duplicates, and answers them all alike", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    await t.rule(m.client, { name: "capped 1%", kind: "percentage", basis_points: 100, user_daily_cap_wei: (1000n * CBK).toString() });
    const body = purchaseBody(u.id);
    const answers = await Promise.all(Array.from({ length: 20 }, () => m.client.post("/v1/purchases", body, { "idempotency-key": "race-1" })));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(201));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.filter((a) => a.headers.get("idempotent-replayed") === null)).toHaveLength(1);
    expect(await n("SELECT count(*) AS n FROM purchases WHERE user_id = $1", [u.id])).toBe(1);
    expect(await n("SELECT count(*) AS n FROM outbox_events WHERE payload->'payload'->>'user_id' = $1", [u.id])).toBe(1);
    expect(await n("SELECT coalesce(sum(used_wei), 0) AS n FROM cashback_usage WHERE user_id = $1 AND period = 'day'", [u.id])).toBe(Number(CBK));
  });

  it("does the same for the other POSTs (a user here)", async () => {
    const m = await t.merchant();
    const body = { external_id: "once", email: "once@example.com", wallet_address: WALLETS[0] };
    const answers = await Promise.all(Array.from({ length: 20 }, () => m.client.post("/v1/users", body, { "idempotency-key": "user-race" })));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(201));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect((await m.client.post("/v1/users", { ...body, email: "x@example.com" }, { "idempotency-key": "user-race" })).status).toBe(422);
  });

  it("expires keys after the retention", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    const first = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id), { "idempotency-key": "old" }), 201);
    await q("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE principal = $1", [m.id]);
    await t.api.idempotency.prune();
    const second = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id), { "idempotency-key": "old" }), 201);
    expect(second.id).not.toBe(first.id);
  });
});

describe("caps under concurrency", () => {
  const capTest = async (t: TestApi) => {
    const m = await t.merchant();
    const [u, bystander] = [await t.user(m.client), await t.user(m.client)];
    // each $100 purchase wants 10 CBK; the day allows 25 CBK per user
    await t.rule(m.client, { name: "10% capped", kind: "percentage", basis_points: 1000, user_daily_cap_wei: (25n * CBK).toString(), user_monthly_cap_wei: (1000n * CBK).toString() });
    const answers = await Promise.all(Array.from({ length: 20 }, () => m.client.post("/v1/purchases", purchaseBody(u.id))));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(201));
    const paid = answers.map((a) => BigInt(a.body.cashback.amount_wei)).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    expect(paid.slice(0, 3)).toEqual([10n * CBK, 10n * CBK, 5n * CBK]);
    expect(paid.slice(3).every((x) => x === 0n)).toBe(true);
    expect(await n("SELECT sum(amount_wei) AS n FROM cashback_ledger WHERE user_id = $1", [u.id])).toBe(Number(25n * CBK));
    const usage = await q("SELECT period, used_wei FROM cashback_usage WHERE user_id = $1 ORDER BY period", [u.id]);
    expect(usage).toEqual([
      { period: "day", used_wei: (25n * CBK).toString() },
      { period: "month", used_wei: (25n * CBK).toString() },
    ]);
    // the cap is per user
    expect(expectStatus(await m.client.post("/v1/purchases", purchaseBody(bystander.id)), 201).cashback.amount_wei).toBe((10n * CBK).toString());
    // and per UTC day: yesterday's purchase has its own allowance
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();
    expect(expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id, { occurred_at: yesterday })), 201).cashback.amount_wei).toBe((10n * CBK).toString());
  };

  it("never lets 20 parallel purchases of one user exceed the daily cap", async () => {
    await capTest(t);
  });

  it("holds on the locked path too (every purchase written under its user's row lock)", async () => {
    const locked = await startTestApi({ database: t.db, nats: t.nats, env: { API_CAP_OPTIMISTIC_ATTEMPTS: "0" } });
    try {
      await capTest(locked);
      const metrics = await (await fetch(`${locked.baseUrl}/metrics`)).text();
      expect(Number(/^api_purchase_locked_writes_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(20);
    } finally {
      await locked.close();
    }
  });
});

describe("rules through the API", () => {
  it("applies created, changed and disabled rules to the next purchase; priority and stacking", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    const buy = async () => BigInt(expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id)), 201).cashback.amount_wei);
    expect(await buy()).toBe(0n);
    const pct = await t.rule(m.client, { name: "3%", kind: "percentage", basis_points: 300 });
    expect(await buy()).toBe(3n * CBK);
    const fixed = await t.rule(m.client, { name: "fixed 5", kind: "fixed", fixed_amount_wei: (5n * CBK).toString() });
    expect(await buy()).toBe(5n * CBK); // best_of
    expectStatus(await t.admin.patch(`/v1/merchants/${m.id}`, { stacking: "sum" }), 200);
    expect(await buy()).toBe(8n * CBK);
    expectStatus(await m.client.patch(`/v1/rules/${pct.id}`, { priority: 1 }), 200);
    expect(await buy()).toBe(3n * CBK); // the higher priority alone
    const changed = expectStatus(await m.client.patch(`/v1/rules/${pct.id}`, { kind: "fixed", fixed_amount_wei: (2n * CBK).toString() }), 200);
    expect(changed).toMatchObject({ kind: "fixed", basis_points: null, fixed_amount_wei: (2n * CBK).toString() });
    expect(await buy()).toBe(2n * CBK);
    expect(expectStatus(await m.client.post(`/v1/rules/${pct.id}/disable`), 200).enabled).toBe(false);
    expect(await buy()).toBe(5n * CBK);
    expect(expectStatus(await m.client.get("/v1/rules"), 200).data.map((r: { id: string }) => r.id)).toEqual([fixed.id]);
    expect(expectStatus(await m.client.get("/v1/rules?include_disabled=true"), 200).data).toHaveLength(2);
    const withMin = await t.rule(m.client, { name: "big baskets", kind: "fixed", fixed_amount_wei: (50n * CBK).toString(), priority: 5, min_purchase: { amount_minor: 20_000, currency: "EUR" } });
    expect(withMin.min_purchase).toEqual({ amount_minor: 20_000, currency: "EUR" });
    expect(await buy()).toBe(5n * CBK); // $100 < €200
  });

  it("reaches other instances through NOTIFY", async () => {
    const second = await startTestApi({ database: t.db, nats: t.nats });
    try {
      const m = await t.merchant();
      const u = await t.user(m.client);
      const viaSecond = second.as(m.key);
      expect(expectStatus(await viaSecond.post("/v1/purchases", purchaseBody(u.id)), 201).cashback.amount_wei).toBe("0");
      await t.rule(m.client, { name: "7%", kind: "percentage", basis_points: 700 });
      await until("the other instance to see the rule", async () => (await viaSecond.post("/v1/purchases", purchaseBody(u.id))).body.cashback.amount_wei === (7n * CBK).toString(), 10_000);
      // a revoked key stops working there too
      const keys = expectStatus(await t.admin.get(`/v1/merchants/${m.id}/api-keys`), 200);
      expectStatus(await t.admin.post(`/v1/merchants/${m.id}/api-keys/${keys.data[0].id}/revoke`), 200);
      await until("the other instance to refuse the revoked key", async () => (await viaSecond.get("/v1/me")).status === 401, 10_000);
    } finally {
      await second.close();
    }
  });
});

describe("refunds", () => {
  it("claws back each refund's exact share, all of it once fully refunded, and refuses more", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    await t.rule(m.client, { name: "10%", kind: "percentage", basis_points: 1000 });
    const p = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id, { amount_minor: 10_000 })), 201); // 10 CBK
    const shares = [];
    for (const amount of [3_333, 3_333, 3_334]) {
      const r = expectStatus(await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: amount, reason: "returned" }), 201);
      expect(r).toMatchObject({ purchase_id: p.id, amount_minor: amount, clawback_status: "clawback_pending" });
      shares.push(BigInt(r.clawback_wei));
    }
    expect(shares).toEqual([3_333n * 10n ** 15n, 3_333n * 10n ** 15n, 3_334n * 10n ** 15n]);
    expect(shares.reduce((a, b) => a + b)).toBe(10n * CBK);
    const more = await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 1 });
    expect(more.status).toBe(422);
    const view = expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200);
    expect(view).toMatchObject({ refunded_minor: 10_000, cashback: { clawed_back_wei: (10n * CBK).toString() } });
    expect(view.refunds).toHaveLength(3);
    const events = await q("SELECT aggregate_id, payload FROM outbox_events WHERE subject = 'cashback.clawback_requested' AND payload->'payload'->>'purchase_id' = $1 ORDER BY seq", [p.id]);
    expect(events).toHaveLength(3);
    for (const e of events) expect(e.aggregate_id).toBe(p.cashback.entry_id); // ordered after the accrual
    expect(events.map((e) => e.payload.payload.amount_wei)).toEqual(shares.map(String));
  });

  it("never refunds more than the purchase, nor claws back more than its cashback, under concurrent refunds", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    await t.rule(m.client, { name: "7%", kind: "percentage", basis_points: 700 });
    const p = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id, { amount_minor: 9_999 })), 201);
    const cashback = BigInt(p.cashback.amount_wei);
    const answers = await Promise.all(Array.from({ length: 10 }, () => m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 3_000 })));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(3);
    expect(answers.filter((a) => a.status === 422)).toHaveLength(7);
    const clawed = answers.filter((a) => a.status === 201).reduce((s, a) => s + BigInt(a.body.clawback_wei), 0n);
    expect(clawed).toBe((cashback * 9_000n) / 9_999n);
    const last = expectStatus(await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 999 }), 201);
    expect(clawed + BigInt(last.clawback_wei)).toBe(cashback);
    expect(await n("SELECT sum(amount_wei) AS n FROM cashback_ledger WHERE purchase_id = $1 AND kind = 'clawback'", [p.id])).toBe(Number(cashback));
  });

  it("records a refund of a purchase without cashback with no clawback", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    const p = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id)), 201);
    const r = expectStatus(await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 100 }, { "idempotency-key": "r1" }), 201);
    expect(r).toMatchObject({ clawback_wei: "0", clawback_status: "none", clawback_entry_id: null, purchase_refunded_minor: 100 });
    expect((await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 100 }, { "idempotency-key": "r1" })).body).toEqual(r);
    expect(expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200).refunded_minor).toBe(100);
  });
});

describe("reads", () => {
  it("lists a user's purchases and ledger with totals", async () => {
    const m = await t.merchant();
    const u = await t.user(m.client);
    await t.rule(m.client, { name: "1%", kind: "percentage", basis_points: 100 });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id)), 201).id);
    expectStatus(await m.client.post(`/v1/purchases/${ids[0]}/refunds`, { amount_minor: 10_000 }), 201);
    const page = expectStatus(await m.client.get(`/v1/users/${u.id}/purchases?limit=2`), 200);
    expect(page.data.map((p: { id: string }) => p.id)).toEqual([ids[2], ids[1]]);
    const rest = expectStatus(await m.client.get(`/v1/users/${u.id}/purchases?cursor=${page.next_cursor}`), 200);
    expect(rest.data[0]).toMatchObject({ id: ids[0], refunded_minor: 10_000, refunds: [{ clawback_status: "clawback_pending" }] });
    const ledger = expectStatus(await m.client.get(`/v1/users/${u.id}/ledger`), 200);
    expect(ledger.totals).toMatchObject({ pending_wei: (3n * CBK).toString(), clawback_pending_wei: CBK.toString(), minted_wei: "0", net_minted_wei: "0", entries: 4 });
    expect(ledger.entries.data.map((e: { kind: string }) => e.kind)).toEqual(["clawback", "accrual", "accrual", "accrual"]);
    expect(ledger.balance).toMatchObject({ available: false, balance_wei: null }); // no adapter in this test
  });
});
