import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import type { Transport } from "@connectrpc/connect";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { STREAMS, type Envelope } from "@cashback/events";
import { createLogger } from "@cashback/runtime";
import {
  startAdapterProcess,
  startNatsServer,
  startTcpProxy,
  startTestChain,
  streamMessages,
  waitFor,
  type AdapterProcess,
  type NatsServer,
  type TcpProxy,
  type TestChain,
} from "@cashback/testing";
import { startConsumer, type Consumer } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { DURABLE_NAME } from "../../src/intake/intake.ts";

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
  /** A TCP proxy in front of the adapter: `down()` makes it unreachable (connection refused) at once. */
  adapterProxy: TcpProxy;
  /**
   * Starts the consumer in this process on a fresh database; stopped after the test.
   * `viaProxy`: reach the adapter through `adapterProxy`.
   */
  startConsumer(env?: Record<string, string>, opts?: { viaProxy?: boolean }): Promise<Consumer>;
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
    stack.adapterProxy = await startTcpProxy(stack.adapter.port);
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
    await stack.adapterProxy?.up();
    if (stack.adapter && !stack.adapter.running) await stack.adapter.start();
  });

  afterAll(async () => {
    await stack.nc?.close();
    await stack.adapterProxy?.close();
    await stack.adapter?.stop();
    await adapterDb?.drop();
    await stack.nats?.close();
    await stack.chain?.close();
  });

  stack.startConsumer = async (env = {}, opts = {}) => {
    const db = await createTestDatabase("mint_consumer");
    const config = loadConfig({
      CONSUMER_PORT: "0",
      CONSUMER_DATABASE_URL: db.url,
      NATS_URL: stack.nats.url,
      ADAPTER_URL: opts.viaProxy ? stack.adapterProxy.url : stack.adapter.url,
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

/** Waits until the consumer has taken and acked everything in CASHBACK. */
export async function drained(nc: NatsConnection, timeoutMs = 60_000): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await waitFor(
    "the durable consumer to ack everything",
    async () => {
      const info = await jsm.consumers.info(STREAMS.cashback.name, DURABLE_NAME);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    { timeoutMs },
  );
}

/** Result events on CASHBACK_RESULTS, optionally for one entry. */
export async function resultEvents(nc: NatsConnection, entryId?: string): Promise<Envelope[]> {
  const all = await streamMessages(nc, STREAMS.results.name);
  return all.map((m) => m.json as Envelope).filter((e) => !entryId || (e.payload as { entry_id?: string }).entry_id === entryId);
}

/** Messages on CASHBACK_DLQ. */
export const deadLetters = (nc: NatsConnection) => streamMessages(nc, STREAMS.deadLetters.name);

/**
 * For a test file whose consumers talk to an in-memory BlockchainService (fake-adapter.ts): a
 * throwaway nats-server, fresh streams per test, a fresh consumer database per consumer.
 */
export function useFakeAdapterStack() {
  const stack = {} as {
    nats: NatsServer;
    nc: NatsConnection;
    /** `databaseUrl`: start on an existing database (the caller drops it), e.g. to restart. */
    startConsumer(transport: Transport, env?: Record<string, string>, opts?: { databaseUrl?: string }): Promise<Consumer>;
  };
  const consumers: { consumer: Consumer; db?: TestDatabase }[] = [];
  beforeAll(async () => {
    stack.nats = await startNatsServer();
    stack.nc = await connect({ servers: stack.nats.url });
  });
  beforeEach(async () => {
    const jsm = await jetstreamManager(stack.nc);
    for (const s of Object.values(STREAMS)) await jsm.streams.delete(s.name).catch(() => {});
  });
  afterEach(async () => {
    for (const { consumer, db } of consumers.splice(0)) {
      await consumer.stop();
      await db?.drop();
    }
  });
  afterAll(async () => {
    await stack.nc?.close();
    await stack.nats?.close();
  });
  stack.startConsumer = async (transport, env = {}, opts = {}) => {
    const db = opts.databaseUrl ? undefined : await createTestDatabase("mint_consumer");
    const config = loadConfig({ CONSUMER_PORT: "0", CONSUMER_DATABASE_URL: opts.databaseUrl ?? db!.url, NATS_URL: stack.nats.url, ...FAST_ENV, ...env });
    const consumer = await startConsumer(config, createLogger("mint-consumer", process.env.TEST_LOG_LEVEL ?? "silent"), { adapterTransport: transport });
    consumers.push({ consumer, db });
    return consumer;
  };
  return stack;
}
