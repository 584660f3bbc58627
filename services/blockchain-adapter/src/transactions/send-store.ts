import pg from "pg";
import type { Address, Hex } from "viem";
import type { SignedTx } from "../chain/chain-client.ts";

/** A queued mint as the sender claims it. */
export interface ClaimedMint {
  idempotencyKey: string;
  mintId: Hex;
  to: Address;
  amountWei: bigint;
}

/**
 * The sender's hot path on a plain `pg` connection: claim, nonce lock and the record of a sent
 * transaction are three statements in one database transaction held open through the broadcast
 * (DESIGN.md: Prisma's interactive transaction costs several times what the same statements cost
 * on `pg`, and a round's database work was more than half of it). Used for bounded-gas rounds;
 * rounds that estimate (and may settle refusals) keep Prisma (dispatcher.ts).
 */
export class SendStore {
  private readonly pool: pg.Pool;

  constructor(connectionString: string, poolSize = 4) {
    this.pool = new pg.Pool({ connectionString, max: poolSize });
    this.pool.on("error", () => {}); // an idle client's lost connection: the next checkout reconnects
  }

  /** Runs `fn` in one database transaction; any failure rolls it back (and is rethrown). */
  async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => (broken = true));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** The oldest PENDING mints not held back, locked for this round (others skip them). */
  async claimMints(c: pg.PoolClient, opts: { exclude: readonly string[]; limit: number }): Promise<ClaimedMint[]> {
    const { rows } = await c.query<{ idempotency_key: string; mint_id: string; to_address: string; amount_wei: string }>(
      `SELECT idempotency_key, mint_id, to_address, amount_wei::text AS amount_wei FROM mints
       WHERE status = 'PENDING' AND NOT (idempotency_key = ANY($1::text[]))
       ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [opts.exclude, opts.limit],
    );
    return rows.map((r) => ({ idempotencyKey: r.idempotency_key, mintId: r.mint_id as Hex, to: r.to_address as Address, amountWei: BigInt(r.amount_wei) }));
  }

  /** Locks the lane's wallet_nonces row until the transaction ends; returns the next nonce. */
  async lockNonce(c: pg.PoolClient, chainId: number, address: Address): Promise<bigint> {
    const { rows } = await c.query<{ next_nonce: string }>(`SELECT next_nonce::text FROM wallet_nonces WHERE chain_id = $1 AND address = $2 FOR UPDATE`, [chainId, address]);
    if (!rows[0]) throw new Error(`wallet_nonces has no row for ${address}: resync() runs at start-up`);
    return BigInt(rows[0].next_nonce);
  }

  /**
   * One statement: the transaction's row (SUBMITTED), its mints SUBMITTED on it, the nonce row
   * advanced past it. Returns the row's id.
   */
  async recordSent(c: pg.PoolClient, tx: { chainId: number; from: Address; to: Address; signed: SignedTx; keys: readonly string[] }): Promise<bigint> {
    const { signed } = tx;
    const { rows } = await c.query<{ id: string }>(
      `WITH t AS (
         INSERT INTO blockchain_transactions (chain_id, tx_hash, from_address, to_address, nonce, kind, raw_tx, max_fee_per_gas, max_priority_fee_per_gas, gas_bounded)
         VALUES ($1, $2, $3, $4, $5::bigint, $6, $7, $8::numeric, $9::numeric, $10) RETURNING id
       ), m AS (
         UPDATE mints SET status = 'SUBMITTED', transaction_id = (SELECT id FROM t), updated_at = now() WHERE idempotency_key = ANY($11::text[])
       ), n AS (
         UPDATE wallet_nonces SET next_nonce = $5::bigint + 1, updated_at = now() WHERE chain_id = $1 AND address = $3
       )
       SELECT id::text FROM t`,
      [tx.chainId, signed.hash, tx.from, tx.to, signed.nonce.toString(), signed.kind, signed.raw, signed.maxFeePerGas.toString(), signed.maxPriorityFeePerGas.toString(), signed.gasBounded ?? false, tx.keys],
    );
    return BigInt(rows[0]!.id);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
