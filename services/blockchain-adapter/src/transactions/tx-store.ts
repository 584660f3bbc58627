import pg from "pg";
import { createPgPool } from "@cashback/db";
import type { Address, Hex, TransactionReceipt } from "viem";
import type { ChainClient, SignedTx } from "../chain/chain-client.ts";
import { clawbackStore } from "../clawbacks/clawback-store.ts";
import { isDatabaseUnavailable, toDecimal, type Tx } from "../db.ts";
import { AdapterError } from "../errors.ts";
import type { MintRequest } from "../mints/mint-request.ts";

/**
 * Every status write of `blockchain_transactions` and `mints` (clawbacks: clawback-store.ts, which
 * this calls where a transaction carries one). Transaction rows: SUBMITTED -> CONFIRMED | FAILED |
 * REPLACED | DROPPED; mints: PENDING -> SUBMITTED -> CONFIRMED | FAILED, and SUBMITTED -> PENDING
 * (re-queued). docs/blockchain-adapter.md has the table. Each function runs inside the caller's
 * database transaction (Prisma's `Tx`), except SendStore's hot path on `pg` below.
 */
export const txStore = {
  /** Records new keys as PENDING (with the trace each came in), returns the keys that were new (a known key is left as it is). */
  async insertMints(t: Tx, requests: readonly MintRequest[], traceparentOf: (r: MintRequest) => string | null = () => null): Promise<Set<string>> {
    const created = await t.mint.createManyAndReturn({
      data: requests.map((r) => ({ idempotencyKey: r.idempotencyKey, mintId: r.mintId, toAddress: r.to, amountWei: toDecimal(r.amountWei), metadata: r.metadata, traceparent: traceparentOf(r) })),
      skipDuplicates: true,
      select: { idempotencyKey: true },
    });
    return new Set(created.map((c) => c.idempotencyKey));
  },

  /** A transaction we signed, SUBMITTED, carrying `mintKeys` (now SUBMITTED on it). Returns its id. */
  async recordSigned(t: Tx, chain: ChainClient, signed: SignedTx, mintKeys: readonly string[] = []): Promise<bigint> {
    const row = await t.blockchainTransaction.create({ data: txRow(chain, signed) });
    if (mintKeys.length) await t.mint.updateMany({ where: { idempotencyKey: { in: [...mintKeys] } }, data: { status: "SUBMITTED", transactionId: row.id } });
    return row.id;
  },

  /** A replacement (same nonce, higher fees) takes over everything the stuck transaction carried. */
  async recordReplacement(t: Tx, chain: ChainClient, oldId: bigint, signed: SignedTx): Promise<bigint> {
    const created = await t.blockchainTransaction.create({ data: txRow(chain, signed) });
    await t.blockchainTransaction.update({ where: { id: oldId }, data: { status: "REPLACED", replacedById: created.id } });
    await t.mint.updateMany({ where: { transactionId: oldId }, data: { transactionId: created.id } });
    await clawbackStore.moveToTransaction(t, oldId, created.id);
    return created.id;
  },

  /** The same signed bytes sent again (the node had forgotten them). */
  async rebroadcast(t: Tx, id: bigint): Promise<void> {
    await t.blockchainTransaction.update({ where: { id }, data: { broadcasts: { increment: 1 }, submittedAt: new Date() } });
  },

  /** Their nonce went to a transaction not ours on file: DROPPED, and what they carried re-queued. */
  async dropAndRequeue(t: Tx, ids: readonly bigint[]): Promise<void> {
    await t.blockchainTransaction.updateMany({ where: { id: { in: [...ids] }, status: { in: ["SUBMITTED", "REPLACED"] } }, data: { status: "DROPPED" } });
    await t.mint.updateMany({ where: { transactionId: { in: [...ids] }, status: "SUBMITTED" }, data: { status: "PENDING", transactionId: null } });
    await clawbackStore.requeueOf(t, ids);
  },

  /** Its receipt: CONFIRMED, or FAILED when it reverted. */
  async mined(t: Tx, id: bigint, receipt: TransactionReceipt): Promise<void> {
    const ok = receipt.status === "success";
    await t.blockchainTransaction.update({
      where: { id },
      data: {
        status: ok ? "CONFIRMED" : "FAILED",
        blockNumber: receipt.blockNumber,
        blockHash: receipt.blockHash,
        gasUsed: toDecimal(receipt.gasUsed),
        minedAt: new Date(),
        errorMessage: ok ? null : "reverted on chain",
      },
    });
  },

  /** Other attempts with a mined transaction's nonce can never be mined now. */
  async siblingsDropped(t: Tx, ids: readonly bigint[]): Promise<void> {
    if (ids.length) await t.blockchainTransaction.updateMany({ where: { id: { in: [...ids] } }, data: { status: "DROPPED" } });
  },

  /** A transaction found mined on chain (recorded after the fact, or not ours on file: kind "recovered"). */
  async minedFound(t: Tx, existing: { id: bigint; status: string } | null, found: RecoveredTx | undefined, receipt: TransactionReceipt): Promise<bigint> {
    const mined = { status: "CONFIRMED" as const, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash, gasUsed: toDecimal(receipt.gasUsed), minedAt: new Date() };
    if (existing) {
      if (existing.status !== "CONFIRMED") await t.blockchainTransaction.update({ where: { id: existing.id }, data: mined });
      return existing.id;
    }
    if (!found) throw new Error(`no row and no chain data for ${receipt.transactionHash}`);
    const created = await t.blockchainTransaction.create({
      data: { ...found, kind: "recovered", rawTx: null, maxFeePerGas: toDecimal(found.maxFeePerGas), maxPriorityFeePerGas: toDecimal(found.maxPriorityFeePerGas), ...mined },
    });
    return created.id;
  },

  async mintsConfirmed(t: Tx, keys: readonly string[], transactionId: bigint): Promise<void> {
    if (keys.length === 0) return;
    await t.mint.updateMany({ where: { idempotencyKey: { in: [...keys] } }, data: { status: "CONFIRMED", transactionId, errorReason: null, errorMessage: null } });
  },

  /** Final: reason REVERTED (the contract refused it, in estimation or on chain). */
  async mintsFailed(t: Tx, keys: readonly string[], message: string, transactionId?: bigint): Promise<void> {
    if (keys.length === 0) return;
    await t.mint.updateMany({
      where: { idempotencyKey: { in: [...keys] } },
      data: { status: "FAILED", errorReason: "REVERTED", errorMessage: message, ...(transactionId !== undefined ? { transactionId } : {}) },
    });
  },

  /** Back to the queue, unlinked from any transaction; the contract's mint id keeps a resend harmless. */
  async mintsRequeued(t: Tx, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await t.mint.updateMany({ where: { idempotencyKey: { in: [...keys] } }, data: { status: "PENDING", transactionId: null } });
  },
};

/** What the chain tells of a transaction we have no row for. */
export interface RecoveredTx {
  chainId: number;
  txHash: string;
  fromAddress: string;
  toAddress: string;
  nonce: bigint;
  maxFeePerGas: bigint;
  maxPriorityFeePerGas: bigint;
}

/** The blockchain_transactions row of a transaction we signed. */
function txRow(chain: ChainClient, signed: SignedTx) {
  return {
    chainId: chain.chainId,
    txHash: signed.hash,
    fromAddress: chain.signerAddress,
    gasBounded: signed.gasBounded ?? false,
    toAddress: signed.to ?? chain.token,
    nonce: signed.nonce,
    kind: signed.kind,
    rawTx: signed.raw,
    maxFeePerGas: toDecimal(signed.maxFeePerGas),
    maxPriorityFeePerGas: toDecimal(signed.maxPriorityFeePerGas),
  };
}

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
    // A client is held through a broadcast: a Postgres restart meanwhile fails its next query
    // (rolled back) rather than crashing the adapter (createPgPool).
    this.pool = createPgPool({ connectionString, max: poolSize });
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

  /**
   * The usual receipt in one statement: a transaction of ours that succeeded, SUBMITTED, with no
   * other transaction on its nonce, no open clawback, and every open mint on it among `mintedIds`
   * (its CashbackMinted events): the transaction CONFIRMED and those mints CONFIRMED on it.
   * Returns the mints' keys, or undefined when the receipt is anything else (nothing written;
   * Settlement.recordReceipt's full path handles it).
   */
  async confirmMinted(txId: bigint, receipt: Pick<TransactionReceipt, "blockNumber" | "blockHash" | "gasUsed">, mintedIds: readonly Hex[]): Promise<string[] | undefined> {
    const { rows } = await this.pool.query<{ done: number; keys: string[] }>(
      `WITH t AS (
         UPDATE blockchain_transactions b
         SET status = 'CONFIRMED', block_number = $2::bigint, block_hash = $3, gas_used = $4::numeric, mined_at = now(), error_message = NULL, updated_at = now()
         WHERE b.id = $1::bigint AND b.status = 'SUBMITTED'
           AND NOT EXISTS (SELECT 1 FROM blockchain_transactions s WHERE s.chain_id = b.chain_id AND s.from_address = b.from_address AND s.nonce = b.nonce AND s.id <> b.id)
           AND NOT EXISTS (SELECT 1 FROM clawbacks c WHERE c.transaction_id = b.id AND c.status IN ('PENDING', 'SUBMITTED'))
           AND NOT EXISTS (SELECT 1 FROM mints m WHERE m.transaction_id = b.id AND m.status IN ('PENDING', 'SUBMITTED') AND NOT (m.mint_id = ANY($5::text[])))
         RETURNING b.id
       ), m AS (
         UPDATE mints SET status = 'CONFIRMED', error_reason = NULL, error_message = NULL, updated_at = now()
         WHERE transaction_id IN (SELECT id FROM t) AND status IN ('PENDING', 'SUBMITTED')
         RETURNING idempotency_key
       )
       SELECT (SELECT count(*) FROM t)::int AS done, ARRAY(SELECT idempotency_key FROM m) AS keys`,
      [txId.toString(), receipt.blockNumber.toString(), receipt.blockHash, receipt.gasUsed.toString(), mintedIds],
    );
    return rows[0]!.done === 1 ? rows[0]!.keys : undefined;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** What MintService needs of a stored mint to answer a caller (views.ts: toMintResult). */
export interface MintOutcome {
  idempotencyKey: string;
  mintId: string;
  status: "PENDING" | "SUBMITTED" | "CONFIRMED" | "FAILED";
  errorReason: string | null;
  errorMessage: string | null;
  transaction: { txHash: string; blockNumber: bigint | null } | null;
}

/** What recording a call's keys found: the new keys, a clawback's key among them, the known mints. */
export interface RecordedMints {
  fresh: Set<string>;
  /** A key that is a clawback's (nothing was inserted then). */
  clash?: string;
  /** Mints stored before this call, for the replay check. */
  stored: Map<string, { toAddress: string; amountWei: bigint }>;
}

/**
 * MintService's hot path on a `pg` pool of its own (the lanes hold SendStore's clients through
 * their broadcasts): recording a call's keys and reading their outcome are one statement each,
 * outside any interactive transaction (DESIGN.md: Prisma's costs several times the statements).
 */
export class MintCallStore {
  private readonly pool: pg.Pool;

  constructor(connectionString: string, poolSize = 4) {
    this.pool = createPgPool({ connectionString, max: poolSize });
  }

  /**
   * A lost database reads as DATABASE_UNAVAILABLE to the caller: node-postgres's socket codes
   * (ECONNREFUSED, ...) would otherwise pass for the chain's (rpc/errors.ts asks the chain first).
   */
  private query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values).catch((err: unknown) => {
      if (isDatabaseUnavailable(err)) throw new AdapterError("unavailable", "DATABASE_UNAVAILABLE", "the adapter's database is unavailable; try again later");
      throw err;
    });
  }

  /**
   * One statement: inserts the new keys as PENDING unless one of them is a clawback's (then none,
   * as the clash check in one transaction did), and returns the mints that were there before it
   * (its snapshot does not see its own inserts) for the caller's replay check.
   */
  async record(requests: readonly MintRequest[], traceparentOf: (r: MintRequest) => string | null = () => null): Promise<RecordedMints> {
    const { rows } = await this.query<{ kind: "clash" | "fresh" | "stored"; idempotency_key: string; to_address: string | null; amount_wei: string | null }>(
      `WITH i AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::jsonb[], $6::text[])
           AS i(idempotency_key, mint_id, to_address, amount_wei, metadata, traceparent)
       ), clash AS (
         SELECT i.idempotency_key FROM i JOIN clawbacks c USING (idempotency_key)
         WHERE NOT EXISTS (SELECT 1 FROM mints m WHERE m.idempotency_key = i.idempotency_key) LIMIT 1
       ), ins AS (
         INSERT INTO mints (idempotency_key, mint_id, to_address, amount_wei, metadata, traceparent)
         SELECT idempotency_key, mint_id, to_address, amount_wei, metadata, traceparent FROM i
         WHERE NOT EXISTS (SELECT 1 FROM clash)
         ON CONFLICT DO NOTHING RETURNING idempotency_key
       )
       SELECT 'clash' AS kind, idempotency_key, NULL AS to_address, NULL AS amount_wei FROM clash
       UNION ALL SELECT 'fresh', idempotency_key, NULL, NULL FROM ins
       UNION ALL SELECT 'stored', idempotency_key, to_address, amount_wei::text FROM mints WHERE idempotency_key = ANY($1::text[])`,
      [
        requests.map((r) => r.idempotencyKey),
        requests.map((r) => r.mintId),
        requests.map((r) => r.to),
        requests.map((r) => r.amountWei.toString()),
        requests.map((r) => JSON.stringify(r.metadata)),
        requests.map(traceparentOf),
      ],
    );
    const out: RecordedMints = { fresh: new Set(), stored: new Map() };
    for (const r of rows) {
      if (r.kind === "clash") out.clash = r.idempotency_key;
      else if (r.kind === "fresh") out.fresh.add(r.idempotency_key);
      else out.stored.set(r.idempotency_key, { toAddress: r.to_address!, amountWei: BigInt(r.amount_wei!) });
    }
    return out;
  }

  /** Mints stored now (a key another call inserted after record's snapshot, for the replay check). */
  async stored(keys: readonly string[]): Promise<RecordedMints["stored"]> {
    const { rows } = await this.query<{ idempotency_key: string; to_address: string; amount_wei: string }>(
      `SELECT idempotency_key, to_address, amount_wei::text FROM mints WHERE idempotency_key = ANY($1::text[])`,
      [keys],
    );
    return new Map(rows.map((r) => [r.idempotency_key, { toAddress: r.to_address, amountWei: BigInt(r.amount_wei) }]));
  }

  /** One statement: the mints' state and their transaction's hash and block. */
  async outcomes(keys: readonly string[]): Promise<MintOutcome[]> {
    const { rows } = await this.query<{ idempotency_key: string; mint_id: string; status: MintOutcome["status"]; error_reason: string | null; error_message: string | null; tx_hash: string | null; block_number: string | null }>(
      `SELECT m.idempotency_key, m.mint_id, m.status::text AS status, m.error_reason, m.error_message, t.tx_hash, t.block_number::text AS block_number
       FROM mints m LEFT JOIN blockchain_transactions t ON t.id = m.transaction_id
       WHERE m.idempotency_key = ANY($1::text[])`,
      [keys],
    );
    return rows.map((r) => ({
      idempotencyKey: r.idempotency_key,
      mintId: r.mint_id,
      status: r.status,
      errorReason: r.error_reason,
      errorMessage: r.error_message,
      transaction: r.tx_hash === null ? null : { txHash: r.tx_hash, blockNumber: r.block_number === null ? null : BigInt(r.block_number) },
    }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
