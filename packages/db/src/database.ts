import pg from "pg";
import { databaseNameOf, quoteIdentifier, withDatabaseName } from "./connectionString.ts";

const INVALID_CATALOG_NAME = "3D000"; // database does not exist
// Losing the race: 42P04 when the other CREATE DATABASE had already committed, but 23505 on
// pg_database_datname_index when both run at the same moment (measured on Postgres 15:
// every loser of 8 simultaneous creates got 23505).
const DUPLICATE_DATABASE = "42P04";
const UNIQUE_VIOLATION = "23505";

/**
 * Creates the database the URL names if it does not exist, so a service started with its
 * defaults works on a fresh Postgres. Several processes may call it at once: the losers of
 * the CREATE DATABASE race see "already exists" and treat it as success.
 */
export async function ensureDatabase(connectionString: string): Promise<{ created: boolean }> {
  // The common case needs no access to any other database: just connect.
  if (await canConnect(connectionString)) return { created: false };

  const name = databaseNameOf(connectionString);
  try {
    await withMaintenanceClient(connectionString, (client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}`));
    return { created: true };
  } catch (error) {
    const code = pgErrorCode(error);
    if (code === DUPLICATE_DATABASE || code === UNIQUE_VIOLATION) return { created: false };
    throw new Error(`Could not create database "${name}": ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Moves a database aside as `<name>_previous` (replacing an older one), so the next start
 * creates it afresh while the old rows stay readable. Returns the new name, or undefined when
 * there was nothing to move. Fails when a session still uses the database (nothing is forced).
 */
export async function archiveDatabase(connectionString: string): Promise<string | undefined> {
  const name = databaseNameOf(connectionString);
  const previous = `${name}_previous`;
  return withMaintenanceClient(connectionString, async (client) => {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount) return undefined;
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(previous)}`);
    await client.query(`ALTER DATABASE ${quoteIdentifier(name)} RENAME TO ${quoteIdentifier(previous)}`);
    return previous;
  });
}

/** Runs `work` on a connection to the server's maintenance database (`postgres`, else `template1`). */
export async function withMaintenanceClient<T>(connectionString: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  let client: pg.Client;
  try {
    client = await connect(withDatabaseName(connectionString, "postgres"));
  } catch (error) {
    // Some servers have no `postgres` database; template1 always exists.
    if (pgErrorCode(error) !== INVALID_CATALOG_NAME) throw error;
    client = await connect(withDatabaseName(connectionString, "template1"));
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function canConnect(connectionString: string): Promise<boolean> {
  try {
    const client = await connect(connectionString);
    await client.end();
    return true;
  } catch (error) {
    if (pgErrorCode(error) === INVALID_CATALOG_NAME) return false;
    throw error;
  }
}

async function connect(connectionString: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString });
  client.on("error", () => {}); // failures surface through the awaited calls
  await client.connect();
  return client;
}

function pgErrorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

/**
 * A node-postgres pool that a lost database can not crash: an idle client whose connection drops
 * is replaced by the pool, and a checked-out client (which has no pool listener) whose server
 * goes away between its queries (a Postgres restart mid-transaction) fails its next query
 * instead of emitting an unhandled 'error'; the pool drops it on release.
 */
export function createPgPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}
