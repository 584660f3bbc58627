import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { SendStore } from "../src/transactions/tx-store.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("adapter_send_store");
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
