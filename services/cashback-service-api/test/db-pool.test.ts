import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { waitFor } from "@cashback/testing";
import { createPool } from "../src/db.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase("db_pool");
});
afterAll(async () => {
  await db?.drop();
});

it("a checked-out client whose server session ends between queries fails its next query instead of crashing the process", async () => {
  const pool = createPool(db.url, 3);
  try {
    const held = await pool.connect();
    await held.query("BEGIN");
    const { rows } = await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    // What a Postgres restart does to every session: FATAL 57P01, sent while this one is idle.
    await pool.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    const err = await waitFor("the held client to notice", () => held.query("SELECT 1").then(() => false, (e: Error) => e));
    expect(String(err)).toMatch(/terminat|not queryable/i);
    held.release(err);
    expect((await pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  } finally {
    await pool.end();
  }
});
