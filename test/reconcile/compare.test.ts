import { describe, expect, it } from "vitest";
import { keccak256, stringToHex } from "viem";
import { chainIdOf, formatReport, reconcile, type ChainFacts, type LedgerRow } from "../../scripts/reconcile/compare.ts";

const A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const a = A.toLowerCase();
const b = B.toLowerCase();
const TX1 = `0x${"1".repeat(64)}`;
const TX2 = `0x${"2".repeat(64)}`;

const accrual = (id: string, over: Partial<LedgerRow> = {}): LedgerRow => ({ id, kind: "accrual", status: "minted", refundId: null, wallet: A, amountWei: 100n, chainRef: null, txHash: TX1, ...over });
const clawback = (id: string, refundId: string, over: Partial<LedgerRow> = {}): LedgerRow => ({ id, kind: "clawback", status: "clawed_back", refundId, wallet: A, amountWei: 40n, chainRef: null, txHash: TX2, ...over });
const mintIdOf = (entryId: string) => keccak256(stringToHex(`cashback:${entryId}`));
const refIdOf = (refundId: string) => keccak256(stringToHex(`clawback:${refundId}`));
const facts = (over: Partial<ChainFacts> = {}): ChainFacts => ({ minted: [], clawedBack: [], transfers: [], balances: new Map(), ...over });

describe("reconcile (pure)", () => {
  it("the chain id of an entry: its recorded chain_ref, else keccak256 of the adapter's key (cashback:<entry> / clawback:<refund>)", () => {
    expect(chainIdOf(accrual("e1"))).toBe(mintIdOf("e1"));
    expect(chainIdOf(clawback("c1", "r1"))).toBe(refIdOf("r1"));
    expect(chainIdOf(accrual("e1", { chainRef: "0xABC" }))).toBe("0xabc");
  });

  const cases: { name: string; ledger: LedgerRow[]; chain: ChainFacts; matched: number; inFlight?: number; differences: unknown[] }[] = [
    {
      name: "a minted entry and a clawback that agree with their events and the balance",
      ledger: [accrual("e1"), clawback("c1", "r1")],
      chain: facts({ minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }], clawedBack: [{ refId: refIdOf("r1"), from: A, amount: 40n, txHash: TX2 }], balances: new Map([[a, 60n]]) }),
      matched: 2,
      differences: [],
    },
    {
      name: "minted in the ledger, no event on chain (reported once, not again as a balance mismatch)",
      ledger: [accrual("e1")],
      chain: facts({ balances: new Map([[a, 0n]]) }),
      matched: 0,
      differences: [{ kind: "missing_on_chain", entryId: "e1", chainId: mintIdOf("e1"), status: "minted" }],
    },
    {
      name: "an event no entry names (its balance effect is not reported twice)",
      ledger: [],
      chain: facts({ minted: [{ mintId: mintIdOf("x"), to: B, amount: 5n, txHash: TX1 }], balances: new Map([[b, 5n]]) }),
      matched: 0,
      differences: [{ kind: "on_chain_not_in_ledger", chainId: mintIdOf("x"), event: "CashbackMinted", wallet: B, amountWei: 5n, txHash: TX1 }],
    },
    {
      name: "amounts, recipients and tx hashes that differ",
      ledger: [accrual("e1", { amountWei: 99n, txHash: TX2 }), accrual("e2", { wallet: B, txHash: null })],
      chain: facts({ minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }, { mintId: mintIdOf("e2"), to: A, amount: 100n, txHash: TX1 }] }),
      matched: 0,
      differences: [
        { kind: "amount_mismatch", entryId: "e1", chainId: mintIdOf("e1"), ledgerWei: 99n, chainWei: 100n },
        { kind: "tx_hash_mismatch", entryId: "e1", chainId: mintIdOf("e1"), ledgerTxHash: TX2, chainTxHash: TX1 },
        { kind: "wallet_mismatch", entryId: "e2", chainId: mintIdOf("e2"), ledgerWallet: B, chainWallet: A },
      ],
    },
    {
      name: "failed in the ledger but minted on chain; a failed one that is not, and a refused clawback (a shopper's debt) match",
      ledger: [accrual("e1", { status: "failed", txHash: null }), accrual("e2", { status: "failed", txHash: null }), clawback("c1", "r1", { status: "clawback_failed", txHash: null })],
      chain: facts({ minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }] }),
      matched: 2,
      differences: [{ kind: "on_chain_but_failed", entryId: "e1", chainId: mintIdOf("e1"), txHash: TX1 }],
    },
    {
      name: "entries in flight are counted, not differences, even when their event is already on chain (and the balance holds it)",
      ledger: [accrual("e1", { status: "pending", txHash: null }), clawback("c1", "r1", { status: "clawback_pending", txHash: null })],
      chain: facts({ minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }], balances: new Map([[a, 100n]]) }),
      matched: 0,
      inFlight: 2,
      differences: [],
    },
    {
      name: "a balance the events do not explain",
      ledger: [accrual("e1")],
      chain: facts({ minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }], balances: new Map([[a, 70n]]) }),
      matched: 1,
      differences: [{ kind: "balance_mismatch", wallet: a, expectedWei: 100n, chainWei: 70n }],
    },
    {
      name: "the same mint id twice on chain",
      ledger: [accrual("e1")],
      chain: facts({ minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }, { mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX2 }] }),
      matched: 1,
      differences: [{ kind: "duplicate_on_chain", chainId: mintIdOf("e1"), count: 2 }],
    },
    {
      name: "tokens a holder sent to another wallet move the expected balances of both",
      ledger: [accrual("e1"), accrual("e2", { wallet: B })],
      chain: facts({
        minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }, { mintId: mintIdOf("e2"), to: B, amount: 100n, txHash: TX1 }],
        transfers: [{ from: A, to: B, amount: 30n }, { from: A, to: "0x000000000000000000000000000000000000dEaD", amount: 10n }],
        balances: new Map([[a, 60n], [b, 131n]]),
      }),
      matched: 2,
      differences: [{ kind: "balance_mismatch", wallet: b, expectedWei: 130n, chainWei: 131n }],
    },
  ];

  it.each(cases)("$name", ({ ledger, chain, matched, inFlight, differences }) => {
    const report = reconcile(ledger, chain);
    expect(report.differences).toEqual(differences);
    expect(report.matched).toBe(matched);
    expect(report.inFlight).toBe(inFlight ?? 0);
    expect(report.entries).toBe(ledger.length);
  });

  it("the text report names the counts and ends with the verdict", () => {
    const clean = formatReport(reconcile([accrual("e1")], facts({ minted: [{ mintId: mintIdOf("e1"), to: A, amount: 100n, txHash: TX1 }], balances: new Map([[a, 100n]]) })));
    expect(clean).toContain("ledger entries 1: matched 1, in flight 0");
    expect(clean.split("\n").at(-1)).toBe("OK: the ledger equals the chain");
    const dirty = formatReport(reconcile([accrual("e1")], facts()));
    expect(dirty).toContain("missing on chain 1, on chain not in ledger 0, amount mismatches 0, other differences 0");
    expect(dirty.split("\n").at(-1)).toBe("DIFFERENCES: 1");
  });
});
