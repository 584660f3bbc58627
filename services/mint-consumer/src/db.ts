import pg from "pg";
import { createPgPool } from "@cashback/db";
import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "./generated/prisma/client.ts";

export { Prisma };
export type Db = PrismaClient;

/** Prisma for ordinary reads (status counts, views); the hot path uses `createPool` (store.ts). */
export function createDb(connectionString: string, poolSize = 2): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: poolSize }) });
}

/** The node-postgres pool of the intake, the dispatcher's store and the outbox relay. */
export function createPool(connectionString: string, max: number): pg.Pool {
  return createPgPool({ connectionString, max, connectionTimeoutMillis: 5_000 });
}
