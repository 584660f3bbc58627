import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "./generated/prisma/client.ts";

export { Prisma };
export type Db = PrismaClient;
/** The client inside `db.$transaction(async (tx) => ...)`. */
export type Tx = Prisma.TransactionClient;

export function createDb(connectionString: string, poolSize = 10): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: poolSize }) });
}

/** Exact conversions between on-chain integers and Postgres NUMERIC(78,0); never through a float. */
export const toDecimal = (value: bigint) => new Prisma.Decimal(value.toString());
export const fromDecimal = (value: Prisma.Decimal) => BigInt(value.toFixed(0));

/**
 * Whether a database error is an outage worth a retry rather than a bug: Prisma's connection
 * codes (P1xxx), pool timeout (P2024), expired transaction (P2028), write conflict (P2034), and
 * Postgres's own SQLSTATE when the driver reports it (08xxx connection, 57P0x shutdown/failover,
 * 53300 too many connections, 40001/40P01 serialization failure or deadlock).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; meta?: { driverAdapterError?: { cause?: { code?: unknown } } } } | undefined;
  const code = typeof e?.code === "string" ? e.code : "";
  if (/^P1\d{3}$/.test(code) || ["P2024", "P2028", "P2034"].includes(code)) return true;
  const sqlState = String(e?.meta?.driverAdapterError?.cause?.code ?? "");
  return /^(08|57P0)/.test(sqlState) || ["53300", "40001", "40P01"].includes(sqlState);
}
