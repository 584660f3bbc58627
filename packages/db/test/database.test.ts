import { afterEach, describe, expect, it } from "vitest";
import { describeTarget } from "../src/connectionString.ts";
import { archiveDatabase, ensureDatabase } from "../src/index.ts";
import { createTestDatabase, type TestDatabase } from "../src/testing.ts";
import { query } from "./pg.ts";

const SERVER = process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const exists = async (name: string) =>
  (await query<{ n: number }>(SERVER, "SELECT count(*)::int AS n FROM pg_database WHERE datname = $1", [name]))[0]!.n === 1;

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

// A name that is free on the server: create a test database, then drop it.
async function freeDatabase(prefix: string): Promise<TestDatabase> {
  db = await createTestDatabase(prefix);
  await db.drop();
  expect(await exists(db.name)).toBe(false);
  return db;
}

describe("ensureDatabase", () => {
  it("creates a missing database, then is a no-op", async () => {
    const { name, url } = await freeDatabase("db_ensure");

    expect(await ensureDatabase(url)).toEqual({ created: true });
    expect(await exists(name)).toBe(true);
    expect(await query(url, "SELECT current_database() AS db")).toEqual([{ db: name }]);

    expect(await ensureDatabase(url)).toEqual({ created: false });
  });

  it("lets several processes race to create the same database", async () => {
    const { name, url } = await freeDatabase("db_ensure_race");

    const results = await Promise.all(Array.from({ length: 6 }, () => ensureDatabase(url)));

    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await exists(name)).toBe(true);
  });

  it("handles a name that needs quoting", async () => {
    db = await createTestDatabase("db_Quote\"d");
    await db.drop();
    const url = db.url;
    expect(db.name).toMatch(/^db_quote_d_/);
    expect(await ensureDatabase(url)).toEqual({ created: true });
    expect(await exists(db.name)).toBe(true);
  });

  it("reports errors other than a missing database", async () => {
    await expect(ensureDatabase("postgresql://postgres@127.0.0.1:1/whatever")).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("archiveDatabase (npm start with a new chain)", () => {
  it("moves the database aside as <name>_previous with its rows, replacing an older one; nothing to move is a no-op", async () => {
    db = await createTestDatabase("db_archive");
    const previous = `${db.name}_previous`;
    const previousUrl = db.url.replace(`/${db.name}`, `/${previous}`);
    try {
      await query(db.url, "CREATE TABLE books (n int); INSERT INTO books VALUES (1)");
      expect(await archiveDatabase(db.url)).toBe(previous);
      expect(await exists(db.name)).toBe(false);
      expect(await query(previousUrl, "SELECT n FROM books")).toEqual([{ n: 1 }]);

      // The next run's books replace the older archive.
      expect(await ensureDatabase(db.url)).toEqual({ created: true });
      await query(db.url, "CREATE TABLE books (n int); INSERT INTO books VALUES (2)");
      expect(await archiveDatabase(db.url)).toBe(previous);
      expect(await query(previousUrl, "SELECT n FROM books")).toEqual([{ n: 2 }]);

      expect(await archiveDatabase(db.url)).toBeUndefined();
    } finally {
      await query(SERVER, `DROP DATABASE IF EXISTS "${previous}" WITH (FORCE)`);
    }
  });
});

describe("createTestDatabase", () => {
  it("creates distinct empty databases and drops them even while connected", async () => {
    const a = await createTestDatabase("db_tmp");
    const b = await createTestDatabase("db_tmp");
    expect(a.name).not.toBe(b.name);
    expect(await exists(a.name)).toBe(true);

    const pg = (await import("pg")).default;
    const lingering = new pg.Client({ connectionString: a.url });
    lingering.on("error", () => {});
    await lingering.connect();

    await a.drop();
    await b.drop();
    expect(await exists(a.name)).toBe(false);
    expect(await exists(b.name)).toBe(false);
  });
});

describe("describeTarget", () => {
  it("keeps host, port and database, and drops credentials and parameters", () => {
    expect(describeTarget("postgresql://svc:s3cret@db.internal:6543/purchases?sslmode=require")).toBe("db.internal:6543/purchases");
    expect(describeTarget("postgres://svc@localhost/rules")).toBe("localhost:5432/rules");
  });
});
