import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { createLogger } from "@cashback/runtime";
import { startNatsServer, type NatsServer } from "@cashback/testing";
import { startApi, type Api } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";

export const ADMIN_KEY = "test-admin-key-0123456789";
export const WALLETS = [
  "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
  "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
] as const;

export interface Answer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A REST client for one key. */
export function client(baseUrl: string, key?: string) {
  async function call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }
  return {
    call,
    get: <T = any>(path: string, headers?: Record<string, string>) => call<T>("GET", path, undefined, headers),
    post: <T = any>(path: string, body?: unknown, headers?: Record<string, string>) => call<T>("POST", path, body ?? {}, headers),
    patch: <T = any>(path: string, body: unknown, headers?: Record<string, string>) => call<T>("PATCH", path, body, headers),
  };
}
export type Client = ReturnType<typeof client>;

/** Expects a status, showing the body when it is not. */
export function expectStatus<T>(answer: Answer<T>, status: number): T {
  if (answer.status !== status) throw new Error(`expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

export interface TestApi {
  api: Api;
  baseUrl: string;
  db: TestDatabase;
  nats: NatsServer;
  admin: Client;
  as: (key?: string) => Client;
  /** A merchant with a key, and a client for it. */
  merchant(opts?: { name?: string; stacking?: "best_of" | "sum" }): Promise<{ id: string; key: string; client: Client }>;
  user(c: Client, opts?: { externalId?: string; wallet?: string }): Promise<{ id: string; wallet_address: string }>;
  rule(c: Client, body: Record<string, unknown>): Promise<{ id: string } & Record<string, any>>;
  close(): Promise<void>;
}

let counter = 0;

/**
 * The real API in this process, on its own database and its own throwaway nats-server, with the
 * adapter pointing nowhere unless `env` says otherwise.
 */
export async function startTestApi(opts: { env?: Record<string, string>; nats?: NatsServer; database?: TestDatabase; startOptions?: Parameters<typeof startApi>[2] } = {}): Promise<TestApi> {
  const db = opts.database ?? (await createTestDatabase("api"));
  const nats = opts.nats ?? (await startNatsServer());
  const logger = createLogger("api-test", process.env.TEST_LOG_LEVEL ?? "silent");
  const config = loadConfig({
    API_PORT: "0",
    API_DATABASE_URL: db.url,
    API_ADMIN_KEY: ADMIN_KEY,
    NATS_URL: nats.url,
    ADAPTER_URL: "http://127.0.0.1:9",
    ADAPTER_TIMEOUT_MS: "500",
    API_DB_POOL_SIZE: "6",
    ...opts.env,
  });
  const api = await startApi(config, logger, opts.startOptions);
  const baseUrl = `http://127.0.0.1:${api.port}`;
  const admin = client(baseUrl, ADMIN_KEY);
  const t: TestApi = {
    api,
    baseUrl,
    db,
    nats,
    admin,
    as: (key) => client(baseUrl, key),
    async merchant(o = {}) {
      const m = expectStatus(await admin.post("/v1/merchants", { name: o.name ?? `merchant ${++counter}`, ...(o.stacking ? { stacking: o.stacking } : {}) }), 201);
      const k = expectStatus(await admin.post(`/v1/merchants/${m.id}/api-keys`, { name: "test" }), 201);
      return { id: m.id, key: k.key, client: client(baseUrl, k.key) };
    },
    async user(c, o = {}) {
      return expectStatus(await c.post("/v1/users", { external_id: o.externalId ?? `shopper-${++counter}`, email: `s${counter}@example.com`, wallet_address: o.wallet ?? WALLETS[0] }), 201);
    },
    async rule(c, body) {
      return expectStatus(await c.post("/v1/rules", body), 201);
    },
    async close() {
      await api.stop();
      if (!opts.database) await db.drop();
      if (!opts.nats) await nats.close();
    },
  };
  return t;
}

export function purchaseBody(userId: string, over: Record<string, unknown> = {}) {
  return { user_id: userId, category: "groceries", amount_minor: 10_000, currency: "USD", occurred_at: new Date().toISOString(), ...over };
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
