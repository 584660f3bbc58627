import type { Address } from "viem";
import type { Logger } from "@cashback/runtime";
import type { ChainClient } from "../chain/chain-client.ts";
import type { Db, Tx } from "../db.ts";
import type { Metrics } from "../metrics.ts";
import { nextNonce } from "./nonce-policy.ts";

/** The `wallet_nonces` row of one signer on one chain. */
export class NonceStore {
  private readonly db: Db;
  private readonly chain: ChainClient;
  private readonly logger: Logger;
  private readonly metrics: Metrics;

  constructor(db: Db, chain: ChainClient, logger: Logger, metrics: Metrics) {
    this.db = db;
    this.chain = chain;
    this.logger = logger;
    this.metrics = metrics;
  }

  private get key() {
    return { chainId: this.chain.chainId, address: this.chain.signerAddress as Address };
  }

  /**
   * Locks the row until `tx` ends and returns the nonce to use. Holding the lock through the
   * broadcast keeps transactions reaching the node in nonce order, across processes too.
   */
  async lock(tx: Tx): Promise<bigint> {
    const { chainId, address } = this.key;
    const rows = await tx.$queryRaw<{ next_nonce: bigint }[]>`
      SELECT next_nonce FROM wallet_nonces WHERE chain_id = ${chainId} AND address = ${address} FOR UPDATE`;
    if (!rows[0]) throw new Error(`wallet_nonces has no row for ${address}: resync() runs at start-up`);
    return BigInt(rows[0].next_nonce);
  }

  async advance(tx: Tx, used: bigint): Promise<void> {
    await tx.walletNonce.update({ where: { chainId_address: this.key }, data: { nextNonce: used + 1n } });
  }

  /** Seeds or corrects the row from the chain (at start-up and after a nonce error). */
  async resync(reason: string): Promise<bigint> {
    const { chainId, address } = this.key;
    return this.db.$transaction(async (tx) => {
      await tx.$executeRaw`
        INSERT INTO wallet_nonces (chain_id, address, next_nonce) VALUES (${chainId}, ${address}, 0)
        ON CONFLICT (chain_id, address) DO NOTHING`;
      const stored = await this.lock(tx);
      // Read under the lock: a count taken before it could predate another sender's transaction.
      const chainPending = BigInt(await this.chain.pendingNonce());
      const open = await tx.blockchainTransaction.aggregate({
        where: { chainId, fromAddress: address, status: "SUBMITTED" },
        _max: { nonce: true },
      });
      const next = nextNonce(chainPending, open._max.nonce ?? undefined);
      if (next !== stored) {
        await tx.walletNonce.update({ where: { chainId_address: this.key }, data: { nextNonce: next } });
        this.metrics.nonceResyncs.inc();
        this.logger.warn({ reason, address, stored: stored.toString(), chainPending: chainPending.toString(), next: next.toString() }, "wallet nonce resynced from chain");
      }
      return next;
    });
  }
}
