import { afterAll, beforeAll, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema, TransactionStatus, type MintTokenRequest } from "@cashback/proto/blockchain/v1";
import { startTestChain, type TestChain } from "@cashback/testing";
import { startTestAdapter } from "./support/adapter.ts";

let chain: TestChain;
beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(async () => {
  await chain?.close();
});

type Adapter = Awaited<ReturnType<typeof startTestAdapter>>;

/**
 * As a real caller does: ask again with the same key while the answer is SUBMITTED or a retryable
 * error (on a saturated machine the breaker may open on slow RPCs), until a final answer.
 */
async function untilFinal(adapter: Adapter, req: Pick<MintTokenRequest, "idempotencyKey" | "to" | "amountWei">) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const res = await adapter.client.mintToken(req);
      if (res.status !== TransactionStatus.SUBMITTED) return res;
    } catch (err) {
      const retryable = err instanceof ConnectError && err.findDetails(ErrorDetailSchema).some((d) => d.retryable);
      if (!retryable) throw err;
    }
    if (Date.now() > deadline) throw new Error(`${req.idempotencyKey} not final after 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

it("two adapters sharing one database and one key mint each key once", async () => {
  const a = await startTestAdapter(chain);
  const b = await startTestAdapter(chain, {}, a.databaseUrl);
  try {
    const to = privateKeyToAccount(generatePrivateKey()).address;
    const keys = Array.from({ length: 200 }, (_, i) => `two-${i}`);
    const first = await Promise.all(keys.map((k, i) => untilFinal(i % 2 ? a : b, { idempotencyKey: k, to, amountWei: "1" })));
    expect(first.every((r) => r.status === TransactionStatus.CONFIRMED)).toBe(true);

    // Every key again, each on the other adapter: the stored answers, nothing new on chain.
    const again = await Promise.all(keys.map((k, i) => (i % 2 ? b : a).client.mintToken({ idempotencyKey: k, to, amountWei: "1" })));
    expect(again.every((r) => r.replayed && r.status === TransactionStatus.CONFIRMED)).toBe(true);
    expect(again.map((r) => r.txHash)).toEqual(first.map((r) => r.txHash));
    expect((await a.client.getBalance({ address: to })).balanceWei).toBe("200");
  } finally {
    await b.stop();
    await a.stop();
    await a.dropDatabase();
  }
});
