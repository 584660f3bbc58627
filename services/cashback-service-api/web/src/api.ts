/// <reference lib="dom" />
import type { History, PageConfig } from "./format.ts";

export interface Session {
  wallet_address: string;
  chain_id: number;
  expires_at: string;
}

/** An error answer of the API: `{ error: { code, message, details } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const json = (await res.json().catch(() => null)) as any;
  if (!res.ok) throw new ApiError(res.status, json?.error?.code ?? "error", json?.error?.message ?? `HTTP ${res.status}`, json?.error?.details?.reason);
  return json as T;
}

/** The shopper API (/v1/shopper): the session rides in an HttpOnly cookie the page never sees. */
export const api = {
  config: () => call<PageConfig>("GET", "/v1/shopper/config"),
  nonce: () => call<{ nonce: string; expires_at: string; chain_id: number; statement: string }>("POST", "/v1/shopper/nonce"),
  signIn: (message: string, signature: string) => call<Session>("POST", "/v1/shopper/sign-in", { message, signature }),
  /** The current session, or null when not signed in (401). */
  session: () => call<Session>("GET", "/v1/shopper/session").catch((err: unknown) => (err instanceof ApiError && err.status === 401 ? null : Promise.reject(err))),
  signOut: () => call<void>("POST", "/v1/shopper/sign-out"),
  history: (cursor?: string) => call<History>("GET", `/v1/shopper/history?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`),
};
