// `npm run demo` against a running stack (`npm start`): a merchant, its API key, a cashback rule,
// a few shoppers with fresh wallets, purchases and a refund through the REST API; then it watches
// each ledger entry reach the chain and checks it there with viem: the transaction's receipt
// carries the CashbackMinted / CashbackClawedBack event with the entry's id, wallet and amount,
// and the wallet's balance is read from the token contract. Returns what it saw; `ok` is false
// when anything on chain disagrees with the ledger or an entry did not settle in time.
import { createPublicClient, formatUnits, http, parseEventLogs, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { cashbackTokenAbi } from "@cashback/token";
import { restClient, type RestClient } from "@cashback/testing";

/** The fields of a ledger entry (GET /v1/users/{id}/ledger) the demo reads. */
interface LedgerEntry {
  id: string;
  kind: "accrual" | "clawback";
  status: "pending" | "minted" | "failed" | "clawback_pending" | "clawed_back" | "clawback_failed";
  purchase_id: string;
  wallet_address: string;
  amount_wei: string;
  chain_ref: string | null;
  tx_hash: string | null;
  block_number: string | null;
}

interface Ledger {
  entries: { data: LedgerEntry[] };
  totals: { net_minted_wei: string };
}

const FINAL_STATUSES = new Set(["minted", "failed", "clawed_back", "clawback_failed"]);

export interface DemoOptions {
  apiUrl: string;
  adminKey: string;
  rpcUrl: string;
  shoppers: number;
  purchasesPerShopper: number;
  timeoutMs: number;
  /** Progress and result lines (the progress line is rewritten in place when `tty`). */
  out: (line: string) => void;
  progress: (line: string) => void;
}

export interface SettledEntry {
  shopper: number;
  kind: LedgerEntry["kind"];
  status: LedgerEntry["status"];
  amountWei: bigint;
  txHash: Hex;
  block: bigint;
  balanceWei: bigint;
}

export interface DemoResult {
  ok: boolean;
  problems: string[];
  entries: SettledEntry[];
  /** Per shopper: the ledger's net minted amount and the balance read from the chain. */
  wallets: { address: Address; netMintedWei: bigint; chainBalanceWei: bigint }[];
}

const CATEGORIES = ["groceries", "electronics", "books"] as const;

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const admin = restClient(opts.apiUrl, opts.adminKey);
  const chain = createPublicClient({ transport: http(opts.rpcUrl) });
  const problems: string[] = [];
  const run = Date.now().toString(36);

  // The token the API tells wallets about: the same record the adapter mints on.
  const config = await admin.get<{ token: { address: Address } | null; token_unavailable?: string; chain: { id: number } }>("/v1/shopper/config");
  if (!config.token) throw new Error(`the API knows no token address: ${config.token_unavailable ?? "unknown reason"}`);
  const token = config.token.address;
  const chainId = await chain.getChainId();
  if (chainId !== config.chain.id) throw new Error(`the API is configured for chain ${config.chain.id} but ${opts.rpcUrl} is chain ${chainId}`);
  opts.out(`chain ${chainId} at ${opts.rpcUrl}, CashbackToken ${token}`);

  const merchant = await admin.post<{ id: string; name: string }>("/v1/merchants", { name: `Demo shop ${run}` });
  const { key } = await admin.post<{ key: string }>(`/v1/merchants/${merchant.id}/api-keys`, { name: "demo" });
  const api = restClient(opts.apiUrl, key); // acting as the merchant's backend from here on
  await api.post("/v1/rules", { name: "groceries 5%", kind: "percentage", basis_points: 500, categories: ["groceries"] });
  await api.post("/v1/rules", { name: "everything 2%", kind: "percentage", basis_points: 200 });
  opts.out(`merchant "${merchant.name}" (${merchant.id}), an API key, rules: groceries 5 %, everything else 2 %`);

  const shoppers: { userId: string; address: Address; privateKey: Hex }[] = [];
  for (let i = 0; i < opts.shoppers; i++) {
    const privateKey = generatePrivateKey();
    const address = privateKeyToAccount(privateKey).address;
    const user = await api.post<{ id: string }>("/v1/users", { external_id: `demo-${run}-${i + 1}`, email: `shopper${i + 1}@example.com`, wallet_address: address });
    shoppers.push({ userId: user.id, address, privateKey });
    opts.out(`shopper ${i + 1}: wallet ${address} (private key ${privateKey}: import it in MetaMask to see the CBK)`);
  }

  const purchases: { id: string; shopper: number }[] = [];
  for (let round = 0; round < opts.purchasesPerShopper; round++) {
    for (const [i, s] of shoppers.entries()) {
      const amountMinor = 1_000 + 1_237 * (i + 1) + 5_011 * round; // distinct amounts: $22.37, $34.74, ...
      const category = CATEGORIES[(i + round) % CATEGORIES.length];
      const p = await api.post<{ id: string; cashback: { amount_wei: string } | null }>(
        "/v1/purchases",
        { user_id: s.userId, category, amount_minor: amountMinor, currency: "USD", occurred_at: new Date().toISOString() },
        { idempotencyKey: `demo-${run}-${i}-${round}` },
      );
      purchases.push({ id: p.id, shopper: i });
      opts.out(`purchase: shopper ${i + 1}, ${category}, $${(amountMinor / 100).toFixed(2)} -> cashback ${formatUnits(BigInt(p.cashback?.amount_wei ?? "0"), 18)} CBK pending`);
    }
  }

  // A refund of half of the first purchase: its share of the cashback is clawed back once minted.
  const refunded = purchases[0]!;
  await waitUntil(opts, async () => (await entriesOf(api, shoppers[refunded.shopper]!.userId)).some((e) => e.purchase_id === refunded.id && e.status === "minted"), () => "first purchase minted");
  const purchase = await api.get<{ amount_minor: number }>(`/v1/purchases/${refunded.id}`);
  const refund = await api.post<{ clawback_wei: string }>(`/v1/purchases/${refunded.id}/refunds`, { amount_minor: Math.floor(purchase.amount_minor / 2), reason: "demo: half returned" });
  opts.out(`refund: half of shopper 1's first purchase -> clawback of ${formatUnits(BigInt(refund.clawback_wei), 18)} CBK pending`);

  // Watch every ledger entry settle, and check each one on chain as it does.
  const expected = purchases.length + 1;
  const seen = new Map<string, SettledEntry>();
  const started = Date.now();
  await waitUntil(
    opts,
    async () => {
      for (const [i, s] of shoppers.entries()) {
        for (const e of await entriesOf(api, s.userId)) {
          if (seen.has(e.id) || !FINAL_STATUSES.has(e.status)) continue;
          const settled = await checkOnChain(chain, token, i, e, problems);
          seen.set(e.id, settled);
          opts.out(describe(settled, s.address));
        }
      }
      opts.progress(`settled ${seen.size}/${expected} ledger entries on chain (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      return seen.size >= expected;
    },
    () => `${seen.size}/${expected} entries settled`,
  ).catch((err: Error) => problems.push(err.message));

  // The books equal the chain: each wallet's net minted amount is its balance on the token.
  const wallets = [];
  for (const s of shoppers) {
    const ledger = await api.get<Ledger>(`/v1/users/${s.userId}/ledger?limit=100`);
    const chainBalanceWei = await chain.readContract({ address: token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [s.address] });
    const netMintedWei = BigInt(ledger.totals.net_minted_wei);
    if (netMintedWei !== chainBalanceWei) problems.push(`${s.address}: ledger says ${netMintedWei} wei, the chain holds ${chainBalanceWei}`);
    wallets.push({ address: s.address, netMintedWei, chainBalanceWei });
  }
  const entries = [...seen.values()];
  for (const e of entries) if (e.status === "failed" || e.status === "clawback_failed") problems.push(`an entry of shopper ${e.shopper + 1} ended ${e.status}`);
  return { ok: problems.length === 0, problems, entries, wallets };
}

async function entriesOf(api: RestClient, userId: string): Promise<LedgerEntry[]> {
  return (await api.get<Ledger>(`/v1/users/${userId}/ledger?limit=100`)).entries.data;
}

/** Reads the entry's transaction receipt and the wallet's balance at that block from the chain itself. */
async function checkOnChain(chain: ReturnType<typeof createPublicClient>, token: Address, shopper: number, e: LedgerEntry, problems: string[]): Promise<SettledEntry> {
  const amountWei = BigInt(e.amount_wei);
  if (!e.tx_hash || !e.block_number) {
    problems.push(`entry ${e.id} is ${e.status} without a transaction`);
    return { shopper, kind: e.kind, status: e.status, amountWei, txHash: "0x", block: 0n, balanceWei: 0n };
  }
  const receipt = await chain.getTransactionReceipt({ hash: e.tx_hash as Hex });
  const block = receipt.blockNumber;
  if (String(block) !== e.block_number) problems.push(`entry ${e.id}: ledger block ${e.block_number}, receipt block ${block}`);
  const logs = parseEventLogs({ abi: cashbackTokenAbi, logs: receipt.logs.filter((l) => l.address.toLowerCase() === token.toLowerCase()) });
  if (e.status === "minted") {
    const log = logs.find((l) => l.eventName === "CashbackMinted" && l.args.mintId === e.chain_ref);
    if (!log || log.eventName !== "CashbackMinted") problems.push(`entry ${e.id}: no CashbackMinted with mint id ${e.chain_ref} in ${e.tx_hash}`);
    else if (log.args.amount !== amountWei || log.args.to.toLowerCase() !== e.wallet_address.toLowerCase()) problems.push(`entry ${e.id}: the chain minted ${log.args.amount} to ${log.args.to}`);
  } else if (e.status === "clawed_back") {
    const log = logs.find((l) => l.eventName === "CashbackClawedBack" && l.args.refId === e.chain_ref);
    if (!log || log.eventName !== "CashbackClawedBack") problems.push(`entry ${e.id}: no CashbackClawedBack with ref id ${e.chain_ref} in ${e.tx_hash}`);
    else if (log.args.amount !== amountWei) problems.push(`entry ${e.id}: the chain clawed back ${log.args.amount}`);
  }
  const balanceWei = await chain.readContract({ address: token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [e.wallet_address as Address], blockNumber: block });
  return { shopper, kind: e.kind, status: e.status, amountWei, txHash: e.tx_hash as Hex, block, balanceWei };
}

function describe(e: SettledEntry, wallet: Address): string {
  const what = e.status === "minted" ? `+${formatUnits(e.amountWei, 18)} CBK minted` : e.status === "clawed_back" ? `-${formatUnits(e.amountWei, 18)} CBK clawed back` : e.status;
  return `on chain: shopper ${e.shopper + 1} ${what}, tx ${e.txHash}, block ${e.block}, balance of ${wallet} at that block ${formatUnits(e.balanceWei, 18)} CBK`;
}

async function waitUntil(opts: DemoOptions, done: () => Promise<boolean>, what: () => string): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not settled within ${opts.timeoutMs / 1000} s: ${what()}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
