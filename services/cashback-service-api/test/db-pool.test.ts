import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { endHeldSession } from "@cashback/testing";
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
    expect(String(await endHeldSession(pool))).toMatch(/terminat|not queryable/i);
    expect((await pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
  } finally {
    await pool.end();
  }
});
