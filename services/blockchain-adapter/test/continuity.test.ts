// ensureChainContinuity: on the local chain, records of a chain that is gone are cleared; on any
// other chain the adapter refuses to start rather than answer from records the chain lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "@cashback/db";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { createLogger } from "@cashback/runtime";
import { LOCAL_CHAIN_ID } from "@cashback/token";
import { startTestChain, type TestChain } from "@cashback/testing";
import { createChainBreaker } from "../src/chain/circuit-breaker.ts";
import { ChainClient } from "../src/chain/chain-client.ts";
import { ensureChainContinuity } from "../src/chain/chain-continuity.ts";
import { migrationsDir } from "../src/app.ts";
import { createDb, toDecimal, type Db } from "../src/db.ts";
import { createMetrics } from "../src/metrics.ts";

describe("chain continuity", () => {
  let chain: TestChain;
  let database: TestDatabase;
  let db: Db;
  let client: ChainClient;
  const logger = createLogger("blockchain-adapter", "silent");
  beforeAll(async () => {
    chain = await startTestChain();
    database = await createTestDatabase("adapter_continuity");
    await migrate({ connectionString: database.url, migrationsDir });
    db = createDb(database.url, 2);
    const metrics = createMetrics();
    const breaker = createChainBreaker({ failures: 5, halfOpenAfterMs: 1_000 }, logger, metrics);
    client = await ChainClient.connect({ rpcUrl: chain.rpcUrl, rpcTimeoutMs: 5_000, signerKey: chain.adapterKey, logQueryBlocks: 10_000, breaker, metrics, deploymentsDir: chain.deploymentsDir });
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database?.drop();
    await chain?.close();
  });

  /** A CONFIRMED row for a transaction this chain never saw (as after a reset or a reorg). */
  const lostRow = (chainId: number) =>
    db.blockchainTransaction.create({
      data: {
        chainId,
        txHash: `0x${"ab".repeat(32)}`,
        fromAddress: client.signerAddress,
        toAddress: client.token,
        nonce: 0n,
        kind: "mint",
        rawTx: null,
        maxFeePerGas: toDecimal(1n),
        maxPriorityFeePerGas: toDecimal(1n),
        status: "CONFIRMED",
        blockNumber: 1n,
        blockHash: `0x${"cd".repeat(32)}`,
      },
    });

  it("refuses to start on a non-local chain that lost a transaction we recorded, and keeps the records", async () => {
    const mainnetLike = Object.create(client, { chainId: { value: 1 } }) as ChainClient; // same node, another chain's id
    await lostRow(1);
    await expect(ensureChainContinuity(db, mainnetLike, logger)).rejects.toThrow(/refusing to start/);
    expect(await db.blockchainTransaction.count({ where: { chainId: 1 } })).toBe(1);
  });

  it("clears the records of a restarted local chain", async () => {
    expect(client.chainId).toBe(LOCAL_CHAIN_ID);
    await lostRow(LOCAL_CHAIN_ID).catch(() => undefined); // the hash is unique: reuse the row if the other test made it
    await db.blockchainTransaction.updateMany({ data: { chainId: LOCAL_CHAIN_ID } });
    await ensureChainContinuity(db, client, logger);
    expect(await db.blockchainTransaction.count()).toBe(0);
  });
});
