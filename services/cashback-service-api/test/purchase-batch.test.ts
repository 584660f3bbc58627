import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { migrate } from "@cashback/db";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { createLogger } from "@cashback/runtime";
import { migrationsDir } from "../src/app.ts";
import { createPool } from "../src/db.ts";
import { PurchaseBatcher, writePurchases, type PurchaseRow } from "../src/purchases/purchase-batch.ts";
import { uuidv7 } from "../src/support/uuid.ts";

const logger = createLogger("batch-test", "silent");
const WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
let db: TestDatabase;
let pool: pg.Pool;
let merchant: string;

beforeAll(async () => {
  db = await createTestDatabase("api_batch");
  await migrate({ connectionString: db.url, migrationsDir });
  pool = createPool(db.url, 6);
  merchant = uuidv7();
  await pool.query("INSERT INTO merchants (id, name) VALUES ($1, 'm')", [merchant]);
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function newUser(): Promise<string> {
  const id = uuidv7();
  await pool.query("INSERT INTO users (id, merchant_id, external_id, email, wallet_address) VALUES ($1, $2, $3, 'a@example.com', $4)", [id, merchant, id, WALLET]);
  return id;
}

function row(userId: string, over: Partial<PurchaseRow> = {}): PurchaseRow {
  const entryId = uuidv7();
  const eventId = randomUUID();
  return {
    purchaseId: uuidv7(),
    merchantId: merchant,
    userId,
    category: "groceries",
    amountMinor: 1_000n,
    currency: "USD",
    occurredAt: new Date(),
    cashbackWei: 5n,
    rulesJson: "[]",
    createdAt: new Date(),
    responseJson: '{"ok":true}',
    accrual: { entryId, wallet: WALLET, eventId, eventJson: JSON.stringify({ id: eventId }), headersJson: "{}" },
    usage: [],
    ...over,
  };
}

const count = async (sql: string, values: unknown[]) => Number((await pool.query(sql, values)).rows[0].n);

describe("the purchase statement for many purchases", () => {
  it("decides each purchase on its own: guard, Idempotency-Key, cashback or none", async () => {
    const [u1, u2, u3] = [await newUser(), await newUser(), await newUser()];
    await pool.query("UPDATE users SET cap_version = 7 WHERE id = $1", [u2]);
    const rule = uuidv7();
    const taken = row(u3, { idempotency: { scope: merchant, key: "taken", path: "/v1/purchases", hash: "h" } });
    expect(await writePurchases(pool, [taken])).toEqual(["written"]);

    const rows = [
      row(u1, { guardVersion: 0n, usage: [{ ruleId: rule, period: "day", periodStart: "2026-11-28", amountWei: 5n }, { ruleId: rule, period: "month", periodStart: "2026-11-01", amountWei: 5n }] }), // version current
      row(u2, { guardVersion: 6n, usage: [{ ruleId: rule, period: "day", periodStart: "2026-11-28", amountWei: 5n }] }), // stale
      row(u3, { idempotency: { scope: merchant, key: "taken", path: "/v1/purchases", hash: "h" } }), // key of an earlier purchase
      row(u3, { idempotency: { scope: merchant, key: "fresh", path: "/v1/purchases", hash: "h" } }),
      row(u3, { cashbackWei: 0n, accrual: undefined }), // no cashback: no entry, no event
    ];
    expect(await writePurchases(pool, rows)).toEqual(["written", "usage-changed", "key-taken", "written", "written"]);

    const written = [rows[0]!, rows[3]!, rows[4]!].map((r) => r.purchaseId);
    const skipped = [rows[1]!, rows[2]!].map((r) => r.purchaseId);
    expect(await count("SELECT count(*) AS n FROM purchases WHERE id = ANY($1)", [written])).toBe(3);
    expect(await count("SELECT count(*) AS n FROM purchases WHERE id = ANY($1)", [skipped])).toBe(0);
    expect(await count("SELECT count(*) AS n FROM cashback_ledger WHERE purchase_id = ANY($1)", [written])).toBe(2);
    expect(await count("SELECT count(*) AS n FROM outbox_events WHERE id = ANY($1)", [rows.map((r) => r.accrual?.eventId).filter(Boolean)])).toBe(2);
    expect((await pool.query("SELECT id, cap_version FROM users WHERE id = ANY($1) ORDER BY id", [[u1, u2]])).rows.map((r) => r.cap_version)).toEqual(["1", "7"]);
    expect((await pool.query("SELECT user_id, period, used_wei FROM cashback_usage ORDER BY period")).rows).toEqual([
      { user_id: u1, period: "day", used_wei: "5" },
      { user_id: u1, period: "month", used_wei: "5" },
    ]);
    expect(await count("SELECT count(*) AS n FROM idempotency_keys WHERE key = ANY($1)", [["taken", "fresh"]])).toBe(2);
  });
});

describe("PurchaseBatcher", () => {
  it("writes purchases arriving while a statement runs together in the next one", async () => {
    const sizes: number[] = [];
    const batcher = new PurchaseBatcher({ pool, maxBatch: 64, maxInFlight: 1, logger, onBatch: (n) => sizes.push(n) });
    const user = await newUser();
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => batcher.write(row(user))));
    expect(outcomes).toEqual(Array(10).fill("written"));
    expect(sizes).toEqual([1, 9]);
  });

  it("never puts two purchases with one Idempotency-Key, or two guarded purchases of one user, in one statement", async () => {
    const sizes: number[] = [];
    const batcher = new PurchaseBatcher({ pool, maxBatch: 64, maxInFlight: 1, logger, onBatch: (n) => sizes.push(n) });
    const [a, b] = [await newUser(), await newUser()];
    const key = { scope: merchant, key: `dup-${randomUUID()}`, path: "/v1/purchases", hash: "h" };
    const outcomes = await Promise.all([
      batcher.write(row(a)), // alone: nothing was running
      batcher.write(row(a, { idempotency: key })),
      batcher.write(row(b, { idempotency: key })), // same key: next statement, then taken
      batcher.write(row(a, { guardVersion: 0n })),
      batcher.write(row(a, { guardVersion: 0n })), // same user guarded: next statement, then stale
      batcher.write(row(b, { guardVersion: 0n })),
    ]);
    expect(sizes).toEqual([1, 3, 2]);
    expect(outcomes).toEqual(["written", "written", "key-taken", "written", "usage-changed", "written"]);
  });

  it("lets a purchase that can not be written fail alone", async () => {
    const batcher = new PurchaseBatcher({ pool, maxBatch: 64, maxInFlight: 1, logger });
    const user = await newUser();
    const first = batcher.write(row(user));
    const good = row(user);
    const bad = row(uuidv7()); // no such user: the foreign key refuses it
    const results = await Promise.allSettled([first, batcher.write(good), batcher.write(bad)]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect(await count("SELECT count(*) AS n FROM purchases WHERE id = $1", [good.purchaseId])).toBe(1);
    expect(await count("SELECT count(*) AS n FROM purchases WHERE id = $1", [bad.purchaseId])).toBe(0);
  });
});
