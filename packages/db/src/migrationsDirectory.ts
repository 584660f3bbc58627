import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { migrationChecksum } from "./checksum.ts";

/** One `<migrationsDir>/<yyyymmddhhmmss>_<name>/migration.sql`, read from disk. */
export interface MigrationFile {
  name: string;
  script: Buffer;
  checksum: string;
}

// Prisma names folders `<14-digit UTC timestamp>_<slug>`; anything else in the folder is a
// mistake (wrong path, stray editor folder) we would rather report than silently skip.
const MIGRATION_DIR_NAME = /^\d{14}_[A-Za-z0-9_-]+$/;

/** Reads every migration in Prisma's layout, sorted by folder name as Prisma sorts them. */
export async function readMigrationsDirectory(migrationsDir: string): Promise<MigrationFile[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true }).catch((error: unknown) => {
    throw new Error(`Cannot read migrations directory ${migrationsDir}`, { cause: error });
  });
  await checkLockFileProvider(migrationsDir, entries.map((e) => e.name));

  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    // Byte-wise order, not locale order: the timestamp prefix makes it chronological.
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const migrations: MigrationFile[] = [];
  for (const name of names) {
    if (!MIGRATION_DIR_NAME.test(name)) {
      throw new Error(`Unexpected folder "${name}" in ${migrationsDir}: migration folders are named <yyyymmddhhmmss>_<name>`);
    }
    const file = path.join(migrationsDir, name, "migration.sql");
    const script = await readFile(file).catch((error: unknown) => {
      throw new Error(`Migration ${name} has no readable migration.sql (${file})`, { cause: error });
    });
    migrations.push({ name, script, checksum: migrationChecksum(script) });
  }
  return migrations;
}

// Like Prisma, a missing lock file is tolerated, but one naming another provider is refused:
// those migrations were written for a different database.
async function checkLockFileProvider(migrationsDir: string, fileNames: string[]): Promise<void> {
  if (!fileNames.includes("migration_lock.toml")) return;
  const toml = await readFile(path.join(migrationsDir, "migration_lock.toml"), "utf8");
  const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(toml)?.[1];
  if (provider !== "postgresql") {
    throw new Error(`${migrationsDir}/migration_lock.toml names provider "${provider ?? "(none)"}", expected "postgresql"`);
  }
}
