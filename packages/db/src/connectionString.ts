// Helpers over Postgres connection URLs (postgresql://user:pass@host:port/db?params).

/** The database a URL names; Postgres defaults it to the user name when the path is empty. */
export function databaseNameOf(connectionString: string): string {
  const url = new URL(connectionString);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
  const fallback = decodeURIComponent(url.username) || process.env.PGUSER || process.env.USER || "";
  const resolved = name || fallback;
  if (!resolved) throw new Error("Connection string names no database and no user");
  return resolved;
}

/** Same server, credentials and parameters, another database. */
export function withDatabaseName(connectionString: string, database: string): string {
  const url = new URL(connectionString);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** host:port/database — safe to print: no user, no password, no query parameters. */
export function describeTarget(connectionString: string): string {
  const url = new URL(connectionString);
  return `${url.hostname || "localhost"}:${url.port || "5432"}/${databaseNameOf(connectionString)}`;
}

/** Double-quotes an identifier for SQL that can not take it as a bind parameter (CREATE/DROP DATABASE). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
