import { randomUUID } from "node:crypto";
import type { ClientBase } from "pg";

// Prisma's own DDL for the history table (prisma-engines, sql-schema-connector,
// flavour/postgres.rs `create_migrations_table`), so `prisma migrate deploy/status`
// on a machine with the schema engine reads what we write. IF NOT EXISTS is ours: the
// table may predate us, and we only ever run it while holding the migration lock.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`;

/** A `_prisma_migrations` row that still counts: rows marked rolled back are ignored, as Prisma does. */
export interface MigrationRecord {
  migrationName: string;
  checksum: string;
  finishedAt: Date | null;
}

export async function createMigrationsTable(client: ClientBase): Promise<void> {
  await client.query(CREATE_MIGRATIONS_TABLE);
}

export async function listMigrationRecords(client: ClientBase): Promise<MigrationRecord[]> {
  const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
    `SELECT migration_name, checksum, finished_at
       FROM _prisma_migrations
      WHERE rolled_back_at IS NULL
      ORDER BY started_at, migration_name`,
  );
  return rows.map((row) => ({ migrationName: row.migration_name, checksum: row.checksum, finishedAt: row.finished_at }));
}

/**
 * Records a migration applied in the caller's transaction. Prisma counts statements in
 * applied_steps_count but runs a whole script as one step on Postgres, so a finished
 * migration always has 1. started_at is the transaction start, finished_at the wall clock now.
 */
export async function recordAppliedMigration(client: ClientBase, name: string, checksum: string): Promise<void> {
  await client.query(
    `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
     VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
    [randomUUID(), checksum, name],
  );
}
