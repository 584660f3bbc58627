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
  // A checked-out client has no pool listener: a server going away between its queries (a
  // Postgres restart mid-transaction) would emit an unhandled 'error' and crash the process.
  // Its next query fails instead, and the pool drops it on release.
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}
