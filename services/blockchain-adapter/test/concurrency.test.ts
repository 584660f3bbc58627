import { afterAll, beforeAll, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { startTestChain, type TestChain } from "@cashback/testing";
import { startTestAdapter } from "./support/adapter.ts";

let chain: TestChain;
beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(async () => {
  await chain?.close();
});

it("two adapters sharing one database and one key mint each key once", async () => {
  const a = await startTestAdapter(chain);
  const b = await startTestAdapter(chain, {}, a.databaseUrl);
  try {
    const to = privateKeyToAccount(generatePrivateKey()).address;
    const keys = Array.from({ length: 200 }, (_, i) => `two-${i}`);
    const first = await Promise.all(keys.map((k, i) => (i % 2 ? a : b).client.mintToken({ idempotencyKey: k, to, amountWei: "1" })));
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
