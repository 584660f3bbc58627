import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { createTestDatabase } from "@cashback/db/testing";
import { TEST_ADAPTER_TOKEN } from "./adapter-process.ts";
import { startChainProcess, type ChainProcess } from "./chain-process.ts";
import { startNatsServer, type NatsServer } from "./nats-server.ts";
import { startPgCluster, type PgCluster } from "./pg-cluster.ts";
import { freePort } from "./ports.ts";
import { httpOk, serviceProcess, type ServiceProcess } from "./service-process.ts";

export type ServiceName = "adapter" | "api" | "consumer";

/** One running instance of a service: kill() (SIGKILL), stop() (SIGTERM), start() again on the same port and env. */
export type StackInstance = ServiceProcess & { service: ServiceName; index: number; url: string; port: number };

export interface StackOptions {
  /** Instances of each service (default 1 each). */
  instances?: Partial<Record<ServiceName, number>>;
  /**
   * "own" (default when a test breaks it): a throwaway Postgres cluster (startPgCluster) the test
   * can restart; "shared": fresh databases on the machine's Postgres (TEST_DATABASE_URL or :5432).
   */
  postgres?: "own" | "shared";
  /** Extra environment per service (e.g. shorter retry intervals). */
  env?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Interval mining instead of automine (ms). */
  blockTimeMs?: number;
  /** Every line each instance prints is appended to <logDir>/<service>-<index>.log (for post-mortems). */
  logDir?: string;
}

export const STACK_ADMIN_KEY = "stack-admin-key-0123456789";

/**
 * The whole system as separate processes, as it runs in production: a `hardhat node` with the
 * token deployed (behind a TCP proxy the test can cut: `chain.proxy`), its own nats-server with
 * JetStream (so streams never collide with other tests), Postgres (its own cluster or fresh
 * databases on the shared one), then N instances of the adapter, the API and the consumer, each
 * on its own port. Instances of one service share that service's database; consumer and API
 * instance i talk to adapter i mod N. Every instance can be killed, stopped and started again.
 */
export async function startStack(opts: StackOptions = {}) {
  const count = (s: ServiceName) => opts.instances?.[s] ?? 1;
  if (opts.logDir) mkdirSync(opts.logDir, { recursive: true });
  const cleanup: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
    cleanup.length = 0;
  };
  try {
    const [chain, nats, pg] = await Promise.all([
      startChainProcess({ blockTimeMs: opts.blockTimeMs }),
      startNatsServer(),
      opts.postgres === "shared" ? Promise.resolve(undefined) : startPgCluster(),
    ]);
    cleanup.push(() => chain.close(), () => nats.close());
    if (pg) cleanup.push(() => pg.close());

    const databaseUrls = {} as Record<ServiceName, string>;
    for (const service of ["adapter", "api", "consumer"] as const) {
      if (pg) databaseUrls[service] = pg.url(`stack_${service}`); // the services create it at start
      else {
        const db = await createTestDatabase(`stack_${service}`);
        cleanup.push(() => db.drop());
        databaseUrls[service] = db.url;
      }
    }

    const instances: Record<ServiceName, StackInstance[]> = { adapter: [], api: [], consumer: [] };
    cleanup.push(() => Promise.all(Object.values(instances).flat().map((i) => i.stop(5_000))));
    const make = async (service: ServiceName, index: number, env: (port: number) => Record<string, string>, entry: string, readyPath: string) => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const name = `${service}-${index}`;
      const logFile = opts.logDir ? createWriteStream(path.join(opts.logDir, `${name}.log`), { flags: "a" }) : undefined;
      if (logFile) cleanup.push(() => new Promise((resolve) => logFile.end(resolve)));
      const proc = serviceProcess({
        name,
        entry,
        env: { ...env(port), ...opts.env?.[service] },
        ready: () => httpOk(`${url}${readyPath}`),
        readyTimeoutMs: 120_000,
        onLine: logFile ? (line) => logFile.write(`${line}\n`) : undefined,
      });
      const instance: StackInstance = Object.assign(proc, { service, index, url, port });
      instances[service].push(instance);
      return instance;
    };
    // The first instance creates and migrates the database; the others then start side by side.
    const startAll = async (list: StackInstance[]) => {
      await list[0]!.start();
      await Promise.all(list.slice(1).map((i) => i.start()));
    };

    for (let i = 0; i < count("adapter"); i++) {
      await make("adapter", i, (port) => ({
        ADAPTER_PORT: String(port),
        ADAPTER_AUTH_TOKEN: TEST_ADAPTER_TOKEN,
        ADAPTER_DATABASE_URL: databaseUrls.adapter,
        CHAIN_RPC_URL: chain.rpcUrl,
        TOKEN_ADDRESS: chain.token,
        TOKEN_DEPLOY_BLOCK: chain.deployBlock.toString(),
        TX_MONITOR_INTERVAL_MS: "200",
      }), "services/blockchain-adapter/src/main.ts", "/readyz");
    }
    await startAll(instances.adapter);
    const adapterUrl = (i: number) => instances.adapter[i % instances.adapter.length]!.url;

    for (let i = 0; i < count("consumer"); i++) {
      await make("consumer", i, (port) => ({
        CONSUMER_PORT: String(port),
        CONSUMER_DATABASE_URL: databaseUrls.consumer,
        NATS_URL: nats.url,
        ADAPTER_URL: adapterUrl(i),
        ADAPTER_AUTH_TOKEN: TEST_ADAPTER_TOKEN,
      }), "services/mint-consumer/src/main.ts", "/readyz");
    }
    for (let i = 0; i < count("api"); i++) {
      await make("api", i, (port) => ({
        API_PORT: String(port),
        API_DATABASE_URL: databaseUrls.api,
        API_ADMIN_KEY: STACK_ADMIN_KEY,
        NATS_URL: nats.url,
        ADAPTER_URL: adapterUrl(i),
        ADAPTER_AUTH_TOKEN: TEST_ADAPTER_TOKEN,
        CHAIN_ID: String(chain.chainId),
        CHAIN_RPC_URL: chain.rpcUrl,
        TOKEN_ADDRESS: chain.token,
        API_RATE_LIMIT_MAX: "10000000", // tests drive thousands of purchases with one key
      }), "services/cashback-service-api/src/main.ts", "/readyz");
    }
    await Promise.all([startAll(instances.consumer), startAll(instances.api)]);

    return {
      chain,
      nats,
      /** The throwaway Postgres cluster (postgres: "own"). */
      pg,
      databaseUrls,
      adapters: instances.adapter,
      apis: instances.api,
      consumers: instances.consumer,
      /** Every instance, adapters first. */
      get all(): StackInstance[] {
        return [...instances.adapter, ...instances.consumer, ...instances.api];
      },
      /** The first API instance's base URL. */
      apiUrl: instances.api[0]!.url,
      adminKey: STACK_ADMIN_KEY,
      adapterToken: TEST_ADAPTER_TOKEN,
      /** What `npm run reconcile` reads from its environment, for this stack. */
      reconcileEnv: {
        API_DATABASE_URL: databaseUrls.api,
        CHAIN_RPC_URL: chain.nodeUrl,
        TOKEN_ADDRESS: chain.token,
        TOKEN_DEPLOY_BLOCK: chain.deployBlock.toString(),
      } as Record<string, string>,
      /** Stops every instance (SIGTERM), the chain, NATS and Postgres, and drops the databases. */
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export type Stack = Awaited<ReturnType<typeof startStack>>;
export type { ChainProcess, NatsServer, PgCluster };
