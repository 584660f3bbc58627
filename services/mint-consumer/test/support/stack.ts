import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { STREAMS } from "@cashback/events";
import { createLogger } from "@cashback/runtime";
import { startAdapterProcess, startNatsServer, startTestChain, type AdapterProcess, type NatsServer, type TestChain } from "@cashback/testing";
import { startConsumer, type Consumer } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";

/** Settings that make retries and reconciliation quick enough for tests. */
export const FAST_ENV: Record<string, string> = {
  CONSUMER_RETRY_BASE_MS: "50",
  CONSUMER_RETRY_CAP_MS: "400",
  CONSUMER_RECONCILE_INTERVAL_MS: "200",
  CONSUMER_POLL_INTERVAL_MS: "200",
  CONSUMER_ADAPTER_TIMEOUT_MS: "20000",
};

export interface ConsumerStack {
  chain: TestChain;
  nats: NatsServer;
  /** A client of the throwaway NATS for the test itself (publish, read streams). */
  nc: NatsConnection;
  adapter: AdapterProcess;
  /** Starts the consumer in this process on a fresh database; stopped after the test. */
  startConsumer(env?: Record<string, string>): Promise<Consumer>;
}

/**
 * For a test file: one Hardhat chain, one throwaway nats-server, the real adapter as a process
 * (own database), all shared by its tests; each test gets fresh streams and its own consumer
 * database. Assertions about mints read the chain directly (chain.reader), by mint id.
 */
export function useConsumerStack(): ConsumerStack {
  const stack = {} as ConsumerStack;
  const consumers: { consumer: Consumer; db: TestDatabase }[] = [];
  let adapterDb: TestDatabase | undefined;

  beforeAll(async () => {
    const [chain, nats, db] = await Promise.all([startTestChain(), startNatsServer(), createTestDatabase("consumer_adapter")]);
    adapterDb = db;
    stack.chain = chain;
    stack.nats = nats;
    stack.nc = await connect({ servers: nats.url });
    stack.adapter = await startAdapterProcess({ chain, databaseUrl: db.url, env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn" } });
  });

  beforeEach(async () => {
    // Fresh streams (and so a fresh durable consumer) per test: nothing left over from the last one.
    const jsm = await jetstreamManager(stack.nc);
    for (const s of Object.values(STREAMS)) await jsm.streams.delete(s.name).catch(() => {});
  });

  afterEach(async () => {
    for (const { consumer, db } of consumers.splice(0)) {
      await consumer.stop();
      await db.drop();
    }
    if (stack.adapter && !stack.adapter.running) await stack.adapter.start();
  });

  afterAll(async () => {
    await stack.nc?.close();
    await stack.adapter?.stop();
    await adapterDb?.drop();
    await stack.nats?.close();
    await stack.chain?.close();
  });

  stack.startConsumer = async (env = {}) => {
    const db = await createTestDatabase("mint_consumer");
    const config = loadConfig({
      CONSUMER_PORT: "0",
      CONSUMER_DATABASE_URL: db.url,
      NATS_URL: stack.nats.url,
      ADAPTER_URL: stack.adapter.url,
      ADAPTER_AUTH_TOKEN: stack.adapter.token,
      ...FAST_ENV,
      ...env,
    });
    const logger = createLogger("mint-consumer", process.env.TEST_LOG_LEVEL ?? "silent");
    const consumer = await startConsumer(config, logger);
    consumers.push({ consumer, db });
    return consumer;
  };

  return stack;
}
