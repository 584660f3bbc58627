import { afterAll, beforeAll } from "vitest";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BlockchainService } from "@cashback/proto/blockchain/v1";
import { createTestDatabase } from "@cashback/db/testing";
import { createLogger, type Logger } from "@cashback/runtime";
import { startAdapter, type Adapter } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { startTestChain, type TestChain } from "@cashback/testing";

export const TEST_TOKEN = "test-token";

export interface RunningAdapter {
  adapter: Adapter;
  client: Client<typeof BlockchainService>;
  baseUrl: string;
  databaseUrl: string;
  stop(): Promise<void>;
}

/** Starts the real adapter (own fresh database unless one is given) against the test chain. */
export async function startTestAdapter(
  chain: TestChain,
  env: Record<string, string> = {},
  databaseUrl?: string,
  opts: { logger?: Logger } = {},
): Promise<RunningAdapter & { dropDatabase(): Promise<void> }> {
  const db = databaseUrl ? undefined : await createTestDatabase("adapter");
  const url = databaseUrl ?? db!.url;
  const config = loadConfig({
    ADAPTER_PORT: "0",
    ADAPTER_AUTH_TOKEN: TEST_TOKEN,
    ADAPTER_DATABASE_URL: url,
    CHAIN_RPC_URL: chain.rpcUrl,
    TX_MONITOR_INTERVAL_MS: "200",
    RPC_TIMEOUT_MS: "2000",
    ...env,
  });
  const logger = opts.logger ?? createLogger("blockchain-adapter", process.env.TEST_LOG_LEVEL ?? "silent");
  const adapter = await startAdapter(config, logger, { deploymentsDir: chain.deploymentsDir });
  const baseUrl = `http://127.0.0.1:${adapter.port}`;
  const client = createClient(BlockchainService, createGrpcTransport({ baseUrl, interceptors: [bearer(TEST_TOKEN)] }));
  return {
    adapter,
    client,
    baseUrl,
    databaseUrl: url,
    stop: () => adapter.stop(),
    dropDatabase: async () => db?.drop(),
  };
}

export const bearer =
  (token: string): Interceptor =>
  (next) =>
  async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

/**
 * For a test file that needs one chain and one adapter: starts both before its tests, stops
 * them (and drops the database) after. Read `stack.chain` / `stack.adapter` inside tests.
 */
export function useTestStack(env: Record<string, string> = {}) {
  const stack = {} as { chain: TestChain; adapter: Awaited<ReturnType<typeof startTestAdapter>> };
  beforeAll(async () => {
    stack.chain = await startTestChain();
    stack.adapter = await startTestAdapter(stack.chain, env);
  });
  afterAll(async () => {
    await stack.adapter?.stop();
    await stack.adapter?.dropDatabase();
    await stack.chain?.close();
  });
  return stack;
}
