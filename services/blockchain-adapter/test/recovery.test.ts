import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { createPublicClient, createWalletClient, encodeFunctionData, http } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { cashbackTokenAbi } from "@cashback/token";
import { mintIdFor } from "../src/mints/mint-request.ts";
import { startTestChain, type TestChain } from "@cashback/testing";
import { startTestAdapter } from "./support/adapter.ts";

let chain: TestChain;
const running: { stop(): Promise<void>; dropDatabase(): Promise<void> }[] = [];
const shopper = () => privateKeyToAccount(generatePrivateKey()).address;

async function sql<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

async function signerNonce(): Promise<number> {
  const client = createPublicClient({ transport: http(chain.nodeUrl) });
  return client.getTransactionCount({ address: chain.minter, blockTag: "pending" });
}

/** Sends a mint with the adapter's key behind its back, as a crashed adapter's broadcast would have. */
async function broadcastBehindTheAdaptersBack(key: string, to: `0x${string}`, amount: bigint) {
  const wallet = createWalletClient({ account: privateKeyToAccount(chain.adapterKey), transport: http(chain.nodeUrl) });
  return wallet.writeContract({ address: chain.token, abi: cashbackTokenAbi, functionName: "mint", args: [to, amount, mintIdFor(key)], chain: null });
}

async function mintBehindTheAdaptersBack(key: string, to: `0x${string}`, amount: bigint) {
  const hash = await broadcastBehindTheAdaptersBack(key, to, amount);
  await createPublicClient({ transport: http(chain.nodeUrl) }).waitForTransactionReceipt({ hash });
  return hash;
}

/** What a crashed adapter leaves in its database: the key recorded as PENDING. */
function recordPendingMint(databaseUrl: string, key: string, to: string, amount: string) {
  return sql(databaseUrl, "INSERT INTO mints (idempotency_key, mint_id, to_address, amount_wei) VALUES ($1, $2, $3, $4)", [key, mintIdFor(key), to, amount]);
}

/** An adapter that ran once and is down, as after a crash: its database, and a way to restart it. */
async function downAdapter() {
  const first = await startTestAdapter(chain);
  await first.adapter.stop();
  const entry = { stop: async () => {}, dropDatabase: first.dropDatabase };
  running.push(entry);
  return {
    databaseUrl: first.databaseUrl,
    async restart(env: Record<string, string> = {}) {
      const restarted = await startTestAdapter(chain, env, first.databaseUrl);
      entry.stop = restarted.stop;
      return restarted;
    },
  };
}

beforeAll(async () => {
  chain = await startTestChain();
});
afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.stop();
    await r.dropDatabase();
  }
});
afterAll(async () => {
  await chain?.close();
});

describe("nonces", () => {
  it("recovers from a drifted wallet_nonces row, at restart and while running", async () => {
    const first = await startTestAdapter(chain);
    const to = shopper();
    await first.client.mintToken({ idempotencyKey: "nonce-before", to, amountWei: "1" });
    await first.adapter.stop();

    // Too high (a lost transaction would leave a gap the node never fills).
    await sql(first.databaseUrl, "UPDATE wallet_nonces SET next_nonce = next_nonce + 7");
    const second = await startTestAdapter(chain, {}, first.databaseUrl);
    running.push({ stop: second.stop, dropDatabase: first.dropDatabase });
    const [row] = await sql<{ next_nonce: string }>(first.databaseUrl, "SELECT next_nonce FROM wallet_nonces");
    expect(Number(row!.next_nonce)).toBe(await signerNonce());
    const afterHigh = await second.client.mintToken({ idempotencyKey: "nonce-after-high", to, amountWei: "1" });
    expect(afterHigh.status).toBe(TransactionStatus.CONFIRMED);

    // Too low, while running: the node says "nonce too low", the adapter resyncs and goes on.
    await sql(first.databaseUrl, "UPDATE wallet_nonces SET next_nonce = 0");
    const afterLow = await second.client.mintToken({ idempotencyKey: "nonce-after-low", to, amountWei: "1" });
    expect(afterLow.status).toBe(TransactionStatus.CONFIRMED);
    expect((await second.client.getBalance({ address: to })).balanceWei).toBe("3");
    const metrics = await (await fetch(`${second.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/adapter_nonce_resyncs_total [1-9]/);
  });
});

describe("idempotency across a crash", () => {
  it("settles a mint broadcast before a crash from the chain, without sending it again", async () => {
    const a = await downAdapter();
    // The crashed adapter had recorded the key and broadcast the mint, but not committed.
    const to = shopper();
    await recordPendingMint(a.databaseUrl, "crash-1", to, "500");
    const original = await mintBehindTheAdaptersBack("crash-1", to, 500n);
    const nonceBefore = await signerNonce();

    const restarted = await a.restart();
    const replay = await restarted.client.mintToken({ idempotencyKey: "crash-1", to, amountWei: "500" });
    expect(replay).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: original, replayed: true });
    expect(await signerNonce()).toBe(nonceBefore); // nothing else was sent
    expect((await restarted.client.getBalance({ address: to })).balanceWei).toBe("500");
    const tx = await restarted.client.getTransaction({ lookup: { case: "txHash", value: original } });
    expect(tx.status).toBe(TransactionStatus.CONFIRMED);
  });

  it("waits for a pre-crash transaction still in the mempool instead of failing or resending", async () => {
    const a = await downAdapter();
    const to = shopper();
    await chain.rpc("evm_setAutomine", [false]);
    try {
      await recordPendingMint(a.databaseUrl, "crash-mempool", to, "500");
      // The crashed round's transaction: broadcast, not yet mined.
      const original = await broadcastBehindTheAdaptersBack("crash-mempool", to, 500n);

      const restarted = await a.restart({ RECEIPT_TIMEOUT_MS: "300" });
      const waiting = await restarted.client.mintToken({ idempotencyKey: "crash-mempool", to, amountWei: "500" });
      expect(waiting.status).toBe(TransactionStatus.SUBMITTED); // not FAILED, not sent again

      await chain.rpc("evm_mine");
      let settled = waiting;
      for (let i = 0; i < 50 && settled.status !== TransactionStatus.CONFIRMED; i++) {
        settled = await restarted.client.mintToken({ idempotencyKey: "crash-mempool", to, amountWei: "500" });
      }
      expect(settled).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: original });
      expect((await restarted.client.getBalance({ address: to })).balanceWei).toBe("500");
      const [{ count }] = (await sql<{ count: string }>(a.databaseUrl, "SELECT count(*) FROM blockchain_transactions WHERE kind <> 'recovered'")) as [{ count: string }];
      expect(count).toBe("0");
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });

  it("uses the contract's mint id when the database never saw the key", async () => {
    const a = await startTestAdapter(chain);
    running.push(a);
    const to = shopper();
    const original = await mintBehindTheAdaptersBack("lost-db-1", to, 7n);
    await mintBehindTheAdaptersBack("lost-db-2", to, 11n);

    const single = await a.client.mintToken({ idempotencyKey: "lost-db-1", to, amountWei: "7" });
    expect(single).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: original });
    // In a batch the contract skips the used id and mints the rest.
    const batch = await a.client.mintBatch({
      mints: [
        { idempotencyKey: "lost-db-2", to, amountWei: "11" },
        { idempotencyKey: "lost-db-3", to, amountWei: "13" },
      ],
    });
    expect(batch.results.map((r) => r.status)).toEqual([TransactionStatus.CONFIRMED, TransactionStatus.CONFIRMED]);
    expect(batch.results[0]!.txHash).not.toBe(batch.results[1]!.txHash);
    expect((await a.client.getBalance({ address: to })).balanceWei).toBe(String(7 + 11 + 13));
  });
});

describe("stuck and dropped transactions", () => {
  it("re-sends a dropped transaction and replaces a stuck one with higher fees", async () => {
    const a = await startTestAdapter(chain, { TX_STUCK_AFTER_MS: "300", RECEIPT_TIMEOUT_MS: "400", TX_MONITOR_INTERVAL_MS: "3600000" });
    running.push(a);
    const to = shopper();
    await chain.rpc("evm_setAutomine", [false]);
    try {
      // Dropped from the mempool: the monitor sends the same signed bytes again.
      const dropped = await a.client.mintToken({ idempotencyKey: "dropped-1", to, amountWei: "3" });
      expect(dropped.status).toBe(TransactionStatus.SUBMITTED);
      expect(await chain.rpc("hardhat_dropTransaction", [dropped.txHash])).toBe(true);
      await new Promise((r) => setTimeout(r, 350));
      await a.adapter.monitor.check();
      await chain.rpc("evm_mine");
      await a.adapter.monitor.check();
      const afterDrop = await a.client.getTransaction({ lookup: { case: "idempotencyKey", value: "dropped-1" } });
      expect(afterDrop).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: dropped.txHash });
      const [resent] = await sql<{ broadcasts: number }>(a.databaseUrl, "SELECT broadcasts FROM blockchain_transactions WHERE tx_hash = $1", [dropped.txHash]);
      expect(resent!.broadcasts).toBe(2);

      // Still pending after stuckAfterMs: replaced (same nonce, higher fees); only one can be mined.
      const stuck = await a.client.mintToken({ idempotencyKey: "stuck-1", to, amountWei: "4" });
      expect(stuck.status).toBe(TransactionStatus.SUBMITTED);
      await new Promise((r) => setTimeout(r, 350));
      await a.adapter.monitor.check();
      await chain.rpc("evm_mine");
      await a.adapter.monitor.check();
      const afterStuck = await a.client.getTransaction({ lookup: { case: "idempotencyKey", value: "stuck-1" } });
      expect(afterStuck.status).toBe(TransactionStatus.CONFIRMED);
      expect(afterStuck.txHash).not.toBe(stuck.txHash);
      const rows = await sql<{ status: string }>(a.databaseUrl, "SELECT status::text FROM blockchain_transactions WHERE tx_hash = $1", [stuck.txHash]);
      expect(rows[0]!.status).toBe("DROPPED");
      // A caller holding the first hash learns what became of it.
      const byOldHash = await a.client.getTransaction({ lookup: { case: "txHash", value: stuck.txHash } });
      expect(byOldHash).toMatchObject({ status: TransactionStatus.CONFIRMED, txHash: afterStuck.txHash, idempotencyKeys: ["stuck-1"] });
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
    expect((await a.client.getBalance({ address: to })).balanceWei).toBe("7");
  });
});

describe("a nonce gap", () => {
  it("is filled when an unrecorded broadcast is evicted, so later mints are not stuck behind it", async () => {
    const a = await downAdapter();
    const to = shopper();
    await chain.rpc("evm_setAutomine", [false]);
    try {
      // A crashed round's transaction: in the node's mempool, not in our database.
      await recordPendingMint(a.databaseUrl, "gap-k", to, "5");
      const lost = await broadcastBehindTheAdaptersBack("gap-k", to, 5n);

      const b = await a.restart({ RECEIPT_TIMEOUT_MS: "300", TX_STUCK_AFTER_MS: "300", TX_MONITOR_INTERVAL_MS: "3600000" });
      await b.client.mintToken({ idempotencyKey: "gap-k", to, amountWei: "5" }); // held back: its id is in the mempool
      expect(await chain.rpc("hardhat_dropTransaction", [lost])).toBe(true); // evicted
      await b.client.mintToken({ idempotencyKey: "gap-l", to, amountWei: "7" }); // waits behind the hole

      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setTimeout(r, 100));
        await b.adapter.monitor.check();
        await chain.rpc("evm_mine");
      }
      const statuses = await sql<{ idempotency_key: string; status: string }>(a.databaseUrl, "SELECT idempotency_key, status::text FROM mints ORDER BY 1");
      expect(statuses).toEqual([
        { idempotency_key: "gap-k", status: "CONFIRMED" },
        { idempotency_key: "gap-l", status: "CONFIRMED" },
      ]);
      expect((await b.client.getBalance({ address: to })).balanceWei).toBe("12");
      const kinds = await sql<{ kind: string }>(a.databaseUrl, "SELECT kind FROM blockchain_transactions ORDER BY nonce");
      expect(kinds.map((k) => k.kind)).toEqual(["nonce_filler", "mint_batch"]); // no fee-bump spiral
    } finally {
      await chain.rpc("evm_setAutomine", [true]);
    }
  });
});

describe("a restarted local chain", () => {
  it("clears records of the old chain so a replayed key mints on the new one", async () => {
    const a = await startTestAdapter(chain);
    const to = shopper();
    await a.client.mintToken({ idempotencyKey: "old-chain-1", to, amountWei: "9" });
    await a.adapter.stop();

    const fresh = await startTestChain(); // a new in-memory chain, like restarting `npm run chain`
    try {
      const b = await startTestAdapter(fresh, {}, a.databaseUrl);
      running.push({ stop: b.stop, dropDatabase: a.dropDatabase });
      const after = await b.client.mintToken({ idempotencyKey: "old-chain-1", to, amountWei: "9" });
      expect(after.replayed).toBe(false);
      expect(after.status).toBe(TransactionStatus.CONFIRMED);
      expect(after.blockNumber).toBeGreaterThan(0n);
      expect((await b.client.getBalance({ address: to })).balanceWei).toBe("9");
      await b.stop();
      running.pop();
      await a.dropDatabase();
    } finally {
      await fresh.close();
    }
  });
});

describe("a paused token", () => {
  it("holds mints back until it is unpaused, then mints them", async () => {
    const a = await startTestAdapter(chain, { RECEIPT_TIMEOUT_MS: "500" });
    running.push(a);
    const admin = privateKeyToAccount(chain.adminKey).address;
    await chain.rpc("hardhat_impersonateAccount", [admin]);
    const call = (fn: "pause" | "unpause") =>
      chain.rpc("eth_sendTransaction", [{ from: admin, to: chain.token, data: encodeFunctionData({ abi: cashbackTokenAbi, functionName: fn }) }]);
    const to = shopper();
    await call("pause");
    let res;
    try {
      res = await a.client.mintToken({ idempotencyKey: "paused-1", to, amountWei: "3" });
      expect(res.status).toBe(TransactionStatus.SUBMITTED); // waiting, not failed
    } finally {
      await call("unpause");
    }
    for (let i = 0; i < 100 && res.status !== TransactionStatus.CONFIRMED; i++) {
      res = await a.client.mintToken({ idempotencyKey: "paused-1", to, amountWei: "3" });
    }
    expect(res.status).toBe(TransactionStatus.CONFIRMED);
    expect((await a.client.getBalance({ address: to })).balanceWei).toBe("3");
  });
});

describe("a mint the contract refuses", () => {
  it("fails only that mint, not the others claimed in its batch", async () => {
    const a = await startTestAdapter(chain, { TX_MONITOR_INTERVAL_MS: "3600000" });
    running.push(a);
    const to = shopper();
    await a.client.mintToken({ idempotencyKey: "poison-seed", to, amountWei: "1" }); // totalSupply > 0
    // Rows the API would refuse today (e.g. written by an older version): this amount overflows
    // totalSupply, so the contract reverts with a panic.
    const huge = (2n ** 256n - 1n).toString();
    const rows = [["poison-1", "1"], ["poison-bad", huge], ["poison-2", "1"], ["poison-3", "1"]];
    // One statement, so the dispatcher claims them together as one batch.
    await sql(
      a.databaseUrl,
      "INSERT INTO mints (idempotency_key, mint_id, to_address, amount_wei) SELECT k, m, $1, a::numeric FROM unnest($2::text[], $3::text[], $4::text[]) AS t(k, m, a)",
      [to, rows.map(([k]) => k), rows.map(([k]) => mintIdFor(k!)), rows.map(([, amt]) => amt)],
    );
    a.adapter.dispatcher.nudge();
    let statuses: Record<string, string> = {};
    for (let i = 0; i < 100; i++) {
      const found = await sql<{ idempotency_key: string; status: string }>(a.databaseUrl, "SELECT idempotency_key, status::text FROM mints WHERE idempotency_key LIKE 'poison-%' AND idempotency_key <> 'poison-seed'");
      statuses = Object.fromEntries(found.map((r) => [r.idempotency_key, r.status]));
      if (Object.values(statuses).every((st) => st === "CONFIRMED" || st === "FAILED")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(statuses).toEqual({ "poison-1": "CONFIRMED", "poison-bad": "FAILED", "poison-2": "CONFIRMED", "poison-3": "CONFIRMED" });
    expect((await a.client.getBalance({ address: to })).balanceWei).toBe("4");
    const bad = await a.client.getTransaction({ lookup: { case: "idempotencyKey", value: "poison-bad" } });
    expect(bad.status).toBe(TransactionStatus.FAILED);
    expect(bad.error?.message).toMatch(/rejected the mint/);
    // Halving isolates the refused entry; the good ones still share transactions.
    const hashes = new Set<string>();
    for (const key of ["poison-1", "poison-2", "poison-3"]) {
      hashes.add((await a.client.getTransaction({ lookup: { case: "idempotencyKey", value: key } })).txHash);
    }
    expect(hashes.size).toBeLessThan(3);
  });
});
