import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { keccak256, stringToHex } from "viem";
import { clawedBackEvents, createMerchant, freshWallet, mintedEvents, repoRoot, spendTokens, startStack, waitFor, type PurchaseView, type Stack, type TestMerchant } from "@cashback/testing";
import { loadReconcileConfig, runReconcile } from "../../scripts/reconcile/run.ts";

const run = promisify(execFile);

// The whole system as separate processes: chain node, NATS, Postgres, adapter, consumer, API.
let stack: Stack;
let shop: TestMerchant;

beforeAll(async () => {
  stack = await startStack({ postgres: "shared" });
  shop = await createMerchant(stack.apiUrl, stack.adminKey, { basisPoints: 250 });
});
afterAll(async () => {
  await stack?.close();
});

const settled = (id: string, done: (p: PurchaseView) => boolean) =>
  waitFor(`purchase ${id} settled`, async () => {
    const p = await shop.client.get<PurchaseView>(`/v1/purchases/${id}`);
    return done(p) && p;
  }, { timeoutMs: 60_000, intervalMs: 200 });

/** `npm run reconcile` as an operator runs it, against this stack; its exit code and output. */
async function reconcileCli(): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "scripts/reconcile/main.ts"], { cwd: repoRoot, env: { ...process.env, ...stack.reconcileEnv } });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe("the whole system", () => {
  it("a purchase over REST ends as a minted ledger entry whose tx hash, amount and recipient are the token's event, and the balance", async () => {
    const wallet = freshWallet();
    const user = await shop.addShopper(wallet);
    const accepted = await shop.purchase(user, 12_999, "order-1");
    expect(accepted.cashback!.amount_wei).toBe("3249750000000000000"); // 2.5 % of $129.99 at 1 CBK per dollar
    const p = await settled(accepted.id, (x) => x.cashback?.status === "minted");

    const mintId = keccak256(stringToHex(`cashback:${p.cashback!.entry_id}`));
    expect(p.cashback!.mint_id).toBe(mintId);
    const events = await mintedEvents(stack.chain, mintId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ to: wallet, amount: 3249750000000000000n, txHash: p.cashback!.tx_hash, blockNumber: BigInt(p.cashback!.block_number!) });
    expect(await stack.chain.balanceOf(wallet)).toBe(3249750000000000000n);
  });

  it("a refund ends as a clawback on chain of the refund's share", async () => {
    const wallet = freshWallet();
    const user = await shop.addShopper(wallet);
    const bought = await shop.purchase(user, 10_000, "order-2"); // 2.5 CBK
    await settled(bought.id, (x) => x.cashback?.status === "minted");
    const refund = await shop.client.post<{ id: string }>(`/v1/purchases/${bought.id}/refunds`, { amount_minor: 4_000, reason: "two items back" });
    const p = await settled(bought.id, (x) => x.refunds[0]?.clawback_status === "clawed_back");

    expect(p.refunds[0]!.clawback_wei).toBe("1000000000000000000");
    const events = await clawedBackEvents(stack.chain, keccak256(stringToHex(`clawback:${refund.id}`)));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ from: wallet, amount: 1000000000000000000n });
    expect(await stack.chain.balanceOf(wallet)).toBe(1500000000000000000n);
  });

  it("a refund after the shopper spent the cashback: no clawback on chain, the entry ends clawback_failed (a debt)", async () => {
    const wallet = freshWallet();
    const user = await shop.addShopper(wallet);
    const bought = await shop.purchase(user, 20_000, "order-3"); // 5 CBK
    await settled(bought.id, (x) => x.cashback?.status === "minted");
    await spendTokens(stack.chain, wallet, 4_500_000_000_000_000_000n);
    await shop.client.post(`/v1/purchases/${bought.id}/refunds`, { amount_minor: 20_000 });
    const p = await settled(bought.id, (x) => x.refunds[0]?.clawback_status === "clawback_failed");

    expect(p.refunds[0]!.clawback_wei).toBe("5000000000000000000");
    expect(await clawedBackEvents(stack.chain)).toHaveLength(1); // only the previous test's
    expect(await stack.chain.balanceOf(wallet)).toBe(500_000_000_000_000_000n);
  });

  it("reconcile: the ledger equals the chain (npm run reconcile exits 0); a doctored entry is reported (exit 1)", async () => {
    const report = await runReconcile(loadReconcileConfig(stack.reconcileEnv));
    expect(report.differences).toEqual([]);
    expect(report).toMatchObject({ entries: 5, matched: 5, inFlight: 0 }); // 3 accruals, 2 refunds' entries
    const clean = await reconcileCli();
    expect(clean.out).toContain("OK: the ledger equals the chain");
    expect(clean.code).toBe(0);

    const db = new pg.Client({ connectionString: stack.databaseUrls.api });
    await db.connect();
    try {
      await db.query(`UPDATE cashback_ledger SET amount_wei = amount_wei + 1 WHERE id = (SELECT id FROM cashback_ledger WHERE kind = 'accrual' AND status = 'minted' ORDER BY id LIMIT 1)`);
      const dirty = await reconcileCli();
      expect(dirty.code).toBe(1);
      expect(dirty.out).toContain("amount mismatches 1");
    } finally {
      await db.query(`UPDATE cashback_ledger SET amount_wei = amount_wei - 1 WHERE id = (SELECT id FROM cashback_ledger WHERE kind = 'accrual' AND status = 'minted' ORDER BY id LIMIT 1)`);
      await db.end();
    }
  });
});
