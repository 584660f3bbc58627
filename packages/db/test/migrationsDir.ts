// Builds throwaway migrations folders in Prisma's layout for the tests.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export interface MigrationsDir {
  path: string;
  write(name: string, sql: string): Promise<void>;
  remove(name: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function makeMigrationsDir(migrations: Record<string, string>, provider = "postgresql"): Promise<MigrationsDir> {
  const dir = await mkdtemp(path.join(tmpdir(), "cashback-db-migrations-"));
  await writeFile(path.join(dir, "migration_lock.toml"), `provider = "${provider}"\n`);
  const write = async (name: string, sql: string) => {
    await mkdir(path.join(dir, name), { recursive: true });
    await writeFile(path.join(dir, name, "migration.sql"), sql);
  };
  for (const [name, sql] of Object.entries(migrations)) await write(name, sql);
  return {
    path: dir,
    write,
    remove: (name) => rm(path.join(dir, name), { recursive: true }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
