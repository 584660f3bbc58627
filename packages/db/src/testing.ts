// Helpers for services' tests. Kept out of the main entry point so production code does not
// load @prisma/internals.
export { createTestDatabase, type TestDatabase } from "./testDatabase.ts";
export { diffSchemaWithDatabase, type DiffSchemaOptions } from "./schemaDiff.ts";
