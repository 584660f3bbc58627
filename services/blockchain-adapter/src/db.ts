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
