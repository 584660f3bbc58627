import type { Hash } from "viem";
import type { Logger } from "@cashback/runtime";
import { LOCAL_CHAIN_ID } from "@cashback/token";
import type { Db } from "../db.ts";
import type { ChainClient } from "./chain-client.ts";

/**
 * Checks that the chain still holds the last transaction we recorded as mined. A local Hardhat
 * node keeps its chain in memory, so every restart of `npm start` begins a new chain (the token
 * even lands at the same address); our rows would then describe mints that no longer exist, and
 * a replayed key would answer with a transaction the chain never saw. On the local chain the
 * adapter's records are cleared (logged as info: it is what every new `npm start` does, not a
 * fault); on any other chain it refuses to start.
 */
export async function ensureChainContinuity(db: Db, chain: ChainClient, logger: Logger): Promise<void> {
  const last = await db.blockchainTransaction.findFirst({
    where: { chainId: chain.chainId, status: "CONFIRMED" },
    orderBy: { id: "desc" },
  });
  if (!last) return;
  const receipt = await chain.receipt(last.txHash as Hash);
  if (receipt && receipt.blockHash === last.blockHash) return;

  const what = `transaction ${last.txHash} (block ${last.blockNumber}) recorded as mined is not on chain ${chain.chainId}`;
  if (chain.chainId !== LOCAL_CHAIN_ID) {
    throw new Error(`${what}: the chain was reset or reorganised; refusing to start (inspect the database before continuing)`);
  }
  await db.$transaction([
    db.mint.deleteMany({}),
    db.clawback.deleteMany({}),
    db.blockchainTransaction.deleteMany({}),
    db.walletNonce.deleteMany({ where: { chainId: chain.chainId } }),
  ]);
  logger.info({ chainId: chain.chainId }, `${what}: the local chain was restarted; cleared the adapter's mint and clawback records`);
}
