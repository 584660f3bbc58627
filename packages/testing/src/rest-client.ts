import type { Address } from "viem";

export class RestError extends Error {
  override name = "RestError";
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: ${status} ${JSON.stringify(body)}`);
  }
}

/** JSON over fetch with a bearer key, for tests and demos that drive the cashback API over REST. */
export function restClient(baseUrl: string, key: string) {
  async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new RestError(res.status, parsed, `${method} ${path}`);
    return parsed as T;
  }
  return {
    baseUrl,
    get: <T = Record<string, unknown>>(path: string) => call<T>("GET", path),
    post: <T = Record<string, unknown>>(path: string, body: unknown, opts: { idempotencyKey?: string } = {}) =>
      call<T>("POST", path, body, opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {}),
  };
}

export type RestClient = ReturnType<typeof restClient>;

/** What POST/GET /v1/purchases answer (the fields tests read). */
export interface PurchaseView {
  id: string;
  user_id: string;
  amount_minor: number;
  refunded_minor: number;
  cashback: { amount_wei: string; status: string; entry_id: string; mint_id: string | null; tx_hash: string | null; block_number: string | null; clawed_back_wei: string } | null;
  refunds: { id: string; amount_minor: number; clawback_wei: string; clawback_status: "none" | "clawback_pending" | "clawed_back" | "clawback_failed" }[];
}

/**
 * A merchant with its API key and one cashback rule (`basisPoints` of every purchase), created
 * with the admin key; returns a client acting as that merchant and a way to register shoppers.
 */
export async function createMerchant(baseUrl: string, adminKey: string, opts: { name?: string; basisPoints?: number } = {}) {
  const admin = restClient(baseUrl, adminKey);
  const merchant = await admin.post<{ id: string }>("/v1/merchants", { name: opts.name ?? "Test Shop" });
  const { key } = await admin.post<{ key: string }>(`/v1/merchants/${merchant.id}/api-keys`, { name: "test" });
  const client = restClient(baseUrl, key);
  await client.post("/v1/rules", { name: "everything", kind: "percentage", basis_points: opts.basisPoints ?? 250 });
  let shoppers = 0;
  return {
    id: merchant.id,
    key,
    client,
    /** Registers a shopper with this wallet; returns the user id. */
    async addShopper(wallet: Address): Promise<string> {
      const user = await client.post<{ id: string }>("/v1/users", { external_id: `shopper-${++shoppers}-${wallet}`, email: `s${shoppers}@example.com`, wallet_address: wallet });
      return user.id;
    },
    /** A purchase in USD (cents), with an Idempotency-Key so a retry never records it twice. */
    purchase(userId: string, amountMinor: number, idempotencyKey: string) {
      return client.post<PurchaseView>("/v1/purchases", { user_id: userId, category: "groceries", amount_minor: amountMinor, currency: "USD", occurred_at: new Date().toISOString() }, { idempotencyKey });
    },
  };
}

export type TestMerchant = Awaited<ReturnType<typeof createMerchant>>;
