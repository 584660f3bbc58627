import { setTimeout as sleep } from "node:timers/promises";
import type { PurchaseView } from "@cashback/testing";

export interface Accepted {
  id: string;
  entryId: string;
  userId: string;
  amountWei: bigint;
  /** The refund sent for it, if any (half the purchase), and the cashback it takes back. */
  refund?: { id: string; clawbackWei: bigint };
}

interface LoadOptions {
  count: number;
  perSecond: number;
  apiUrls: () => string[];
  key: string;
  users: string[];
  random: () => number;
  /** Share of purchases refunded by half once accepted (default 0). */
  refundShare?: number;
  maxInFlight?: number;
  giveUpAfterMs?: number;
  onProgress?: (done: number) => void;
}

/**
 * Sends `count` purchases at `perSecond` (and refunds for a share of them), spread over the API
 * instances, as a careful client does: each request with its own Idempotency-Key, retried (on
 * another instance) after a refused connection, a timeout, 409, 429 or 5xx until it is accepted,
 * so an instance killed mid-request costs a retry, never a lost or doubled purchase or refund.
 * Any other answer is a bug and throws.
 */
export async function drivePurchases(opts: LoadOptions): Promise<{ accepted: Accepted[]; retries: number }> {
  const accepted: Accepted[] = [];
  let retries = 0;
  let inFlight = 0;
  const started = Date.now();
  const pending = new Set<Promise<void>>();
  let failure: Error | undefined;

  const post = async <T>(i: number, path: string, body: unknown, idempotencyKey: string): Promise<T> => {
    const text = JSON.stringify(body);
    const deadline = Date.now() + (opts.giveUpAfterMs ?? 300_000);
    for (let attempt = 0; ; attempt++) {
      const urls = opts.apiUrls();
      const url = urls[(i + attempt) % urls.length]!;
      let status = 0;
      let answer = "";
      try {
        const res = await fetch(`${url}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${opts.key}`, "content-type": "application/json", "idempotency-key": idempotencyKey },
          body: text,
          signal: AbortSignal.timeout(15_000),
        });
        status = res.status;
        answer = await res.text();
      } catch {
        // refused, reset or timed out: the instance is down or going down
      }
      if (status === 200 || status === 201) return JSON.parse(answer) as T;
      if (status !== 0 && status !== 409 && status !== 429 && status < 500) throw new Error(`POST ${path} (${idempotencyKey}): ${status} ${answer}`);
      if (Date.now() > deadline) throw new Error(`POST ${path} (${idempotencyKey}) not accepted after ${attempt + 1} attempts (last ${status} ${answer})`);
      retries++;
      await sleep(200 + Math.floor(opts.random() * 300));
    }
  };

  const one = async (i: number) => {
    const amountMinor = 100 + Math.floor(opts.random() * 99_900);
    const refunds = opts.random() < (opts.refundShare ?? 0);
    const p = await post<PurchaseView>(i, "/v1/purchases", { user_id: opts.users[i % opts.users.length], category: "groceries", amount_minor: amountMinor, currency: "USD", occurred_at: new Date().toISOString() }, `chaos-${i}`);
    const entry: Accepted = { id: p.id, entryId: p.cashback!.entry_id, userId: p.user_id, amountWei: BigInt(p.cashback!.amount_wei) };
    if (refunds) {
      const r = await post<{ id: string; clawback_wei: string }>(i, `/v1/purchases/${p.id}/refunds`, { amount_minor: Math.floor(amountMinor / 2), reason: "chaos" }, `chaos-refund-${i}`);
      entry.refund = { id: r.id, clawbackWei: BigInt(r.clawback_wei) };
    }
    accepted.push(entry);
  };

  for (let i = 0; i < opts.count && !failure; i++) {
    const due = started + (i * 1000) / opts.perSecond;
    if (due > Date.now()) await sleep(due - Date.now());
    while (inFlight >= (opts.maxInFlight ?? 64)) await Promise.race(pending);
    inFlight++;
    const p: Promise<void> = one(i)
      .catch((err: Error) => void (failure ??= err))
      .finally(() => {
        inFlight--;
        pending.delete(p);
        opts.onProgress?.(accepted.length);
      });
    pending.add(p);
  }
  await Promise.all(pending);
  if (failure) throw failure;
  return { accepted, retries };
}
