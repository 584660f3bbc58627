import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { encodeFunctionData, keccak256, parseEther, toHex } from "viem";
import { cashbackTokenAbi } from "@cashback/token";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import { useTestStack } from "./support/adapter.ts";

const stack = useTestStack();
const shopper = () => privateKeyToAccount(generatePrivateKey()).address;

describe("MintToken and GetBalance", () => {
  it("mints to a wallet and the balance shows it", async () => {
    const to = shopper();
    const res = await stack.adapter.client.mintToken({ idempotencyKey: "entry-1", to, amountWei: parseEther("1.25").toString() });
    expect(res.status).toBe(TransactionStatus.CONFIRMED);
    expect(res.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(res.blockNumber).toBeGreaterThan(0n);
    expect(res.replayed).toBe(false);

    const balance = await stack.adapter.client.getBalance({ address: to });
    expect(balance.balanceWei).toBe(parseEther("1.25").toString());
    expect(balance.blockNumber).toBeGreaterThanOrEqual(res.blockNumber);

    const byKey = await stack.adapter.client.getTransaction({ lookup: { case: "idempotencyKey", value: "entry-1" } });
    expect(byKey).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: res.txHash, idempotencyKeys: ["entry-1"] });
    expect(byKey.confirmations).toBeGreaterThanOrEqual(1n);
    expect(BigInt(byKey.gasUsed)).toBeGreaterThan(21_000n);
    const byHash = await stack.adapter.client.getTransaction({ lookup: { case: "txHash", value: res.txHash } });
    expect(byHash.blockNumber).toBe(res.blockNumber);
  });

  it("replaying a key returns the same transaction and mints nothing more", async () => {
    const to = shopper();
    const first = await stack.adapter.client.mintToken({ idempotencyKey: "entry-replay", to, amountWei: "1000" });
    const again = await stack.adapter.client.mintToken({ idempotencyKey: "entry-replay", to, amountWei: "1000" });
    expect(again).toMatchObject({ txHash: first.txHash, blockNumber: first.blockNumber, replayed: true, status: TransactionStatus.CONFIRMED });
    expect((await stack.adapter.client.getBalance({ address: to })).balanceWei).toBe("1000");
  });

  it("refuses a known key with other parameters (ALREADY_EXISTS)", async () => {
    const to = shopper();
    await stack.adapter.client.mintToken({ idempotencyKey: "entry-conflict", to, amountWei: "5" });
    const err = await stack.adapter.client.mintToken({ idempotencyKey: "entry-conflict", to, amountWei: "6" }).catch((e) => e);
    expect(ConnectError.from(err).code).toBe(Code.AlreadyExists);
    expect((await stack.adapter.client.getBalance({ address: to })).balanceWei).toBe("5");
  });

  it("mints 100 concurrent calls with distinct keys, batched, without a nonce error", async () => {
    const to = shopper();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => stack.adapter.client.mintToken({ idempotencyKey: `concurrent-${i}`, to, amountWei: `${i + 1}` })),
    );
    expect(results.every((r) => r.status === TransactionStatus.CONFIRMED)).toBe(true);
    expect((await stack.adapter.client.getBalance({ address: to })).balanceWei).toBe(String((100 * 101) / 2));
    const txs = new Set(results.map((r) => r.txHash));
    expect(txs.size).toBeLessThan(100); // concurrent calls share mintBatch transactions
    const rows = await stack.adapter.adapter.db.blockchainTransaction.count({ where: { status: { not: "CONFIRMED" } } });
    expect(rows).toBe(0);
  });

  it("MintBatch mints every entry in one transaction", async () => {
    const to = shopper();
    const res = await stack.adapter.client.mintBatch({
      mints: Array.from({ length: 50 }, (_, i) => ({ idempotencyKey: `batch-${i}`, to, amountWei: "2" })),
    });
    expect(res.results).toHaveLength(50);
    expect(new Set(res.results.map((r) => r.txHash)).size).toBe(1);
    expect(res.results.map((r) => r.idempotencyKey)).toEqual(Array.from({ length: 50 }, (_, i) => `batch-${i}`));
    expect((await stack.adapter.client.getBalance({ address: to })).balanceWei).toBe("100");
  });

  it("a mint the contract refuses is FAILED and not retryable", async () => {
    // The adapter's key loses its minter role (an operator's mistake, say).
    const admin = privateKeyToAccount(stack.chain.adminKey).address;
    await stack.chain.rpc("hardhat_impersonateAccount", [admin]);
    const roles = async (fn: "revokeRole" | "grantRole") =>
      stack.chain.rpc("eth_sendTransaction", [
        { from: admin, to: stack.chain.token, data: encodeFunctionData({ abi: cashbackTokenAbi, functionName: fn, args: [keccak256(toHex("MINTER_ROLE")), stack.chain.minter] }) },
      ]);
    await roles("revokeRole");
    try {
      const res = await stack.adapter.client.mintToken({ idempotencyKey: "entry-no-role", to: shopper(), amountWei: "1" });
      expect(res.status).toBe(TransactionStatus.FAILED);
      expect(res.error).toMatchObject({ retryable: false, reason: "REVERTED" });
      expect(res.error?.message).toMatch(/AccessControlUnauthorizedAccount/);
    } finally {
      await roles("grantRole");
    }
  });

});

describe("input validation", () => {
  const valid = { idempotencyKey: "k-valid", to: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", amountWei: "1" };
  const cases: [string, Partial<typeof valid>, RegExp][] = [
    ["a malformed address", { to: "0x1234" }, /to must be/],
    ["a bad checksum", { to: "0x70997970c51812dc3A010C7d01b50e0d17dc79C8" }, /checksum/],
    ["the zero address", { to: "0x0000000000000000000000000000000000000000" }, /zero address/],
    ["a zero amount", { amountWei: "0" }, /positive/],
    ["a negative amount", { amountWei: "-5" }, /positive/],
    ["a fractional amount", { amountWei: "1.5" }, /positive/],
    ["an amount above uint256", { amountWei: (2n ** 256n).toString() }, /2\^128/],
    ["an amount that could overflow totalSupply", { amountWei: (2n ** 128n).toString() }, /2\^128/],
    ["an empty key", { idempotencyKey: "" }, /idempotency_key/],
    ["a key with spaces", { idempotencyKey: "has space" }, /idempotency_key/],
    ["a key too long", { idempotencyKey: "k".repeat(201) }, /idempotency_key/],
  ];
  it.each(cases)("rejects %s with INVALID_ARGUMENT", async (_name, change, message) => {
    const err = ConnectError.from(await stack.adapter.client.mintToken({ ...valid, ...change }).catch((e) => e));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toMatch(message);
  });

  it("rejects a malformed balance address", async () => {
    const err = ConnectError.from(await stack.adapter.client.getBalance({ address: "nope" }).catch((e) => e));
    expect(err.code).toBe(Code.InvalidArgument);
  });

  it("NOT_FOUND for an unknown key or hash", async () => {
    const err = ConnectError.from(await stack.adapter.client.getTransaction({ lookup: { case: "idempotencyKey", value: "never" } }).catch((e) => e));
    expect(err.code).toBe(Code.NotFound);
  });
});
