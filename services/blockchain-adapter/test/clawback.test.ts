import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema, TransactionStatus } from "@cashback/proto/blockchain/v1";
import { createWalletClient, encodeFunctionData, http, keccak256, toHex, type Address, type Hash } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { cashbackTokenAbi } from "@cashback/token";
import { startTestChain, type TestChain } from "@cashback/testing";
import { refIdFor } from "../src/clawbacks/clawback-request.ts";
import { startTestAdapter } from "./support/adapter.ts";

let chain: TestChain;
let main: Awaited<ReturnType<typeof startTestAdapter>>;
const running: { stop(): Promise<void>; dropDatabase(): Promise<void> }[] = [];
const holder = () => privateKeyToAccount(generatePrivateKey()).address;

beforeAll(async () => {
  chain = await startTestChain();
  main = await startTestAdapter(chain);
});
afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.stop();
    await r.dropDatabase();
  }
});
afterAll(async () => {
  await main?.stop();
  await main?.dropDatabase();
  await chain?.close();
});

async function sql<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** Every CashbackClawedBack event for a refId, read straight from the node (not through the adapter). */
async function clawbackEvents(refId: `0x${string}`) {
  return chain.reader.getContractEvents({ address: chain.token, abi: cashbackTokenAbi, eventName: "CashbackClawedBack", args: { refId }, fromBlock: chain.deployBlock });
}

const signerNonce = () => chain.reader.getTransactionCount({ address: chain.minter, blockTag: "pending" });

/** A clawback sent with the adapter's key behind its back, as a crashed adapter's broadcast would have been. */
function clawbackBehindTheAdaptersBack(key: string, from: Address, amount: bigint): Promise<Hash> {
  const wallet = createWalletClient({ account: privateKeyToAccount(chain.adapterKey), transport: http(chain.nodeUrl) });
  return wallet.writeContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "clawback", args: [from, amount, refIdFor(key)], chain: null });
}

/** What a crashed adapter leaves in its database: the clawback recorded as PENDING. */
function recordPendingClawback(databaseUrl: string, key: string, from: string, amount: string) {
  return sql(databaseUrl, "INSERT INTO clawbacks (idempotency_key, ref_id, from_address, amount_wei) VALUES ($1, $2, $3, $4)", [key, refIdFor(key), from, amount]);
}

const failure = async (call: Promise<unknown>) => {
  const err = ConnectError.from(await call.then(() => undefined, (e) => e));
  return { code: err.code, detail: err.findDetails(ErrorDetailSchema)[0], message: err.rawMessage };
};

describe("Clawback", () => {
  it("burns once per key: a replay returns the same transaction and burns nothing more", async () => {
    const from = holder();
    await main.client.mintToken({ idempotencyKey: "cb-mint-1", to: from, amountWei: "10" });

    const first = await main.client.clawback({ idempotencyKey: "refund-1", from, amountWei: "4" });
    expect(first).toMatchObject({ idempotencyKey: "refund-1", status: TransactionStatus.CONFIRMED, replayed: false, refId: keccak256(toHex("refund-1")) });
    expect(first.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(first.blockNumber).toBeGreaterThan(0n);
    expect(await chain.balanceOf(from)).toBe(6n);

    const again = await main.client.clawback({ idempotencyKey: "refund-1", from, amountWei: "4" });
    expect(again).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: first.txHash, blockNumber: first.blockNumber, replayed: true });
    expect(await chain.balanceOf(from)).toBe(6n);
    const events = await clawbackEvents(first.refId as `0x${string}`);
    expect(events.map((e) => [e.transactionHash, e.args.from, e.args.amount])).toEqual([[first.txHash, from, 4n]]);

    const byKey = await main.client.getTransaction({ lookup: { case: "idempotencyKey", value: "refund-1" } });
    expect(byKey).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: first.txHash, idempotencyKeys: ["refund-1"] });
    const byHash = await main.client.getTransaction({ lookup: { case: "txHash", value: first.txHash } });
    expect(byHash).toMatchObject({ status: TransactionStatus.CONFIRMED, idempotencyKeys: ["refund-1"] });
    const [row] = await sql<{ kind: string }>(main.databaseUrl, "SELECT kind FROM blockchain_transactions WHERE tx_hash = $1", [first.txHash]);
    expect(row!.kind).toBe("clawback");
  });

  it("refuses a known key with other parameters, and a mint's key (ALREADY_EXISTS)", async () => {
    const from = holder();
    await main.client.mintToken({ idempotencyKey: "cb-mint-2", to: from, amountWei: "10" });
    await main.client.clawback({ idempotencyKey: "refund-2", from, amountWei: "1" });
    for (const call of [
      () => main.client.clawback({ idempotencyKey: "refund-2", from, amountWei: "2" }),
      () => main.client.clawback({ idempotencyKey: "refund-2", from: holder(), amountWei: "1" }),
      () => main.client.clawback({ idempotencyKey: "cb-mint-2", from, amountWei: "1" }),
      () => main.client.mintToken({ idempotencyKey: "refund-2", to: from, amountWei: "1" }),
    ]) {
      const { code, detail } = await failure(call());
      expect(code).toBe(Code.AlreadyExists);
      expect(detail).toMatchObject({ retryable: false, reason: "IDEMPOTENCY_KEY_REUSED" });
    }
    // A MintBatch with a clawback's key among new ones records none of them.
    const batch = await failure(main.client.mintBatch({ mints: [{ idempotencyKey: "refund-2-sibling", to: from, amountWei: "1" }, { idempotencyKey: "refund-2", to: from, amountWei: "1" }] }));
    expect(batch.code).toBe(Code.AlreadyExists);
    expect(await main.adapter.db.mint.findUnique({ where: { idempotencyKey: "refund-2-sibling" } })).toBeNull();
    expect(await chain.balanceOf(from)).toBe(9n);
  });

  it("is a final FAILED with reason INSUFFICIENT_BALANCE when the holder holds less", async () => {
    const from = holder();
    await main.client.mintToken({ idempotencyKey: "cb-mint-3", to: from, amountWei: "5" });
    const res = await main.client.clawback({ idempotencyKey: "refund-3", from, amountWei: "6" });
    expect(res.status).toBe(TransactionStatus.FAILED);
    expect(res.error).toMatchObject({ retryable: false, reason: "INSUFFICIENT_BALANCE" });
    expect(res.error?.message).toMatch(/holds 5 wei, less than the 6 wei/);
    expect(await chain.balanceOf(from)).toBe(5n);

    const again = await main.client.clawback({ idempotencyKey: "refund-3", from, amountWei: "6" });
    expect(again).toMatchObject({ status: TransactionStatus.FAILED, replayed: true, error: { reason: "INSUFFICIENT_BALANCE" } });
    const view = await main.client.getTransaction({ lookup: { case: "idempotencyKey", value: "refund-3" } });
    expect(view).toMatchObject({ status: TransactionStatus.FAILED, error: { reason: "INSUFFICIENT_BALANCE", retryable: false } });
    expect(await clawbackEvents(refIdFor("refund-3"))).toEqual([]);
  });

  it("is a final FAILED with reason REVERTED for other refusals (minter role revoked)", async () => {
    const from = holder();
    await main.client.mintToken({ idempotencyKey: "cb-mint-4", to: from, amountWei: "5" });
    const admin = privateKeyToAccount(chain.adminKey).address;
    await chain.rpc("hardhat_impersonateAccount", [admin]);
    const roles = (fn: "revokeRole" | "grantRole") =>
      chain.rpc("eth_sendTransaction", [
        { from: admin, to: chain.token, data: encodeFunctionData({ abi: cashbackTokenAbi, functionName: fn, args: [keccak256(toHex("MINTER_ROLE")), chain.minter] }) },
      ]);
    await roles("revokeRole");
    try {
      const res = await main.client.clawback({ idempotencyKey: "refund-4", from, amountWei: "1" });
      expect(res.status).toBe(TransactionStatus.FAILED);
      expect(res.error).toMatchObject({ retryable: false, reason: "REVERTED" });
      expect(res.error?.message).toMatch(/AccessControlUnauthorizedAccount/);
    } finally {
      await roles("grantRole");
    }
    expect(await chain.balanceOf(from)).toBe(5n);
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ["a malformed holder", { from: "0x1234" }, /from must be/],
    ["the zero address", { from: "0x0000000000000000000000000000000000000000" }, /zero address/],
    ["a zero amount", { amountWei: "0" }, /positive/],
    ["an amount of 2^128", { amountWei: (2n ** 128n).toString() }, /2\^128/],
    ["a key with spaces", { idempotencyKey: "has space" }, /idempotency_key/],
  ])("rejects %s with INVALID_ARGUMENT", async (_name, change, message) => {
    const valid = { idempotencyKey: "refund-valid", from: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", amountWei: "1" };
    const { code, message: text } = await failure(main.client.clawback({ ...valid, ...change }));
    expect(code).toBe(Code.InvalidArgument);
    expect(text).toMatch(message);
  });
});

describe("Clawback across a crash", () => {
  /** An adapter that minted `amount` to a fresh holder and is down, as after a crash. */
  async function crashedAdapterWithHolder(amount: string) {
    const first = await startTestAdapter(chain);
    const from = holder();
    await first.client.mintToken({ idempotencyKey: `seed-${from}`, to: from, amountWei: amount });
    await first.adapter.stop();
    const entry = { stop: async () => {}, dropDatabase: first.dropDatabase };
    running.push(entry);
    return {
      from,
      databaseUrl: first.databaseUrl,
      async restart(env: Record<string, string> = {}) {
        const restarted = await startTestAdapter(chain, env, first.databaseUrl);
        entry.stop = restarted.stop;
        return restarted;
      },
    };
  }

  it("settles a clawback broadcast before the crash from its event, without burning twice", async () => {
    const a = await crashedAdapterWithHolder("10");
    await recordPendingClawback(a.databaseUrl, "crash-refund-1", a.from, "4");
    const original = await clawbackBehindTheAdaptersBack("crash-refund-1", a.from, 4n);
    await chain.reader.waitForTransactionReceipt({ hash: original });
    const nonceBefore = await signerNonce();

    const restarted = await a.restart();
    const res = await restarted.client.clawback({ idempotencyKey: "crash-refund-1", from: a.from, amountWei: "4" });
    expect(res).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: original, replayed: true });
    expect(await signerNonce()).toBe(nonceBefore); // nothing else was sent
    expect(await chain.balanceOf(a.from)).toBe(6n);
    expect(await clawbackEvents(refIdFor("crash-refund-1"))).toHaveLength(1);
    const [row] = await sql<{ kind: string }>(a.databaseUrl, "SELECT kind FROM blockchain_transactions WHERE tx_hash = $1", [original]);
    expect(row!.kind).toBe("recovered");
  });

  it("waits for a pre-crash clawback still in the mempool instead of failing or resending", async () => {
    const a = await crashedAdapterWithHolder("10");
    await chain.rpc("evm_setAutomine", [false]);
    try {
      await recordPendingClawback(a.databaseUrl, "crash-refund-2", a.from, "3");
      const original = await clawbackBehindTheAdaptersBack("crash-refund-2", a.from, 3n);
      const restarted = await a.restart({ RECEIPT_TIMEOUT_MS: "300" });
      const waiting = await restarted.client.clawback({ idempotencyKey: "crash-refund-2", from: a.from, amountWei: "3" });
      expect(waiting.status).toBe(TransactionStatus.SUBMITTED);

      await chain.rpc("evm_mine");
      let settled = waiting;
      for (let i = 0; i < 50 && settled.status !== TransactionStatus.CONFIRMED; i++) {
        settled = await restarted.client.clawback({ idempotencyKey: "crash-refund-2", from: a.from, amountWei: "3" });
      }
      expect(settled).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: original });
      expect(await chain.balanceOf(a.from)).toBe(7n);
      const ours = await sql<{ count: string }>(a.databaseUrl, "SELECT count(*) FROM blockchain_transactions WHERE kind = 'clawback'");
      expect(ours[0]!.count).toBe("0"); // never sent by the restarted adapter
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  it("re-sends a clawback transaction the node dropped", async () => {
    const a = await crashedAdapterWithHolder("10");
    const b = await a.restart({ TX_STUCK_AFTER_MS: "300", RECEIPT_TIMEOUT_MS: "400", TX_MONITOR_INTERVAL_MS: "3600000" });
    await chain.rpc("evm_setAutomine", [false]);
    try {
      const sent = await b.client.clawback({ idempotencyKey: "dropped-refund", from: a.from, amountWei: "2" });
      expect(sent.status).toBe(TransactionStatus.SUBMITTED);
      expect(await chain.rpc("hardhat_dropTransaction", [sent.txHash])).toBe(true);
      await new Promise((r) => setTimeout(r, 350)); // past TX_STUCK_AFTER_MS
      await b.adapter.monitor.check();
      await chain.rpc("evm_mine");
      await b.adapter.monitor.check();
      const view = await b.client.getTransaction({ lookup: { case: "idempotencyKey", value: "dropped-refund" } });
      expect(view).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: sent.txHash });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
    expect(await chain.balanceOf(a.from)).toBe(8n);
  });
});
