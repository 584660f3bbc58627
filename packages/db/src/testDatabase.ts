import { randomBytes } from "node:crypto";
import { quoteIdentifier, withDatabaseName } from "./connectionString.ts";
import { withMaintenanceClient } from "./database.ts";

export interface TestDatabase {
  /** Name of the database created for this test. */
  name: string;
  /** Connection string for it (same server and credentials as the template URL). */
  url: string;
  /** Drops it, disconnecting any client still attached (WITH (FORCE), Postgres 13+). */
  drop(): Promise<void>;
}

const DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres";

/**
 * Creates a fresh, uniquely named, empty database on the server of TEST_DATABASE_URL (else
 * the local default), so tests can run in parallel and never see each other's rows.
 */
export async function createTestDatabase(prefix: string): Promise<TestDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL ?? DEFAULT_SERVER_URL;
  const name = uniqueName(prefix);
  await withMaintenanceClient(serverUrl, (client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}`));
  return {
    name,
    url: withDatabaseName(serverUrl, name),
    drop: async () => {
      await withMaintenanceClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`));
    },
  };
}

// Lower-case (no quoting surprises in psql), unique across processes, within Postgres' 63 bytes.
function uniqueName(prefix: string): string {
  const safePrefix = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, "_").slice(0, 40);
  return `${safePrefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
}
