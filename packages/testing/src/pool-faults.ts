import type pg from "pg";
import { waitFor } from "./wait.ts";

/**
 * What a Postgres restart does to a pool client held mid-transaction: its server session ends
 * (FATAL 57P01) while no query of its runs. Returns the error its next query fails with, after
 * releasing it; with no 'error' listener on the client the process would crash instead.
 */
export async function endHeldSession(pool: pg.Pool): Promise<Error> {
  const held = await pool.connect();
  await held.query("BEGIN");
  const { rows } = await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  await pool.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
  const err = await waitFor<Error>("the held client to notice", () => held.query("SELECT 1").then(() => false as const, (e: Error) => e));
  held.release(err);
  return err;
}
