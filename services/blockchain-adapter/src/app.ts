import path from "node:path";
import { fileURLToPath } from "node:url";
import { BlockchainService, file_cashback_blockchain_v1_blockchain } from "@cashback/proto/blockchain/v1";
import { ensureDatabase, migrate } from "@cashback/db";
import { redactUrl, type Logger } from "@cashback/runtime";
import { ChainClient } from "./chain/chain-client.ts";
import { ClawbackService } from "./clawbacks/clawback-service.ts";
import { ensureChainContinuity } from "./chain/chain-continuity.ts";
import { createChainBreaker } from "./chain/circuit-breaker.ts";
import { LOCAL_CHAIN_ID } from "@cashback/token";
import type { AdapterConfig } from "./config.ts";
import { createDb } from "./db.ts";
import { createMetrics } from "./metrics.ts";
import { Completions } from "./mints/completions.ts";
import { MintDispatcher } from "./mints/dispatcher.ts";
import { MintService } from "./mints/mint-service.ts";
import { ReceiptWatcher } from "./mints/receipt-watcher.ts";
import { Settlement } from "./mints/settlement.ts";
import { TxMonitor } from "./mints/tx-monitor.ts";
import { NonceStore } from "./nonces/nonce-store.ts";
import { registerReflection } from "./reflection/reflection-service.ts";
import { requireBearer } from "./rpc/auth.ts";
import { blockchainServiceImpl } from "./rpc/blockchain-service.ts";
import { startServer } from "./rpc/server.ts";
import { TransactionLookup } from "./transactions/transaction-lookup.ts";

export const migrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../prisma/migrations");

/** Wires the adapter together: database, chain, background workers, then the RPC server. */
export async function startAdapter(config: AdapterConfig, logger: Logger, opts: { deploymentsDir?: string } = {}) {
  await ensureDatabase(config.databaseUrl);
  const { applied } = await migrate({ connectionString: config.databaseUrl, migrationsDir, logger });
  logger.info({ database: redactUrl(config.databaseUrl), applied }, "database ready");

  const metrics = createMetrics();
  const breaker = createChainBreaker({ failures: config.breakerFailures, halfOpenAfterMs: config.breakerHalfOpenAfterMs }, logger, metrics);
  const chain = await ChainClient.connect({ ...config, breaker, metrics, deploymentsDir: opts.deploymentsDir });
  if (config.usingDevKey && chain.chainId !== LOCAL_CHAIN_ID) {
    throw new Error(`ADAPTER_PRIVATE_KEY is unset: the public dev key is only allowed on chain ${LOCAL_CHAIN_ID}`);
  }
  logger.info({ chainId: chain.chainId, tokenAddress: chain.token, signer: chain.signerAddress }, "chain connected");

  const db = createDb(config.databaseUrl);
  await ensureChainContinuity(db, chain, logger);
  const nonces = new NonceStore(db, chain, logger, metrics);
  await nonces.resync("start-up");
  const completions = new Completions();
  const settlement = new Settlement({ db, chain, completions, logger, metrics, confirmations: config.confirmations });
  const receipts = new ReceiptWatcher({ chain, settlement, logger, metrics, confirmations: config.confirmations, stuckAfterMs: config.stuckAfterMs });
  const dispatcher = new MintDispatcher({ db, chain, nonces, settlement, receipts, completions, logger, metrics, batchMax: config.batchMax, batchWindowMs: config.batchWindowMs });
  settlement.onRequeued = () => dispatcher.requireChainCheck();
  const monitor = new TxMonitor({ db, chain, settlement, dispatcher, logger, metrics, confirmations: config.confirmations, stuckAfterMs: config.stuckAfterMs, intervalMs: config.monitorIntervalMs, maxFeePerGas: config.maxFeePerGas });
  const mints = new MintService({ db, breaker, dispatcher, completions, receiptTimeoutMs: config.receiptTimeoutMs });
  const clawbacks = new ClawbackService({ db, breaker, dispatcher, completions, receiptTimeoutMs: config.receiptTimeoutMs });
  const transactions = new TransactionLookup({ db, chain });

  monitor.start();
  dispatcher.start();
  const server = await startServer({
    host: config.host,
    port: config.port,
    metrics: metrics.registry,
    ready: async () => {
      await db.$queryRaw`SELECT 1`;
      await chain.blockNumber();
      return true;
    },
    routes: (router) => {
      router.service(BlockchainService, blockchainServiceImpl({ mints, clawbacks, transactions, chain, logger }), { requestGate: requireBearer(config.authToken) });
      registerReflection(router, [file_cashback_blockchain_v1_blockchain]);
    },
  });
  logger.info({ host: config.host, port: server.port }, "blockchain adapter listening (gRPC, gRPC-Web, Connect)");

  return {
    port: server.port,
    chain,
    db,
    breaker,
    metrics,
    monitor,
    dispatcher,
    /** Stops taking calls, lets in-flight work finish, closes connections. */
    async stop() {
      await server.close();
      await dispatcher.stop();
      await monitor.stop();
      await receipts.stop();
      await db.$disconnect();
    },
  };
}

export type Adapter = Awaited<ReturnType<typeof startAdapter>>;
