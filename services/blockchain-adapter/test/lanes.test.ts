// Signer lanes (ADAPTER_SIGNER_KEYS): each key sends on its own nonce sequence, so a transaction
// held back in one lane (here: an underpriced one on a chain that mines a block every 200 ms)
// holds back only that lane's mints; and a signer with no gas money is a clear log line, a metric
// and UNAVAILABLE for new work, until it is funded; and a lane whose commit fails after its
// broadcast holds those mints back from the other lanes until the chain has been asked.
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { createPublicClient, http, toHex, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { createLogger } from "@cashback/runtime";
import { freshMinter, freshWallet, setMinterRole, startTestChain, type TestChain } from "@cashback/testing";
import { startTestAdapter } from "./support/adapter.ts";
import { startRpcInterceptor, until } from "./faults/support.ts";

describe("signer lanes", () => {
  let chain: TestChain;
  beforeAll(async () => {
    chain = await startTestChain({ blockTimeMs: 200 });
  });
  afterAll(async () => {
    await chain?.close();
  });

  it("a transaction stuck in one lane does not hold back the mints of the other", async () => {
    const [stuckKey, freeKey] = [await freshMinter(chain), await freshMinter(chain)];
    const stuck = privateKeyToAccount(stuckKey).address;
    const free = privateKeyToAccount(freeKey).address;
    // Lane A's next nonce is taken by a transaction priced far below the base fee: the node keeps
    // it, never mines it, and everything after it in lane A waits.
    const node = createPublicClient({ transport: http(chain.nodeUrl) });
    const held = await node.getTransactionCount({ address: stuck, blockTag: "pending" });
    const underpriced = await privateKeyToAccount(stuckKey).signTransaction({ type: "eip1559", chainId: chain.chainId, nonce: held, to: stuck, gas: 21_000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 0n });
    await node.sendRawTransaction({ serializedTransaction: underpriced });

    const a = await startTestAdapter(chain, { ADAPTER_SIGNER_KEYS: `${stuckKey},${freeKey}`, MINT_BATCH_MAX: "2", RECEIPT_TIMEOUT_MS: "4000", TX_STUCK_AFTER_MS: "3600000" });
    try {
      // The node's pending count does not include an underpriced transaction: lane A starts after it.
      await a.adapter.db.walletNonce.update({ where: { chainId_address: { chainId: chain.chainId, address: stuck } }, data: { nextNonce: BigInt(held + 1) } });
      const to = freshWallet();
      const results = await Promise.all(Array.from({ length: 24 }, (_, i) => a.client.mintToken({ idempotencyKey: `lane-${i}`, to, amountWei: "1" })));
      const bySigner = new Map<string, TransactionStatus[]>();
      for (const r of results) {
        const tx = await a.client.getTransaction({ lookup: { case: "idempotencyKey", value: r.idempotencyKey } });
        const row = await a.adapter.db.blockchainTransaction.findUnique({ where: { txHash: tx.txHash } });
        const signer = row?.fromAddress ?? "none";
        bySigner.set(signer, [...(bySigner.get(signer) ?? []), r.status]);
      }
      // Both lanes took work; lane B's all confirmed while lane A's still wait behind the held nonce.
      expect(bySigner.get(free)?.length).toBeGreaterThan(0);
      expect(new Set(bySigner.get(free))).toEqual(new Set([TransactionStatus.CONFIRMED]));
      expect(bySigner.get(stuck)?.length).toBeGreaterThan(0);
      expect(new Set(bySigner.get(stuck))).toEqual(new Set([TransactionStatus.SUBMITTED]));
      const confirmed = results.filter((r) => r.status === TransactionStatus.CONFIRMED).length;
      expect((await a.client.getBalance({ address: to })).balanceWei).toBe(String(confirmed));
    } finally {
      await a.stop();
      await a.dropDatabase();
    }
  });

  it("a signer without gas money: SIGNER_OUT_OF_FUNDS in the log and the metric, UNAVAILABLE for new keys, until funded", async () => {
    const poorKey: Hex = generatePrivateKey();
    const poor: Address = privateKeyToAccount(poorKey).address;
    await setMinterRole(chain, true, poor); // a minter, but no ETH
    const lines: { msg: string; reason?: string }[] = [];
    const logger = createLogger("blockchain-adapter", "warn", new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
    const a = await startTestAdapter(chain, { ADAPTER_SIGNER_KEYS: poorKey, RECEIPT_TIMEOUT_MS: "1500" }, undefined, { logger });
    try {
      const to = freshWallet();
      const first = await a.client.mintToken({ idempotencyKey: "poor-1", to, amountWei: "5" });
      expect(first.status).toBe(TransactionStatus.SUBMITTED); // recorded; it goes once the signer can pay
      expect(lines.some((l) => l.reason === "SIGNER_OUT_OF_FUNDS" && /SIGNER_OUT_OF_FUNDS/.test(l.msg))).toBe(true);
      const metric = await a.adapter.metrics.transactions.get();
      expect(metric.values.find((v) => v.labels.event === "out_of_funds")?.value).toBeGreaterThan(0);

      const err = ConnectError.from(await a.client.mintToken({ idempotencyKey: "poor-2", to, amountWei: "1" }).catch((e: unknown) => e));
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toMatch(/can not pay for gas/);

      await chain.rpc("hardhat_setBalance", [poor, toHex(10n ** 20n)]);
      let res = first;
      for (let i = 0; i < 40 && res.status !== TransactionStatus.CONFIRMED; i++) res = await a.client.mintToken({ idempotencyKey: "poor-1", to, amountWei: "5" });
      expect(res.status).toBe(TransactionStatus.CONFIRMED);
      expect((await a.client.mintToken({ idempotencyKey: "poor-2", to, amountWei: "1" })).status).toBe(TransactionStatus.CONFIRMED);
      expect(await chain.balanceOf(to)).toBe(6n);
    } finally {
      await a.stop();
      await a.dropDatabase();
    }
  });
});

describe("a lane whose commit fails after its broadcast", () => {
  let chain: TestChain;
  beforeAll(async () => {
    chain = await startTestChain();
  });
  afterAll(async () => {
    await chain?.close();
  });

  it("holds its mints back from the other lanes until the chain is asked (no second send)", async () => {
    const keys = [await freshMinter(chain), await freshMinter(chain)];
    const signers = keys.map((k) => privateKeyToAccount(k).address);
    const node = createPublicClient({ transport: http(chain.nodeUrl) });
    const interceptor = await startRpcInterceptor(chain.rpcUrl);
    const a = await startTestAdapter(chain, { ADAPTER_SIGNER_KEYS: keys.join(","), CHAIN_RPC_URL: interceptor.url, TX_MONITOR_INTERVAL_MS: "3600000" });
    try {
      const to = freshWallet();
      // The first broadcast reaches the node (mined at once), but its answer is lost: that lane's
      // round fails in doubt and rolls back, leaving the mint PENDING.
      interceptor.killOnBroadcast(async () => {});
      const first = a.client.mintToken({ idempotencyKey: "doubt-1", to, amountWei: "7" });
      await until("the broadcast", () => interceptor.kills === 1);
      const sent = await Promise.all(signers.map((address) => node.getTransactionCount({ address })));
      const other = sent.indexOf(0);
      expect(sent[1 - other]).toBe(1);
      // Only the other lane is woken, again and again, while the failed one backs off.
      for (const end = Date.now() + 500; Date.now() < end; await sleep(5)) a.adapter.lanes.lanes[other]!.dispatcher.nudge();
      expect((await first).status).toBe(TransactionStatus.CONFIRMED);
      expect(await node.getTransactionCount({ address: signers[other]!, blockTag: "pending" })).toBe(0); // it never sent the mint again
      expect(await chain.balanceOf(to)).toBe(7n);
    } finally {
      await a.stop();
      await a.dropDatabase();
      await interceptor.close();
    }
  });

  it("holds its clawback back from the other lanes until the chain is asked (the other lane never claims it)", async () => {
    const keys = [await freshMinter(chain), await freshMinter(chain)];
    const signers = keys.map((k) => privateKeyToAccount(k).address);
    const node = createPublicClient({ transport: http(chain.nodeUrl) });
    const interceptor = await startRpcInterceptor(chain.rpcUrl);
    const a = await startTestAdapter(chain, { ADAPTER_SIGNER_KEYS: keys.join(","), CHAIN_RPC_URL: interceptor.url, TX_MONITOR_INTERVAL_MS: "3600000" });
    try {
      const from = freshWallet();
      expect((await a.client.mintToken({ idempotencyKey: "doubt-cb-seed", to: from, amountWei: "10" })).status).toBe(TransactionStatus.CONFIRMED);
      const before = await Promise.all(signers.map((address) => node.getTransactionCount({ address })));
      // The clawback's broadcast is mined, its answer lost: that lane's round rolls back in doubt.
      interceptor.killOnBroadcast(async () => {});
      const first = a.client.clawback({ idempotencyKey: "doubt-cb-1", from, amountWei: "4" });
      await until("the broadcast", () => interceptor.kills === 1);
      const after = await Promise.all(signers.map((address) => node.getTransactionCount({ address })));
      const other = after[0] === before[0] ? 0 : 1;
      expect(after[1 - other]).toBe(before[1 - other]! + 1);
      const estimates = interceptor.calls("eth_estimateGas");
      // Only the other lane is woken, again and again, while the failed one backs off. Nothing but
      // a claim would make it estimate a clawback (refused here: the refId is used, so no second
      // send on this node; one whose estimate does not see the first would send it again).
      for (const end = Date.now() + 500; Date.now() < end; await sleep(5)) a.adapter.lanes.lanes[other]!.dispatcher.nudge();
      expect((await first).status).toBe(TransactionStatus.CONFIRMED);
      expect(interceptor.calls("eth_estimateGas")).toBe(estimates);
      expect(await node.getTransactionCount({ address: signers[other]!, blockTag: "pending" })).toBe(before[other]);
      expect(await chain.balanceOf(from)).toBe(6n);
    } finally {
      await a.stop();
      await a.dropDatabase();
      await interceptor.close();
    }
  });
});
