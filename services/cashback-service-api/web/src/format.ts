import { formatUnits } from "viem";

/**
 * What the page shows, as pure functions of the API's and the chain's answers (unit-tested in
 * test/shopper-format.test.ts). Amounts are formatted from their integers with viem's
 * formatUnits: never through a float.
 */

export interface PageConfig {
  chain: { id: number; id_hex: string; name: string; rpc_url: string; native_currency: { name: string; symbol: string; decimals: number }; explorer_url: string | null };
  token: { address: string; name: string; symbol: string; decimals: number } | null;
  token_unavailable: string | null;
  sign_in: { statement: string; nonce_ttl_seconds: number; session_ttl_seconds: number };
}

export interface HistoryEntry {
  id: string;
  kind: "accrual" | "clawback";
  status: string;
  amount_wei: string;
  purchase: { id: string; occurred_at: string; amount_minor: number; currency: string; category: string };
  merchant: { id: string; name: string };
  refund: { id: string; amount_minor: number; created_at: string } | null;
  tx_hash: string | null;
  block_number: string | null;
  failure_reason: string | null;
  created_at: string;
  updated_at: string;
}

export interface History {
  wallet_address: string;
  totals: { pending_wei: string; minted_wei: string; clawback_pending_wei: string; net_minted_wei: string };
  entries: { data: HistoryEntry[]; next_cursor: string | null };
}

/** wei -> "3.24975 CBK", exactly. */
export function formatToken(wei: bigint | string, decimals: number, symbol: string): string {
  return `${groupThousands(formatUnits(BigInt(wei), decimals))} ${symbol}`;
}

/** Integer minor units -> "1,299.90 USD", exactly (the currency's own number of decimals). */
export function formatFiat(amountMinor: number, currency: string): string {
  const digits = currencyDigits(currency);
  const [whole, fraction = ""] = formatUnits(BigInt(amountMinor), digits).split(".");
  return `${groupThousands(whole!)}${digits > 0 ? `.${fraction.padEnd(digits, "0")}` : ""} ${currency}`;
}

export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2; // an unknown code: cents are the common case
  }
}

function groupThousands(decimal: string): string {
  const [whole, fraction] = decimal.split(".");
  const grouped = whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}

/** 0x1234…cdef */
export function shortHex(hex: string, keep = 6): string {
  return hex.length <= 2 + 2 * keep ? hex : `${hex.slice(0, 2 + keep)}…${hex.slice(-keep)}`;
}

export const STATUS_LABELS: Record<string, string> = {
  pending: "minting…",
  minted: "minted",
  failed: "mint failed",
  clawback_pending: "taking back…",
  clawed_back: "taken back",
  clawback_failed: "take-back failed",
};

/** Entries still waiting for the chain: the page polls faster while there are any. */
export function isPending(entry: Pick<HistoryEntry, "status">): boolean {
  return entry.status === "pending" || entry.status === "clawback_pending";
}

export interface Row {
  id: string;
  status: string;
  date: string;
  merchant: string;
  purchase: string;
  cashback: string;
  statusLabel: string;
  tx: { hash: string; short: string; href: string | null; block: string | null } | null;
}

/** One history row as the table shows it. */
export function historyRow(entry: HistoryEntry, token: { decimals: number; symbol: string }, explorerUrl: string | null, formatDate: (iso: string) => string = localDate): Row {
  const accrual = entry.kind === "accrual";
  const purchase = formatFiat(entry.purchase.amount_minor, entry.purchase.currency);
  return {
    id: entry.id,
    status: entry.status,
    date: formatDate(accrual ? entry.purchase.occurred_at : (entry.refund?.created_at ?? entry.created_at)),
    merchant: entry.merchant.name,
    purchase: accrual ? `${purchase} · ${entry.purchase.category}` : `refund of ${formatFiat(entry.refund?.amount_minor ?? 0, entry.purchase.currency)} (of ${purchase})`,
    cashback: `${accrual ? "+" : "−"}${formatToken(entry.amount_wei, token.decimals, token.symbol)}`,
    statusLabel: STATUS_LABELS[entry.status] ?? entry.status,
    tx: entry.tx_hash
      ? { hash: entry.tx_hash, short: shortHex(entry.tx_hash), href: explorerUrl ? `${explorerUrl}/tx/${entry.tx_hash}` : null, block: entry.block_number }
      : null,
  };
}

export function localDate(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** EIP-3085 wallet_addEthereumChain parameters for the configured chain. */
export function addChainParams(config: PageConfig) {
  return {
    chainId: config.chain.id_hex,
    chainName: config.chain.name,
    rpcUrls: [config.chain.rpc_url],
    nativeCurrency: config.chain.native_currency,
    ...(config.chain.explorer_url ? { blockExplorerUrls: [config.chain.explorer_url] } : {}),
  };
}

/** EIP-747 wallet_watchAsset parameters for CBK. */
export function watchAssetParams(token: NonNullable<PageConfig["token"]>) {
  return { type: "ERC20" as const, options: { address: token.address, symbol: token.symbol, decimals: token.decimals } };
}
