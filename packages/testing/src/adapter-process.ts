import type { TestChain } from "./chain.ts";
import { freePort } from "./ports.ts";
import { httpOk, serviceProcess } from "./service-process.ts";

export const TEST_ADAPTER_TOKEN = "test-adapter-token";

/**
 * The real blockchain adapter as a separate process against a test chain, on a free port, with
 * its own database URL (create one with createTestDatabase from @cashback/db/testing); not started
 * yet. `readiness` decides what start() waits for: /readyz (default) or only /healthz (a fault
 * test that starts it while the chain or database is down).
 */
export async function adapterProcess(opts: {
  chain: TestChain;
  databaseUrl: string;
  env?: Record<string, string>;
  readiness?: "ready" | "listening";
  onLine?: (line: string) => void;
}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = serviceProcess({
    name: "blockchain-adapter",
    entry: "services/blockchain-adapter/src/main.ts",
    env: {
      ADAPTER_PORT: String(port),
      ADAPTER_AUTH_TOKEN: TEST_ADAPTER_TOKEN,
      ADAPTER_DATABASE_URL: opts.databaseUrl,
      CHAIN_RPC_URL: opts.chain.rpcUrl,
      TOKEN_ADDRESS: opts.chain.token,
      TOKEN_DEPLOY_BLOCK: opts.chain.deployBlock.toString(),
      TX_MONITOR_INTERVAL_MS: "200",
      ...opts.env,
    },
    ready: () => httpOk(`${url}/${opts.readiness === "listening" ? "healthz" : "readyz"}`),
    onLine: opts.onLine,
  });
  return Object.assign(proc, { url, port, token: TEST_ADAPTER_TOKEN });
}

/** adapterProcess, started and ready. */
export async function startAdapterProcess(opts: { chain: TestChain; databaseUrl: string; env?: Record<string, string> }) {
  const proc = await adapterProcess(opts);
  await proc.start();
  return proc;
}

export type AdapterProcess = Awaited<ReturnType<typeof startAdapterProcess>>;
