export { migrate, MigrationError, type MigrateLogger, type MigrateOptions, type MigrateResult } from "./migrate.ts";
export { archiveDatabase, createPgPool, ensureDatabase } from "./database.ts";
export { describeTarget } from "./connectionString.ts";
