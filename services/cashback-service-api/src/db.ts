import pg from "pg";
import { createPgPool } from "@cashback/db";
import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "./generated/prisma/client.ts";

export { Prisma };
export type Db = PrismaClient;
/** The client inside `db.$transaction(async (tx) => ...)`. */
export type Tx = Prisma.TransactionClient;

/** Prisma owns the model and the ordinary queries (everything but the purchase write path). */
export function createDb(connectionString: string, poolSize = 5): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: poolSize }) });
}

// Exact types from node-postgres: BIGINT and NUMERIC stay strings (converted to bigint by the
// code that reads them), DATE stays "YYYY-MM-DD" (the default would make a local-midnight Date).
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === pg.types.builtins.DATE) return (value: string) => value;
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** The node-postgres pool of the purchase write path (one statement per purchase) and the relay. */
export function createPool(connectionString: string, max: number): pg.Pool {
  return createPgPool({ connectionString, max, types, idleTimeoutMillis: 30_000 });
}

/** Exact conversions between bigint and Prisma's Decimal (NUMERIC(78,0)); never through a float. */
export const toDecimal = (value: bigint) => new Prisma.Decimal(value.toString());
export const fromDecimal = (value: Prisma.Decimal) => BigInt(value.toFixed(0));
export const fromDecimalOrNull = (value: Prisma.Decimal | null) => (value === null ? null : fromDecimal(value));

/** Postgres SQLSTATE of an error from node-postgres or Prisma's pg adapter, when there is one. */
export function sqlState(err: unknown): string | undefined {
  const e = err as { code?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; code?: unknown } } } } | undefined;
  if (typeof e?.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  const cause = e?.meta?.driverAdapterError?.cause;
  const code = cause?.originalCode ?? cause?.code;
  return typeof code === "string" ? code : undefined;
}

/** Unique violation, from node-postgres (23505) or Prisma (P2002). */
export function isUniqueViolation(err: unknown): boolean {
  return sqlState(err) === "23505" || (err as { code?: unknown })?.code === "P2002";
}
