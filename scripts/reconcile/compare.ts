import { keccak256, stringToHex } from "viem";
import { clawbackKey, mintKey } from "@cashback/events";

/** One row of the API's cashback_ledger, as reconcile reads it (amounts in wei). */
export interface LedgerRow {
  id: string;
  kind: "accrual" | "clawback";
  status: "pending" | "minted" | "failed" | "clawback_pending" | "clawed_back" | "clawback_failed";
  refundId: string | null;
  wallet: string;
  amountWei: bigint;
  /** The mint id / ref id the result event recorded (null until then). */
  chainRef: string | null;
  txHash: string | null;
}

export interface MintEvent {
  mintId: string;
  to: string;
  amount: bigint;
  txHash: string;
}

export interface ClawbackEvent {
  refId: string;
  from: string;
  amount: bigint;
  txHash: string;
}

/** An ERC-20 Transfer between two holders (neither side the zero address): tokens a holder moved. */
export interface PeerTransfer {
  from: string;
  to: string;
  amount: bigint;
}

export interface ChainFacts {
  minted: readonly MintEvent[];
  clawedBack: readonly ClawbackEvent[];
  transfers: readonly PeerTransfer[];
  /** balanceOf of every wallet the ledger or the events name (lower-case keys). */
  balances: ReadonlyMap<string, bigint>;
}

export type Difference =
  | { kind: "missing_on_chain"; entryId: string; chainId: string; status: LedgerRow["status"] }
  | { kind: "on_chain_not_in_ledger"; chainId: string; event: "CashbackMinted" | "CashbackClawedBack"; wallet: string; amountWei: bigint; txHash: string }
  | { kind: "on_chain_but_failed"; entryId: string; chainId: string; txHash: string }
  | { kind: "amount_mismatch"; entryId: string; chainId: string; ledgerWei: bigint; chainWei: bigint }
  | { kind: "wallet_mismatch"; entryId: string; chainId: string; ledgerWallet: string; chainWallet: string }
  | { kind: "tx_hash_mismatch"; entryId: string; chainId: string; ledgerTxHash: string; chainTxHash: string }
  | { kind: "duplicate_on_chain"; chainId: string; count: number }
  | { kind: "balance_mismatch"; wallet: string; expectedWei: bigint; chainWei: bigint };

export interface Report {
  entries: number;
  /** Final ledger entries whose chain event (or its absence, for failed ones) agrees. */
  matched: number;
  /** Entries not final yet (pending / clawback_pending): not a difference, but the books are still moving. */
  inFlight: number;
  /** In-flight entries whose event is already on chain: the result has not reached the ledger yet. */
  inFlightOnChain: number;
  wallets: number;
  mintedWei: bigint;
  clawedBackWei: bigint;
  differences: Difference[];
}

/** The on-chain id of an entry: the one its result recorded, else keccak256 of its idempotency key (what the adapter sends). */
export function chainIdOf(row: LedgerRow): string {
  if (row.chainRef) return row.chainRef.toLowerCase();
  const key = row.kind === "accrual" ? mintKey(row.id) : clawbackKey(row.refundId ?? "");
  return keccak256(stringToHex(key)).toLowerCase();
}

const FINAL_WITH_EVENT = new Set<LedgerRow["status"]>(["minted", "clawed_back"]);
const FINAL_WITHOUT_EVENT = new Set<LedgerRow["status"]>(["failed", "clawback_failed"]);

/**
 * Compares the ledger with the chain: every entry against its event by mint id / ref id, every
 * event against an entry, and every wallet's balance against what the ledger says it should hold
 * (minted - clawed back, plus what the holder received from or sent to others). Pure.
 */
export function reconcile(ledger: readonly LedgerRow[], chain: ChainFacts): Report {
  const differences: Difference[] = [];
  const mints = groupBy(chain.minted, (e) => e.mintId.toLowerCase());
  const clawbacks = groupBy(chain.clawedBack, (e) => e.refId.toLowerCase());
  for (const [chainId, events] of [...mints, ...clawbacks]) {
    if (events.length > 1) differences.push({ kind: "duplicate_on_chain", chainId, count: events.length });
  }

  let matched = 0;
  let inFlight = 0;
  let inFlightOnChain = 0;
  let mintedWei = 0n;
  let clawedBackWei = 0n;
  const known = new Set<string>();
  const expected = new Map<string, bigint>();
  const add = (wallet: string, wei: bigint) => expected.set(wallet.toLowerCase(), (expected.get(wallet.toLowerCase()) ?? 0n) + wei);

  for (const row of ledger) {
    const chainId = chainIdOf(row);
    known.add(chainId);
    add(row.wallet, 0n);
    const found = row.kind === "accrual" ? mints.get(chainId)?.[0] : clawbacks.get(chainId)?.[0];
    const onChain = found && { wallet: "to" in found ? found.to : found.from, amount: found.amount, txHash: found.txHash };

    if (!FINAL_WITH_EVENT.has(row.status) && !FINAL_WITHOUT_EVENT.has(row.status)) {
      inFlight++;
      if (onChain) {
        // Already on chain (the ledger hears of it a moment later): the balance holds it.
        inFlightOnChain++;
        add(onChain.wallet, row.kind === "accrual" ? onChain.amount : -onChain.amount);
      }
      continue;
    }
    if (FINAL_WITHOUT_EVENT.has(row.status)) {
      if (onChain) differences.push({ kind: "on_chain_but_failed", entryId: row.id, chainId, txHash: onChain.txHash });
      else matched++;
      continue;
    }
    if (!onChain) {
      differences.push({ kind: "missing_on_chain", entryId: row.id, chainId, status: row.status });
      continue;
    }
    let agrees = true;
    if (onChain.amount !== row.amountWei) {
      differences.push({ kind: "amount_mismatch", entryId: row.id, chainId, ledgerWei: row.amountWei, chainWei: onChain.amount });
      agrees = false;
    }
    if (onChain.wallet.toLowerCase() !== row.wallet.toLowerCase()) {
      differences.push({ kind: "wallet_mismatch", entryId: row.id, chainId, ledgerWallet: row.wallet, chainWallet: onChain.wallet });
      agrees = false;
    }
    if (row.txHash && row.txHash.toLowerCase() !== onChain.txHash.toLowerCase()) {
      differences.push({ kind: "tx_hash_mismatch", entryId: row.id, chainId, ledgerTxHash: row.txHash, chainTxHash: onChain.txHash });
      agrees = false;
    }
    if (agrees) matched++;
    if (row.kind === "accrual") {
      mintedWei += row.amountWei;
      add(row.wallet, row.amountWei);
    } else {
      clawedBackWei += row.amountWei;
      add(row.wallet, -row.amountWei);
    }
  }

  for (const e of chain.minted) {
    if (!known.has(e.mintId.toLowerCase())) {
      differences.push({ kind: "on_chain_not_in_ledger", chainId: e.mintId.toLowerCase(), event: "CashbackMinted", wallet: e.to, amountWei: e.amount, txHash: e.txHash });
      add(e.to, e.amount); // its balance effect is reported here, not again as a balance mismatch
    }
  }
  for (const e of chain.clawedBack) {
    if (!known.has(e.refId.toLowerCase())) {
      differences.push({ kind: "on_chain_not_in_ledger", chainId: e.refId.toLowerCase(), event: "CashbackClawedBack", wallet: e.from, amountWei: e.amount, txHash: e.txHash });
      add(e.from, -e.amount);
    }
  }
  // Holders may move their tokens: a transfer changes the balance the books expect, on both sides.
  for (const t of chain.transfers) {
    if (expected.has(t.from.toLowerCase())) add(t.from, -t.amount);
    if (expected.has(t.to.toLowerCase())) add(t.to, t.amount);
  }
  for (const [wallet, expectedWei] of expected) {
    const chainWei = chain.balances.get(wallet);
    if (chainWei === undefined) continue; // not read (caller's choice); nothing to compare
    if (chainWei !== expectedWei) differences.push({ kind: "balance_mismatch", wallet, expectedWei, chainWei });
  }

  return { entries: ledger.length, matched, inFlight, inFlightOnChain, wallets: expected.size, mintedWei, clawedBackWei, differences };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

/** The report as text for operators: the counts, then each difference on a line (the first `limit`). */
export function formatReport(report: Report, limit = 50): string {
  const byKind = new Map<string, number>();
  for (const d of report.differences) byKind.set(d.kind, (byKind.get(d.kind) ?? 0) + 1);
  const lines = [
    `ledger entries ${report.entries}: matched ${report.matched}, in flight ${report.inFlight}${report.inFlightOnChain ? ` (${report.inFlightOnChain} already on chain)` : ""}`,
    `wallets ${report.wallets}; minted ${report.mintedWei} wei, clawed back ${report.clawedBackWei} wei`,
    `missing on chain ${byKind.get("missing_on_chain") ?? 0}, on chain not in ledger ${byKind.get("on_chain_not_in_ledger") ?? 0}, ` +
      `amount mismatches ${byKind.get("amount_mismatch") ?? 0}, other differences ${report.differences.length - (byKind.get("missing_on_chain") ?? 0) - (byKind.get("on_chain_not_in_ledger") ?? 0) - (byKind.get("amount_mismatch") ?? 0)}`,
  ];
  for (const d of report.differences.slice(0, limit)) lines.push(`  ${JSON.stringify(d, (_k, v) => (typeof v === "bigint" ? v.toString() : v))}`);
  if (report.differences.length > limit) lines.push(`  ... and ${report.differences.length - limit} more`);
  lines.push(report.differences.length === 0 ? "OK: the ledger equals the chain" : `DIFFERENCES: ${report.differences.length}`);
  return lines.join("\n");
}

