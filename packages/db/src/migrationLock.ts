import type { ClientBase } from "pg";

// The key Prisma Migrate itself locks on (prisma-engines, flavour/postgres.rs). Sharing it
// means this runner and a real `prisma migrate deploy` also exclude each other.
const PRISMA_MIGRATE_LOCK_KEY = 72707369;

/**
 * Takes the session-level advisory lock, waiting for whoever holds it. Session-level, not
 * transaction-level, because each migration commits its own transaction while we hold it.
 */
export async function acquireMigrationLock(client: ClientBase, onWait: () => void): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1) AS locked", [
    PRISMA_MIGRATE_LOCK_KEY,
  ]);
  if (rows[0]?.locked) return;
  onWait();
  // Bounded: a holder stuck behind open transactions must not hang every other start-up.
  await client.query(`SET lock_timeout = '${LOCK_WAIT_SECONDS}s'`);
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PRISMA_MIGRATE_LOCK_KEY]);
  } catch (err) {
    if ((err as { code?: string }).code !== "55P03") throw err; // lock_not_available
    throw new Error(`another process has held the migration lock for over ${LOCK_WAIT_SECONDS} s; is a migration stuck?`, { cause: err });
  } finally {
    await client.query("RESET lock_timeout");
  }
}

const LOCK_WAIT_SECONDS = 120;

export async function releaseMigrationLock(client: ClientBase): Promise<void> {
  await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_MIGRATE_LOCK_KEY]);
}
