import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "@cashback/testing";
import { runDemo } from "../../scripts/demo/run-demo.ts";

// `npm run demo` against the whole system as separate processes (one instance of each service,
// fresh databases on the shared Postgres, its own chain and NATS): what a newcomer runs after
// `npm start` must end with every entry settled on chain and every balance equal to the ledger.
describe("npm run demo", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ postgres: "shared" });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("mints each purchase's cashback and claws back the refund's share, and the chain agrees with the ledger", async () => {
    const lines: string[] = [];
    const result = await runDemo({
      apiUrl: stack.apiUrl,
      adminKey: stack.adminKey,
      rpcUrl: stack.chain.nodeUrl,
      shoppers: 2,
      purchasesPerShopper: 2,
      timeoutMs: 120_000,
      out: (line) => lines.push(line),
      progress: () => {},
    });
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.entries.map((e) => e.status).sort()).toEqual(["clawed_back", "minted", "minted", "minted", "minted"]);
    for (const e of result.entries) expect(e.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    // shopper 1 lost half of its first cashback; both hold exactly what the ledger says
    const [first, second] = result.wallets;
    expect(first!.chainBalanceWei).toBeGreaterThan(0n);
    expect(first!.chainBalanceWei).toBe(first!.netMintedWei);
    expect(second!.chainBalanceWei).toBe(second!.netMintedWei);
    const minted1 = result.entries.filter((e) => e.shopper === 0 && e.status === "minted").reduce((t, e) => t + e.amountWei, 0n);
    const clawed1 = result.entries.find((e) => e.status === "clawed_back")!.amountWei;
    expect(first!.chainBalanceWei).toBe(minted1 - clawed1);
    expect(lines.filter((l) => l.startsWith("on chain:"))).toHaveLength(5);
  });
});
