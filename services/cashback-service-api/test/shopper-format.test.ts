import { describe, expect, it } from "vitest";
import { addChainParams, formatFiat, formatToken, historyRow, isPending, shortHex, watchAssetParams, type HistoryEntry, type PageConfig } from "../web/src/format.ts";

// What the shopper page shows, from integers: exact, never through a float.
describe("page formatting", () => {
  it.each([
    ["0", "0 CBK"],
    ["1", "0.000000000000000001 CBK"],
    ["3249750000000000000", "3.24975 CBK"],
    ["1000000000000000000000", "1,000 CBK"],
    // 2^53 + 1 wei and a huge balance: a float would round both
    ["9007199254740993", "0.009007199254740993 CBK"],
    ["123456789012345678901234567890", "123,456,789,012.34567890123456789 CBK"],
  ])("formats %s wei as %s", (wei, text) => {
    expect(formatToken(wei, 18, "CBK")).toBe(text);
    expect(formatToken(BigInt(wei), 18, "CBK")).toBe(text);
  });

  it.each([
    [12999, "USD", "129.99 USD"],
    [12990, "USD", "129.90 USD"],
    [5, "EUR", "0.05 EUR"],
    [100000000, "GBP", "1,000,000.00 GBP"],
    [999999999999999, "USD", "9,999,999,999,999.99 USD"],
    [1500, "JPY", "1,500 JPY"],
  ])("formats %i minor units of %s as %s", (minor, currency, text) => {
    expect(formatFiat(minor, currency)).toBe(text);
  });

  const entry = (over: Partial<HistoryEntry> = {}): HistoryEntry => ({
    id: "01a2203d-0000-7000-8000-000000000001",
    kind: "accrual",
    status: "minted",
    amount_wei: "3249750000000000000",
    purchase: { id: "01a2203d-0000-7000-8000-000000000002", occurred_at: "2026-11-28T03:30:00.000Z", amount_minor: 12999, currency: "USD", category: "groceries" },
    merchant: { id: "01a2203d-0000-7000-8000-000000000003", name: "Corner Shop" },
    refund: null,
    tx_hash: `0x${"ab".repeat(32)}`,
    block_number: "7",
    failure_reason: null,
    created_at: "2026-11-28T03:30:01.000Z",
    updated_at: "2026-11-28T03:30:02.000Z",
    ...over,
  });

  it("turns a history entry into a table row", () => {
    const row = historyRow(entry(), { decimals: 18, symbol: "CBK" }, null, (iso) => iso.slice(0, 10));
    expect(row).toEqual({
      id: entry().id,
      status: "minted",
      date: "2026-11-28",
      merchant: "Corner Shop",
      purchase: "129.99 USD · groceries",
      cashback: "+3.24975 CBK",
      statusLabel: "minted",
      tx: { hash: `0x${"ab".repeat(32)}`, short: "0xababab…ababab", href: null, block: "7" },
    });
    expect(historyRow(entry(), { decimals: 18, symbol: "CBK" }, "https://explorer.example", (d) => d).tx?.href).toBe(`https://explorer.example/tx/0x${"ab".repeat(32)}`);
    const refund = historyRow(
      entry({ kind: "clawback", status: "clawback_pending", amount_wei: "1000000000000000000", refund: { id: "r", amount_minor: 5000, created_at: "2026-11-29T00:00:00.000Z" }, tx_hash: null, block_number: null }),
      { decimals: 18, symbol: "CBK" },
      null,
      (iso) => iso.slice(0, 10),
    );
    expect(refund).toMatchObject({ date: "2026-11-29", purchase: "refund of 50.00 USD (of 129.99 USD)", cashback: "−1 CBK", statusLabel: "taking back…", tx: null });
    expect(isPending(entry({ status: "pending" }))).toBe(true);
    expect(isPending(entry({ status: "clawback_pending" }))).toBe(true);
    expect(isPending(entry({ status: "failed" }))).toBe(false);
    expect(shortHex("0x1234")).toBe("0x1234");
  });

  it("asks the wallet for the configured chain and token (EIP-3085, EIP-747)", () => {
    const config: PageConfig = {
      chain: { id: 31337, id_hex: "0x7a69", name: "Hardhat local", rpc_url: "http://127.0.0.1:8545", native_currency: { name: "Ether", symbol: "ETH", decimals: 18 }, explorer_url: null },
      token: { address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", name: "Cashback Token", symbol: "CBK", decimals: 18 },
      token_unavailable: null,
      sign_in: { statement: "s", nonce_ttl_seconds: 300, session_ttl_seconds: 1800 },
    };
    expect(addChainParams(config)).toEqual({ chainId: "0x7a69", chainName: "Hardhat local", rpcUrls: ["http://127.0.0.1:8545"], nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 } });
    expect(addChainParams({ ...config, chain: { ...config.chain, explorer_url: "https://x.example" } }).blockExplorerUrls).toEqual(["https://x.example"]);
    expect(watchAssetParams(config.token!)).toEqual({ type: "ERC20", options: { address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", symbol: "CBK", decimals: 18 } });
  });
});
