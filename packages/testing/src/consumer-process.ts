import { freePort } from "./ports.ts";
import { httpOk, serviceProcess } from "./service-process.ts";

/**
 * The real mint consumer as a separate process (so a test can SIGKILL it mid-work), on a free
 * port, against the given NATS, adapter and database.
 */
export async function startConsumerProcess(opts: { natsUrl: string; adapterUrl: string; adapterToken: string; databaseUrl: string; env?: Record<string, string> }) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = serviceProcess({
    name: "mint-consumer",
    entry: "services/mint-consumer/src/main.ts",
    env: {
      CONSUMER_PORT: String(port),
      CONSUMER_DATABASE_URL: opts.databaseUrl,
      NATS_URL: opts.natsUrl,
      ADAPTER_URL: opts.adapterUrl,
      ADAPTER_AUTH_TOKEN: opts.adapterToken,
      ...opts.env,
    },
    ready: () => httpOk(`${url}/readyz`),
  });
  await proc.start();
  return Object.assign(proc, { url, port });
}

export type ConsumerProcess = Awaited<ReturnType<typeof startConsumerProcess>>;
