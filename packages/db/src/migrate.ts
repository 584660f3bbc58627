import pg from "pg";
import { scriptMatchesChecksum } from "./checksum.ts";
import { acquireMigrationLock, releaseMigrationLock } from "./migrationLock.ts";
import { type MigrationFile, readMigrationsDirectory } from "./migrationsDirectory.ts";
import { createMigrationsTable, listMigrationRecords, type MigrationRecord, recordAppliedMigration } from "./migrationsTable.ts";

export interface MigrateLogger {
  info(message: string): void;
}

export interface MigrateOptions {
  connectionString: string;
  /** Prisma's layout: `<migrationsDir>/<yyyymmddhhmmss>_<name>/migration.sql` (+ migration_lock.toml). */
  migrationsDir: string;
  logger?: MigrateLogger;
}

export interface MigrateResult {
  /** Names of the migrations this call applied, in order; empty when the database was up to date. */
  applied: string[];
}

/** Raised when the history is inconsistent or a migration's SQL fails; names the migration. */
export class MigrationError extends Error {
  constructor(
    readonly migrationName: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "MigrationError";
  }
}

const silent: MigrateLogger = { info: () => {} };

/**
 * Applies the pending migrations of `migrationsDir`, each in its own transaction, recording
 * them in `_prisma_migrations` exactly as Prisma Migrate does. Safe to call from several
 * processes at once: an advisory lock serialises them, so each migration runs once.
 */
export async function migrate({ connectionString, migrationsDir, logger = silent }: MigrateOptions): Promise<MigrateResult> {
  // Read the files before touching the database so a bad folder fails fast.
  const migrations = await readMigrationsDirectory(migrationsDir);

  const client = new pg.Client({ connectionString });
  // A dropped connection also fails the pending query, which is where we report it; without a
  // listener the 'error' event would crash the process instead.
  client.on("error", () => {});
  await client.connect();
  try {
    await acquireMigrationLock(client, () => logger.info("Waiting for another process to finish migrating"));
    try {
      await createMigrationsTable(client);
      const records = await listMigrationRecords(client);
      checkHistory(migrations, records);

      const appliedNames = new Set(records.map((record) => record.migrationName));
      const applied: string[] = [];
      for (const migration of migrations) {
        if (appliedNames.has(migration.name)) continue;
        await applyMigration(client, migration, logger);
        applied.push(migration.name);
      }
      return { applied };
    } finally {
      // If the unlock fails the connection is gone, and the session's lock went with it;
      // don't let that mask the error that got us here.
      await releaseMigrationLock(client).catch(() => {});
    }
  } finally {
    await client.end();
  }
}

// Refuses to go on when the database's history does not match the files: something was
// edited, deleted, or half-applied, and a human has to decide what is right.
function checkHistory(migrations: MigrationFile[], records: MigrationRecord[]): void {
  const byName = new Map(migrations.map((migration) => [migration.name, migration]));
  for (const record of records) {
    const name = record.migrationName;
    if (record.finishedAt === null) {
      throw new MigrationError(
        name,
        `Migration ${name} has a failed attempt recorded in _prisma_migrations (finished_at and rolled_back_at are NULL). ` +
          "Repair the database by hand, then mark the row rolled back (set rolled_back_at) or finished.",
      );
    }
    const file = byName.get(name);
    if (!file) {
      throw new MigrationError(
        name,
        `Migration ${name} is recorded as applied in the database but its folder is missing from the migrations directory`,
      );
    }
    if (!scriptMatchesChecksum(file.script, record.checksum)) {
      throw new MigrationError(
        name,
        `Migration ${name} was modified after it was applied (checksum in database ${record.checksum}, ` +
          `on disk ${file.checksum}). Restore the original file and put the change in a new migration.`,
      );
    }
  }
}

async function applyMigration(client: pg.Client, migration: MigrationFile, logger: MigrateLogger): Promise<void> {
  logger.info(`Applying migration ${migration.name}`);
  const started = performance.now();
  await client.query("BEGIN");
  try {
    // No parameters, so pg uses the simple query protocol, which accepts many statements.
    await client.query(migration.script.toString("utf8"));
    await recordAppliedMigration(client, migration.name, migration.checksum);
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw new MigrationError(migration.name, `Migration ${migration.name} failed and was rolled back: ${describePgError(error)}`, {
      cause: error,
    });
  }
  logger.info(`Applied migration ${migration.name} in ${Math.round(performance.now() - started)} ms`);
}

function describePgError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, detail, hint } = error as Error & { code?: string; detail?: string; hint?: string };
  return [error.message, code && `(SQLSTATE ${code})`, detail && `Detail: ${detail}`, hint && `Hint: ${hint}`]
    .filter(Boolean)
    .join(" ");
}
