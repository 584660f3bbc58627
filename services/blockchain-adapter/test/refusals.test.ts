// A batch refused for a reason that concerns every entry (the minter role revoked) first asks the
// chain which of its ids are already minted: those were minted by an earlier transaction of ours
// and are CONFIRMED from their event; only the others fail.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicClient, createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { cashbackTokenAbi } from "@cashback/token";
import { freshWallet, setMinterRole, startTestChain, waitFor, type TestChain } from "@cashback/testing";
import { mintIdFor } from "../src/mints/mint-request.ts";
import { startTestAdapter } from "./support/adapter.ts";

describe("a batch refused for a revoked minter role", () => {
  let chain: TestChain;
  beforeAll(async () => {
    chain = await startTestChain();
  });
  afterAll(async () => {
    await chain?.close();
  });

  it("confirms the ids the chain already holds and fails only the others", async () => {
    const to = freshWallet();
    // Minted earlier with the adapter's key, as by a round whose record a crash lost.
    const wallet = createWalletClient({ account: privateKeyToAccount(chain.adapterKey), transport: http(chain.nodeUrl) });
    const hash = await wallet.writeContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "mint", args: [to, 4n, mintIdFor("role-minted")], chain: null });
    await createPublicClient({ transport: http(chain.nodeUrl) }).waitForTransactionReceipt({ hash });

    // Estimating every batch, so the refusal is seen before anything is sent.
    const a = await startTestAdapter(chain, { MINT_GAS_ESTIMATE: "always", MINT_BATCH_WINDOW_MS: "200" });
    // A first mint while the role holds: the start-up check of queued ids on chain is behind us, so
    // what follows reaches the refusal, not that check.
    expect((await a.client.mintToken({ idempotencyKey: "role-warm-up", to: freshWallet(), amountWei: "1" })).status).toBe(TransactionStatus.CONFIRMED);
    await setMinterRole(chain, false);
    try {
      const [minted, fresh] = await Promise.all([
        a.client.mintToken({ idempotencyKey: "role-minted", to, amountWei: "4" }),
        a.client.mintToken({ idempotencyKey: "role-fresh", to, amountWei: "1" }),
      ]);
      expect(fresh.status).toBe(TransactionStatus.FAILED);
      expect(fresh.error?.message).toMatch(/AccessControlUnauthorizedAccount/);
      expect(minted.status).toBe(TransactionStatus.CONFIRMED);
      expect(minted.txHash).toBe(hash);
      expect(await chain.balanceOf(to)).toBe(4n);
    } finally {
      await setMinterRole(chain, true);
      await a.stop();
      await a.dropDatabase();
    }
  });

  it("a bounded mint that reverted and then failed in its estimate leaves the estimate list (else every later round would skip the bounded path)", async () => {
    const a = await startTestAdapter(chain, {});
    expect((await a.client.mintToken({ idempotencyKey: "bound-warm-up", to: freshWallet(), amountWei: "1" })).status).toBe(TransactionStatus.CONFIRMED);
    await setMinterRole(chain, false);
    try {
      // Sent with a gas bound, reverted, re-queued to be estimated; the estimate names the refusal.
      const refused = await a.client.mintToken({ idempotencyKey: "bound-refused", to: freshWallet(), amountWei: "1" });
      expect(refused.status).toBe(TransactionStatus.FAILED);
      expect(refused.error?.message).toMatch(/AccessControlUnauthorizedAccount/);
      await waitFor("the failed mint to leave the estimate list", () => a.adapter.needsEstimate.size === 0, { timeoutMs: 15_000 });
    } finally {
      await setMinterRole(chain, true);
      await a.stop();
      await a.dropDatabase();
    }
  });
});
