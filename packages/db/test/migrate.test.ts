import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { migrate, MigrationError } from "../src/index.ts";
import { createTestDatabase, type TestDatabase } from "../src/testing.ts";
import { makeMigrationsDir, type MigrationsDir } from "./migrationsDir.ts";
import { query } from "./pg.ts";

const FIRST = "20240101000000_create_accounts";
const SECOND = "20240102000000_add_balance";
const THIRD = "20240103000000_seed";

// Each depends on the one before, so applying them out of order fails.
const MIGRATIONS = {
  [FIRST]: `CREATE TABLE accounts (id INTEGER PRIMARY KEY);\n`,
  [SECOND]: `ALTER TABLE accounts ADD COLUMN balance INTEGER NOT NULL DEFAULT 0;\n`,
  [THIRD]: `INSERT INTO accounts (id, balance) VALUES (1, 10);\n`,
};

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

let db: TestDatabase;
let dir: MigrationsDir;

beforeEach(async () => {
  db = await createTestDatabase("db_migrate");
  dir = await makeMigrationsDir(MIGRATIONS);
});

afterEach(async () => {
  await db.drop();
  await dir.cleanup();
});

const rows = () => query<MigrationRow>(db.url, "SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name");
const run = () => migrate({ connectionString: db.url, migrationsDir: dir.path });

describe("migrate", () => {
  it("applies migrations in name order and records them as Prisma does", async () => {
    const logged: string[] = [];
    const result = await migrate({ connectionString: db.url, migrationsDir: dir.path, logger: { info: (m) => logged.push(m) } });

    expect(result.applied).toEqual([FIRST, SECOND, THIRD]);
    expect(await query(db.url, "SELECT id, balance FROM accounts")).toEqual([{ id: 1, balance: 10 }]);

    const recorded = await rows();
    expect(recorded.map((r) => r.migration_name)).toEqual([FIRST, SECOND, THIRD]);
    for (const row of recorded) {
      const bytes = await readFile(path.join(dir.path, row.migration_name, "migration.sql"));
      expect(row.checksum).toBe(sha256(bytes));
      expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
      expect(row.applied_steps_count).toBe(1);
      expect(row.logs).toBeNull();
      expect(row.rolled_back_at).toBeNull();
    }
    expect(logged).toContain(`Applying migration ${FIRST}`);
  });

  it("creates _prisma_migrations with Prisma's exact columns", async () => {
    await run();
    const columns = await query(
      db.url,
      `SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default
         FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns).toEqual([
      { column_name: "id", data_type: "character varying", len: 36, is_nullable: "NO", column_default: null },
      { column_name: "checksum", data_type: "character varying", len: 64, is_nullable: "NO", column_default: null },
      { column_name: "finished_at", data_type: "timestamp with time zone", len: null, is_nullable: "YES", column_default: null },
      { column_name: "migration_name", data_type: "character varying", len: 255, is_nullable: "NO", column_default: null },
      { column_name: "logs", data_type: "text", len: null, is_nullable: "YES", column_default: null },
      { column_name: "rolled_back_at", data_type: "timestamp with time zone", len: null, is_nullable: "YES", column_default: null },
      { column_name: "started_at", data_type: "timestamp with time zone", len: null, is_nullable: "NO", column_default: "now()" },
      { column_name: "applied_steps_count", data_type: "integer", len: null, is_nullable: "NO", column_default: "0" },
    ]);
    const [pk] = await query<{ column: string }>(
      db.url,
      `SELECT a.attname AS column FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = '_prisma_migrations'::regclass AND i.indisprimary`,
    );
    expect(pk).toEqual({ column: "id" });
  });

  it("applies nothing on a second run, and only the new migration after one is added", async () => {
    await run();
    const before = await rows();

    expect(await run()).toEqual({ applied: [] });
    expect(await rows()).toEqual(before);

    const FOURTH = "20240104000000_more";
    await dir.write(FOURTH, "INSERT INTO accounts (id) VALUES (2);");
    expect(await run()).toEqual({ applied: [FOURTH] });
    expect(await query(db.url, "SELECT count(*)::int AS n FROM accounts")).toEqual([{ n: 2 }]);
  });

  it("refuses to run when an applied migration's file changed, and applies nothing", async () => {
    await run();
    await dir.write(SECOND, "ALTER TABLE accounts ADD COLUMN balance BIGINT NOT NULL DEFAULT 0;\n");
    await dir.write("20240104000000_pending", "CREATE TABLE pending (id INT);");

    const error = await run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).migrationName).toBe(SECOND);
    expect((error as Error).message).toContain(`Migration ${SECOND} was modified after it was applied`);
    expect(await query(db.url, "SELECT to_regclass('pending') AS t")).toEqual([{ t: null }]);
  });

  it("accepts a file whose only change is LF -> CRLF, as Prisma does", async () => {
    await run();
    await dir.write(SECOND, MIGRATIONS[SECOND].replaceAll("\n", "\r\n"));
    expect(await run()).toEqual({ applied: [] });
  });

  it("refuses to run when an applied migration's folder is missing", async () => {
    await run();
    await dir.remove(FIRST);
    await expect(run()).rejects.toThrow(`Migration ${FIRST} is recorded as applied in the database but its folder is missing`);
  });

  it("refuses to run when an earlier attempt failed (finished_at and rolled_back_at NULL)", async () => {
    await run();
    await query(
      db.url,
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs) VALUES ('00000000-0000-4000-8000-000000000000', 'x', '20240104000000_broken', 'boom')`,
    );
    await dir.write("20240104000000_broken", "SELECT 1;");
    await expect(run()).rejects.toThrow("Migration 20240104000000_broken has a failed attempt recorded");
  });

  it("ignores rows marked rolled back and applies that migration again", async () => {
    await query(
      db.url,
      `CREATE TABLE _prisma_migrations (
         id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ,
         migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ,
         started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0);
       INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, rolled_back_at)
       VALUES ('00000000-0000-4000-8000-000000000000', 'stale', '${FIRST}', 'failed once', now());`,
    );
    expect((await run()).applied).toEqual([FIRST, SECOND, THIRD]);
    expect((await rows()).filter((r) => r.migration_name === FIRST)).toHaveLength(2);
  });

  it("rolls back a failing migration completely, names it, and releases the lock", async () => {
    await dir.write(SECOND, "CREATE TABLE half_done (id INT);\nINSERT INTO no_such_table VALUES (1);\n");

    const error = await run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toContain(`Migration ${SECOND} failed`);
    expect((error as Error).message).toContain('relation "no_such_table" does not exist');

    // The first migration stays applied; nothing of the second survives; the third never ran.
    expect((await rows()).map((r) => r.migration_name)).toEqual([FIRST]);
    expect(await query(db.url, "SELECT to_regclass('half_done') AS t")).toEqual([{ t: null }]);
    expect(await query(db.url, "SELECT count(*)::int AS n FROM accounts")).toEqual([{ n: 0 }]);
    // Another session can take the lock at once: it was released.
    expect(await query(db.url, "SELECT pg_try_advisory_lock(72707369) AS locked")).toEqual([{ locked: true }]);

    // Fixing the file lets the next run pick up where it stopped.
    await dir.write(SECOND, MIGRATIONS[SECOND]);
    expect((await run()).applied).toEqual([SECOND, THIRD]);
  });

  it("applies each migration exactly once when four processes migrate a fresh database at once", async () => {
    // Non-idempotent on purpose: a second application would fail (CREATE TABLE) or double-count (INSERT).
    await dir.write(FIRST, "CREATE TABLE accounts (id INTEGER PRIMARY KEY);\nSELECT pg_sleep(0.2);\n");

    const results = await Promise.all(Array.from({ length: 4 }, () => run()));

    expect(results.flatMap((r) => r.applied).sort()).toEqual([FIRST, SECOND, THIRD]);
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect((await rows()).map((r) => r.migration_name)).toEqual([FIRST, SECOND, THIRD]);
    expect(await query(db.url, "SELECT count(*)::int AS n FROM accounts")).toEqual([{ n: 1 }]);
  });

  it("waits for a lock held by another session and says so", async () => {
    const pg = (await import("pg")).default;
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query("SELECT pg_advisory_lock(72707369)");

    const logged: string[] = [];
    let settled = false;
    const running = migrate({ connectionString: db.url, migrationsDir: dir.path, logger: { info: (m) => logged.push(m) } }).finally(
      () => (settled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    expect(logged).toEqual(["Waiting for another process to finish migrating"]);

    await holder.end(); // ending the session frees its lock
    expect((await running).applied).toEqual([FIRST, SECOND, THIRD]);
  });
});

describe("migrations directory", () => {
  it("refuses a folder that is not <yyyymmddhhmmss>_<name>", async () => {
    await dir.write("not_a_migration", "SELECT 1;");
    await expect(run()).rejects.toThrow('Unexpected folder "not_a_migration"');
  });

  it("refuses a migration folder without migration.sql", async () => {
    await dir.remove(THIRD);
    const { mkdir } = await import("node:fs/promises");
    await mkdir(path.join(dir.path, THIRD));
    await expect(run()).rejects.toThrow(`Migration ${THIRD} has no readable migration.sql`);
  });

  it("refuses migrations written for another provider", async () => {
    await writeFile(path.join(dir.path, "migration_lock.toml"), 'provider = "mysql"\n');
    await expect(run()).rejects.toThrow('names provider "mysql", expected "postgresql"');
  });

  it("refuses a directory that does not exist", async () => {
    await expect(migrate({ connectionString: db.url, migrationsDir: path.join(dir.path, "nope") })).rejects.toThrow(
      "Cannot read migrations directory",
    );
  });
});
