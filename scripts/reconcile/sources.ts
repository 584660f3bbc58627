import pg from "pg";
import { createPublicClient, http, zeroAddress, type Address, type PublicClient } from "viem";
import { cashbackTokenAbi } from "@cashback/token";
import type { ChainFacts, ClawbackEvent, LedgerRow, MintEvent, PeerTransfer } from "./compare.ts";

/** Every entry of the API's cashback_ledger (read-only; one query, streamed by id order). */
export async function readLedger(databaseUrl: string): Promise<LedgerRow[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {}); // a dropped connection fails the query below instead
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; kind: LedgerRow["kind"]; status: LedgerRow["status"]; refund_id: string | null; wallet_address: string; amount_wei: string; chain_ref: string | null; tx_hash: string | null }>(
      `SELECT id, kind, status, refund_id, wallet_address, amount_wei::text AS amount_wei, chain_ref, tx_hash FROM cashback_ledger ORDER BY id`,
    );
    return rows.map((r) => ({ id: r.id, kind: r.kind, status: r.status, refundId: r.refund_id, wallet: r.wallet_address.trim(), amountWei: BigInt(r.amount_wei), chainRef: r.chain_ref?.trim() ?? null, txHash: r.tx_hash?.trim() ?? null }));
  } finally {
    await client.end();
  }
}

/**
 * The token's CashbackMinted, CashbackClawedBack and holder-to-holder Transfer events since its
 * deploy block (in ranges of `blocksPerQuery`, as providers cap eth_getLogs), and the balance of
 * every wallet in `wallets` and in those events, all read at one block so they agree.
 */
export async function readChain(opts: { rpcUrl: string; token: Address; fromBlock: bigint; wallets: Iterable<string>; blocksPerQuery?: number }): Promise<ChainFacts & { block: bigint }> {
  const client = createPublicClient({ transport: http(opts.rpcUrl, { timeout: 30_000, retryCount: 3 }) }) as PublicClient;
  const block = await client.getBlockNumber();
  const step = BigInt(opts.blocksPerQuery ?? 10_000);
  const minted: MintEvent[] = [];
  const clawedBack: ClawbackEvent[] = [];
  const transfers: PeerTransfer[] = [];
  for (let from = opts.fromBlock; from <= block; from += step) {
    const to = from + step - 1n < block ? from + step - 1n : block;
    const range = { address: opts.token, abi: cashbackTokenAbi, fromBlock: from, toBlock: to } as const;
    const [m, c, t] = await Promise.all([
      client.getContractEvents({ ...range, eventName: "CashbackMinted" }),
      client.getContractEvents({ ...range, eventName: "CashbackClawedBack" }),
      client.getContractEvents({ ...range, eventName: "Transfer" }),
    ]);
    for (const l of m) minted.push({ mintId: l.args.mintId!, to: l.args.to!, amount: l.args.amount!, txHash: l.transactionHash });
    for (const l of c) clawedBack.push({ refId: l.args.refId!, from: l.args.from!, amount: l.args.amount!, txHash: l.transactionHash });
    for (const l of t) {
      if (l.args.from !== zeroAddress && l.args.to !== zeroAddress) transfers.push({ from: l.args.from!, to: l.args.to!, amount: l.args.value! });
    }
  }
  const wallets = new Set<string>([...opts.wallets].map((w) => w.toLowerCase()));
  for (const e of minted) wallets.add(e.to.toLowerCase());
  for (const e of clawedBack) wallets.add(e.from.toLowerCase());
  const balances = new Map<string, bigint>();
  const list = [...wallets];
  // Bounded concurrency: thousands of wallets must not open thousands of requests at once.
  for (let i = 0; i < list.length; i += 50) {
    const slice = list.slice(i, i + 50);
    const values = await Promise.all(slice.map((w) => client.readContract({ address: opts.token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [w as Address], blockNumber: block })));
    slice.forEach((w, j) => balances.set(w, values[j]!));
  }
  return { block, minted, clawedBack, transfers, balances };
}
