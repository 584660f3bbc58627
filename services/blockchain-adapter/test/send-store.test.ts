import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { createLogger } from "@cashback/runtime";
import { migrationsDir } from "../src/app.ts";
import { parseMintRequest } from "../src/mints/mint-request.ts";
import { MintCallStore, SendStore } from "../src/transactions/tx-store.ts";
import { migrate } from "@cashback/db";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("adapter_send_store");
  await migrate({ connectionString: db.url, migrationsDir, logger: createLogger("test", "silent") });
});
afterAll(async () => {
  await db?.drop();
});

it("a transaction whose session ends while it is held (a Postgres restart during a broadcast) fails instead of crashing the process; the next one works", async () => {
  const store = new SendStore(db.url, 2);
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    const failed = store.transaction(async (c) => {
      const { rows } = await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      // What a restart does to every session: FATAL 57P01, while this one waits on the chain.
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
      for (;;) {
        await c.query("SELECT 1"); // until the client notices: then it throws
        await sleep(20);
      }
    });
    await expect(failed).rejects.toThrow(/terminat|not queryable/i);
    expect(await store.transaction(async (c) => (await c.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one)).toBe(1);
  } finally {
    await admin.end();
    await store.close();
  }
});

const to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const request = (key: string, amountWei = "5") => parseMintRequest({ idempotencyKey: key, to, amountWei, metadata: {} });

it("MintCallStore.record: new keys inserted, known ones returned as stored, and none inserted when one is a clawback's", async () => {
  const store = new MintCallStore(db.url, 2);
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    const first = await store.record([request("rec-1"), request("rec-2")]);
    expect(first).toEqual({ fresh: new Set(["rec-1", "rec-2"]), stored: new Map() });
    const again = await store.record([request("rec-2", "9"), request("rec-3")]);
    expect(again.fresh).toEqual(new Set(["rec-3"]));
    expect(again.stored).toEqual(new Map([["rec-2", { toAddress: to, amountWei: 5n }]]));
    await admin.query(`INSERT INTO clawbacks (idempotency_key, ref_id, from_address, amount_wei) VALUES ('rec-cb', $1, $2, 1)`, ["0x" + "ab".repeat(32), to]);
    const clash = await store.record([request("rec-4"), request("rec-cb")]);
    expect(clash.clash).toBe("rec-cb");
    expect((await admin.query(`SELECT idempotency_key FROM mints WHERE idempotency_key IN ('rec-4', 'rec-cb')`)).rowCount).toBe(0);
    const [out] = await store.outcomes(["rec-1"]);
    expect(out).toMatchObject({ idempotencyKey: "rec-1", status: "PENDING", transaction: null });
  } finally {
    await admin.end();
    await store.close();
  }
});

it("SendStore.confirmMinted: one statement for the usual receipt; anything else (a mint not in its events, a sibling on its nonce) is left to the full path", async () => {
  const store = new SendStore(db.url, 2);
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const tx = async (hash: string, nonce: number, keys: string[]) => {
    const { rows } = await admin.query<{ id: string }>(
      `INSERT INTO blockchain_transactions (chain_id, tx_hash, from_address, to_address, nonce, kind, max_fee_per_gas, max_priority_fee_per_gas) VALUES (31337, $1, $2, $2, $3, 'mint_batch', 1, 1) RETURNING id::text`,
      [hash, to, nonce],
    );
    const calls = new MintCallStore(db.url, 1);
    await calls.record(keys.map((k) => request(k)));
    await calls.close();
    await admin.query(`UPDATE mints SET status = 'SUBMITTED', transaction_id = $1 WHERE idempotency_key = ANY($2)`, [rows[0]!.id, keys]);
    return BigInt(rows[0]!.id);
  };
  const receipt = { blockNumber: 7n, blockHash: ("0x" + "cd".repeat(32)) as `0x${string}`, gasUsed: 100n };
  const status = async (key: string) => (await admin.query<{ status: string }>(`SELECT status::text FROM mints WHERE idempotency_key = $1`, [key])).rows[0]!.status;
  try {
    const ok = await tx("0x" + "01".repeat(32), 1, ["cm-1", "cm-2"]);
    expect(new Set(await store.confirmMinted(ok, receipt, [request("cm-1").mintId, request("cm-2").mintId]))).toEqual(new Set(["cm-1", "cm-2"]));
    expect([await status("cm-1"), await status("cm-2")]).toEqual(["CONFIRMED", "CONFIRMED"]);
    expect(await store.confirmMinted(ok, receipt, [])).toBeUndefined(); // already recorded

    const partial = await tx("0x" + "02".repeat(32), 2, ["cm-3", "cm-4"]);
    expect(await store.confirmMinted(partial, receipt, [request("cm-3").mintId])).toBeUndefined();
    expect([await status("cm-3"), await status("cm-4")]).toEqual(["SUBMITTED", "SUBMITTED"]);

    const replaced = await tx("0x" + "03".repeat(32), 3, ["cm-5"]);
    await tx("0x" + "04".repeat(32), 3, []);
    expect(await store.confirmMinted(replaced, receipt, [request("cm-5").mintId])).toBeUndefined();
    expect(await status("cm-5")).toBe("SUBMITTED");
  } finally {
    await admin.end();
    await store.close();
  }
});
