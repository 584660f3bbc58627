import path from "node:path";
import { describeTarget } from "./connectionString.ts";
import { ensureDatabase } from "./database.ts";
import { migrate } from "./migrate.ts";

const USAGE = "usage: cli.ts migrate <migrationsDir>   (reads DATABASE_URL)";

/**
 * `migrate <migrationsDir>`: creates DATABASE_URL's database if missing, then applies the
 * pending migrations. Returns the exit code. Prints the target as host:port/db only, so the
 * password in DATABASE_URL never reaches a log.
 */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, migrationsDir, ...rest] = args;
  if (command !== "migrate" || !migrationsDir || rest.length > 0) {
    console.error(USAGE);
    return 2;
  }
  const connectionString = env.DATABASE_URL;
  if (!connectionString) {
    console.error("DATABASE_URL is not set");
    return 2;
  }

  try {
    const target = describeTarget(connectionString);
    const { created } = await ensureDatabase(connectionString);
    if (created) console.log(`Created database ${target}`);
    const { applied } = await migrate({
      connectionString,
      migrationsDir: path.resolve(migrationsDir),
      logger: { info: (message) => console.log(message) },
    });
    console.log(
      applied.length === 0
        ? `${target} is up to date`
        : `Applied ${applied.length} migration(s) to ${target}: ${applied.join(", ")}`,
    );
    return 0;
  } catch (error) {
    console.error(`Migration failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
