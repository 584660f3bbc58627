import { isHash } from "viem";
import type { ChainClient } from "../chain/chain-client.ts";
import { AdapterError, invalidArgument } from "../errors.ts";
import type { Db } from "../db.ts";
import { toTransactionView, type TransactionView } from "../mints/views.ts";
import { parseIdempotencyKey, quote } from "../validation.ts";

/** GetTransaction: a mint's or a clawback's transaction, by idempotency key or by hash. */
export class TransactionLookup {
  private readonly deps: { db: Db; chain: ChainClient; confirmations: number };

  constructor(deps: TransactionLookup["deps"]) {
    this.deps = deps;
  }

  async get(lookup: { idempotencyKey?: string; txHash?: string }): Promise<TransactionView> {
    const { db } = this.deps;
    const include = { mints: true, clawbacks: true } as const;
    let tx;
    if (lookup.txHash !== undefined) {
      if (!isHash(lookup.txHash)) throw invalidArgument(`tx_hash must be 32 bytes of 0x-hex, got ${quote(lookup.txHash)}`);
      tx = await db.blockchainTransaction.findUnique({ where: { txHash: lookup.txHash.toLowerCase() }, include });
      if (!tx) throw new AdapterError("not_found", "NOT_FOUND", `no transaction ${lookup.txHash}`);
    } else if (lookup.idempotencyKey !== undefined) {
      const key = parseIdempotencyKey(lookup.idempotencyKey);
      // Keys are one namespace: a key names a mint or a clawback, never both (see record()).
      const item = (await db.mint.findUnique({ where: { idempotencyKey: key } })) ?? (await db.clawback.findUnique({ where: { idempotencyKey: key } }));
      if (!item) throw new AdapterError("not_found", "NOT_FOUND", `no mint or clawback with idempotency key "${key}"`);
      if (item.transactionId === null) return toTransactionView(undefined, [item], 0n);
      tx = await db.blockchainTransaction.findUniqueOrThrow({ where: { id: item.transactionId }, include });
    } else {
      throw invalidArgument("give idempotency_key or tx_hash");
    }
    if (tx.status === "REPLACED" || tx.status === "DROPPED") {
      // Answer for the transaction that took its nonce (and its mints), if it is ours.
      const successor = await db.blockchainTransaction.findFirst({
        where: { chainId: tx.chainId, fromAddress: tx.fromAddress, nonce: tx.nonce, status: { in: ["CONFIRMED", "FAILED", "SUBMITTED"] } },
        orderBy: [{ blockNumber: { sort: "desc", nulls: "last" } }, { id: "desc" }],
        include,
      });
      if (successor) tx = successor;
      else {
        // Fully dropped: its nonce went to a transaction that is not ours on file, and what it
        // carried went back to the queue (to another transaction, found by key). Not SUBMITTED
        // forever: this hash will never be mined.
        throw new AdapterError(
          "not_found",
          "TRANSACTION_DROPPED",
          `transaction ${tx.txHash} was dropped (its nonce was used by another transaction); what it carried was re-queued: ask by idempotency key`,
        );
      }
    }
    // The answer is in the database; the chain only adds how deep the block is now. A confirmed
    // transaction had at least CHAIN_CONFIRMATIONS when it was recorded, whatever the node says.
    let latest = 0n;
    if (tx.blockNumber !== null) {
      const recorded = tx.status === "CONFIRMED" ? tx.blockNumber + BigInt(this.deps.confirmations) - 1n : tx.blockNumber;
      const head = await this.deps.chain.headOrLastSeen();
      latest = head > recorded ? head : recorded;
    }
    return toTransactionView(tx, [...tx.mints, ...tx.clawbacks], latest);
  }
}
