// GetTransaction by the hash of a transaction that was fully dropped (its nonce taken by a
// transaction not ours on file) answers NOT_FOUND / TRANSACTION_DROPPED, not SUBMITTED forever,
// while the key it carried is re-queued and minted by another transaction.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { createPublicClient, http, parseGwei } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { freshWallet, startTestChain, type TestChain } from "@cashback/testing";
import { startTestAdapter } from "./support/adapter.ts";

describe("a fully dropped transaction", () => {
  let chain: TestChain;
  beforeAll(async () => {
    chain = await startTestChain();
    await chain.rpc("evm_setAutomine", [false]); // blocks only when the test mines one
  });
  afterAll(async () => {
    await chain?.close();
  });

  it("is NOT_FOUND (TRANSACTION_DROPPED) by hash; its mint is re-queued and minted by another", async () => {
    const a = await startTestAdapter(chain, { RECEIPT_TIMEOUT_MS: "300", TX_MONITOR_INTERVAL_MS: "3600000" });
    try {
      const to = freshWallet();
      const sent = await a.client.mintToken({ idempotencyKey: "dropped-1", to, amountWei: "7" });
      expect(sent.status).toBe(TransactionStatus.SUBMITTED);
      const ours = await a.client.getTransaction({ lookup: { case: "idempotencyKey", value: "dropped-1" } });
      expect(ours.txHash).toMatch(/^0x/);

      // Someone else with the key (another process, an operator) takes that nonce with a higher bid.
      const signer = privateKeyToAccount(chain.adapterKey);
      const node = createPublicClient({ transport: http(chain.nodeUrl) });
      const nonce = await node.getTransactionCount({ address: signer.address, blockTag: "latest" });
      const other = await signer.signTransaction({ type: "eip1559", chainId: chain.chainId, nonce, to: signer.address, gas: 21_000n, maxFeePerGas: parseGwei("900"), maxPriorityFeePerGas: parseGwei("900") });
      await node.sendRawTransaction({ serializedTransaction: other });
      await chain.rpc("evm_mine");
      await a.adapter.monitor.check(); // sees the nonce used: DROPPED, the mint re-queued

      const err = ConnectError.from(await a.client.getTransaction({ lookup: { case: "txHash", value: ours.txHash } }).catch((e: unknown) => e));
      expect(err.code).toBe(Code.NotFound);
      expect(err.rawMessage).toMatch(/dropped/);

      let res = sent;
      for (let i = 0; i < 50 && res.status !== TransactionStatus.CONFIRMED; i++) {
        await chain.rpc("evm_mine");
        res = await a.client.mintToken({ idempotencyKey: "dropped-1", to, amountWei: "7" });
      }
      expect(res.status).toBe(TransactionStatus.CONFIRMED);
      expect(res.txHash).not.toBe(ours.txHash);
      expect(await chain.balanceOf(to)).toBe(7n);
    } finally {
      await a.stop();
      await a.dropDatabase();
    }
  });
});
