import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../src/testing.ts";
import { query } from "./pg.ts";

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const migrationsDir = path.join(packageDir, "test/fixtures/migrations");
const PASSWORD = "s3cret-password-never-printed";

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(file: string, args: string[], databaseUrl: string | undefined): Promise<Outcome> {
  const env = { ...process.env, DATABASE_URL: databaseUrl };
  if (databaseUrl === undefined) delete env.DATABASE_URL;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...file.endsWith(".ts") ? ["--import", "tsx"] : [], file, ...args], {
      cwd: packageDir,
      env,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// Trust auth ignores the password, which lets us check it never reaches the output.
const withPassword = (url: string) => {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.toString();
};

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe("cli", () => {
  it("creates the database, applies the migrations, and never prints the password", async () => {
    db = await createTestDatabase("db_cli");
    await db.drop(); // start from a server without the database
    const url = withPassword(db.url);

    const first = await run("src/cli.ts", ["migrate", migrationsDir], url);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toContain(`Created database 127.0.0.1:5432/${db.name}`);
    expect(first.stdout).toContain("Applied 1 migration(s)");
    expect(first.stdout).toContain("20250101000000_init");
    expect(first.stdout + first.stderr).not.toContain(PASSWORD);
    expect(await query(db.url, "SELECT migration_name FROM _prisma_migrations")).toEqual([{ migration_name: "20250101000000_init" }]);

    const second = await run("src/cli.ts", ["migrate", migrationsDir], url);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`127.0.0.1:5432/${db.name} is up to date\n`);
  });

  it("runs as the cashback-migrate bin", async () => {
    db = await createTestDatabase("db_cli_bin");
    const result = await run("bin/cashback-migrate.js", [migrationsDir], db.url);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Applied 1 migration(s)");
  });

  it("exits 1 with the reason when a migration fails, without the password", async () => {
    db = await createTestDatabase("db_cli_fail");
    await query(db.url, "CREATE TABLE purchases (id INT)"); // the init migration will collide with it
    const result = await run("src/cli.ts", ["migrate", migrationsDir], withPassword(db.url));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Migration 20250101000000_init failed and was rolled back: relation "purchases" already exists');
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
  });

  it("exits 2 on bad usage or a missing DATABASE_URL", async () => {
    expect((await run("src/cli.ts", ["frobnicate"], "postgresql://x@127.0.0.1/x")).code).toBe(2);
    const noUrl = await run("src/cli.ts", ["migrate", migrationsDir], undefined);
    expect(noUrl).toMatchObject({ code: 2, stderr: "DATABASE_URL is not set\n" });
  });
});
