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
 * Prisma's codes for a database that can not be reached or answered too late (P1xxx: connection;
 * P2024: pool timeout; P2028: transaction expired; P2034: write conflict or deadlock): worth a retry.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && (/^P1\d{3}$/.test(code) || code === "P2024" || code === "P2028" || code === "P2034");
}
