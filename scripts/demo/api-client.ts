// A minimal client of the cashback REST API for scripts (demo, benchmarks): JSON in and out,
// bearer key, and an error that names the route and the API's error body.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly route: string,
    readonly body: string,
  ) {
    super(`${route} answered ${status}: ${body.slice(0, 300)}`);
  }
}

export function apiClient(baseUrl: string) {
  async function call<T>(method: string, route: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${baseUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new ApiError(res.status, `${method} ${route}`, text);
    return JSON.parse(text) as T;
  }
  return {
    get: <T>(route: string, key: string) => call<T>("GET", route, key),
    post: <T>(route: string, key: string, body: unknown, headers?: Record<string, string>) => call<T>("POST", route, key, body, headers),
  };
}

export type ApiClient = ReturnType<typeof apiClient>;

/** The fields of a ledger entry (GET /v1/users/{id}/ledger) the scripts read. */
export interface LedgerEntry {
  id: string;
  kind: "accrual" | "clawback";
  status: "pending" | "minted" | "failed" | "clawback_pending" | "clawed_back" | "clawback_failed";
  purchase_id: string;
  wallet_address: string;
  amount_wei: string;
  chain_ref: string | null;
  tx_hash: string | null;
  block_number: string | null;
  failure: { reason: string; message: string } | null;
}

export interface Ledger {
  entries: { data: LedgerEntry[]; next_cursor: string | null };
  totals: { net_minted_wei: string; entries: number };
  balance: { available: boolean; balance_wei: string | null };
}

export const FINAL_STATUSES = new Set(["minted", "failed", "clawed_back", "clawback_failed"]);
