import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "./generated/prisma/client.ts";

export { Prisma };
export type Db = PrismaClient;
/** The client inside `db.$transaction(async (tx) => ...)`. */
export type Tx = Prisma.TransactionClient;

export function createDb(connectionString: string, poolSize = 10): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: poolSize }) });
}

/**
 * Options for the short transaction that records a call's keys. Under load the pool's
 * connections are all busy for a moment: the call waits for one (it would wait for its receipt
 * anyway) instead of failing after Prisma's default 2 s and being retried by its caller.
 */
export const RECORD_TX = { maxWait: 10_000, timeout: 15_000 } as const;

/** Exact conversions between on-chain integers and Postgres NUMERIC(78,0); never through a float. */
export const toDecimal = (value: bigint) => new Prisma.Decimal(value.toString());
export const fromDecimal = (value: Prisma.Decimal) => BigInt(value.toFixed(0));

/** Driver adapter error kinds (@prisma/driver-adapter-utils) that mean the server is out of reach. */
const OUTAGE_KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TooManyConnections", "TransactionWriteConflict", "TransactionAlreadyClosed"]);
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED"]);
/**
 * node-postgres reports a lost connection with a plain Error and no code: the query that was
 * running when it dropped, and every later one on that client (inside an interactive
 * transaction, Prisma passes these through unwrapped). Only these exact messages count.
 */
const PG_CONNECTION_LOST = /^(Connection terminated unexpectedly|Connection terminated|Connection terminated due to connection timeout|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect)$/;

/**
 * Whether a database error is an outage worth a retry rather than a bug, wherever it sits in the
 * error and its causes: Prisma's connection codes (P1xxx), pool timeout (P2024), expired
 * transaction (P2028), write conflict (P2034); a driver adapter error of an outage kind
 * (DatabaseNotReachable, ConnectionClosed, ...); Postgres's own SQLSTATE (08xxx connection, 57P0x
 * shutdown/failover/starting up, 53300 too many connections, 40001/40P01 serialization failure
 * or deadlock); a socket error code; or node-postgres's connection-lost errors, which carry no
 * code at all.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0 && seen.size < 16) {
    const e = queue.shift();
    if (e === null || typeof e !== "object" || seen.has(e)) continue;
    seen.add(e);
    const { code, kind, originalCode, message, name, cause, meta } = e as {
      code?: unknown;
      kind?: unknown;
      originalCode?: unknown;
      message?: unknown;
      name?: unknown;
      cause?: unknown;
      meta?: { driverAdapterError?: unknown };
    };
    if (typeof code === "string") {
      if (/^P1\d{3}$/.test(code) || ["P2024", "P2028", "P2034"].includes(code)) return true;
      if (isOutageSqlState(code) || NETWORK_CODES.has(code)) return true;
    }
    if (typeof originalCode === "string" && isOutageSqlState(originalCode)) return true;
    if (typeof kind === "string" && OUTAGE_KINDS.has(kind)) return true;
    if (code === undefined && name === "Error" && typeof message === "string" && PG_CONNECTION_LOST.test(message)) return true;
    queue.push(cause, meta?.driverAdapterError);
  }
  return false;
}

function isOutageSqlState(code: string): boolean {
  return /^(08[0-9A-Z]{3}|57P0[1-3])$/.test(code) || ["53300", "40001", "40P01"].includes(code);
}
