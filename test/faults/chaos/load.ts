import { setTimeout as sleep } from "node:timers/promises";
import type { PurchaseView } from "@cashback/testing";

export interface Accepted {
  id: string;
  entryId: string;
  userId: string;
  amountWei: bigint;
}

/**
 * Sends `count` purchases at `perSecond`, spread over the API instances, as a careful client
 * does: each with its own Idempotency-Key, retried (on another instance) after a refused
 * connection, a timeout, 409, 429 or 5xx until it is accepted, so an instance killed mid-request
 * costs a retry, never a lost or doubled purchase. Any other answer is a bug and throws.
 */
export async function drivePurchases(opts: {
  count: number;
  perSecond: number;
  apiUrls: () => string[];
  key: string;
  users: string[];
  random: () => number;
  maxInFlight?: number;
  giveUpAfterMs?: number;
  onProgress?: (done: number) => void;
}): Promise<{ accepted: Accepted[]; retries: number }> {
  const accepted: Accepted[] = [];
  let retries = 0;
  let inFlight = 0;
  const started = Date.now();
  const pending = new Set<Promise<void>>();
  let failure: Error | undefined;
  const one = async (i: number) => {
    const body = JSON.stringify({
      user_id: opts.users[i % opts.users.length],
      category: "groceries",
      amount_minor: 100 + Math.floor(opts.random() * 99_900),
      currency: "USD",
      occurred_at: new Date().toISOString(),
    });
    const deadline = Date.now() + (opts.giveUpAfterMs ?? 300_000);
    for (let attempt = 0; ; attempt++) {
      const urls = opts.apiUrls();
      const url = urls[(i + attempt) % urls.length]!;
      let status = 0;
      let text = "";
      try {
        const res = await fetch(`${url}/v1/purchases`, {
          method: "POST",
          headers: { authorization: `Bearer ${opts.key}`, "content-type": "application/json", "idempotency-key": `chaos-${i}` },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        status = res.status;
        text = await res.text();
      } catch {
        // refused, reset or timed out: the instance is down or going down
      }
      if (status === 200 || status === 201) {
        const p = JSON.parse(text) as PurchaseView;
        accepted.push({ id: p.id, entryId: p.cashback!.entry_id, userId: p.user_id, amountWei: BigInt(p.cashback!.amount_wei) });
        return;
      }
      if (status !== 0 && status !== 409 && status !== 429 && status < 500) throw new Error(`purchase ${i}: ${status} ${text}`);
      if (Date.now() > deadline) throw new Error(`purchase ${i} not accepted after ${attempt + 1} attempts (last ${status} ${text})`);
      retries++;
      await sleep(200 + Math.floor(opts.random() * 300));
    }
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
