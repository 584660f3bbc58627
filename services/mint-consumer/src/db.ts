import pg from "pg";
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
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 5_000 });
  // An idle client losing its connection (database restart) must not crash the process; the
  // next query reports the outage where it is handled.
  pool.on("error", () => {});
  return pool;
}
