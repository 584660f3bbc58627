import { decodeEventLog, encodeFunctionData, getAbiItem, isAddressEqual, toEventSelector, type Address, type Hex, type Log } from "viem";
import { cashbackTokenAbi } from "@cashback/token";

export interface MintCall {
  to: Address;
  amountWei: bigint;
  mintId: Hex;
}

export interface ClawbackCall {
  from: Address;
  amountWei: bigint;
  refId: Hex;
}

/** What a transaction of ours does; a nonce filler is a 0-value self-transfer closing a nonce gap. */
export type TxKind = "mint" | "mint_batch" | "clawback" | "nonce_filler";

/** One mint uses `mint` (a replay reverts before broadcast); several share one `mintBatch`. */
export function encodeMints(mints: readonly MintCall[]): { kind: TxKind; data: Hex } {
  if (mints.length === 0) throw new Error("encodeMints needs at least one mint");
  if (mints.length === 1) {
    const [m] = mints as [MintCall];
    return { kind: "mint", data: encodeFunctionData({ abi: cashbackTokenAbi, functionName: "mint", args: [m.to, m.amountWei, m.mintId] }) };
  }
  return {
    kind: "mint_batch",
    data: encodeFunctionData({
      abi: cashbackTokenAbi,
      functionName: "mintBatch",
      args: [mints.map((m) => m.to), mints.map((m) => m.amountWei), mints.map((m) => m.mintId)],
    }),
  };
}

/** One clawback per transaction: clawbacks are rare, and a refused one then fails alone. */
export function encodeClawback(c: ClawbackCall): { kind: TxKind; data: Hex } {
  return { kind: "clawback", data: encodeFunctionData({ abi: cashbackTokenAbi, functionName: "clawback", args: [c.from, c.amountWei, c.refId] }) };
}

/** The refIds a receipt clawed back (CashbackClawedBack events of the token). */
export function clawbackOutcomes(token: Address, logs: readonly Log[]): Set<Hex> {
  const clawedBack = new Set<Hex>();
  for (const log of logs) {
    if (!isAddressEqual(log.address, token)) continue;
    try {
      const event = decodeEventLog({ abi: cashbackTokenAbi, data: log.data, topics: log.topics });
      if (event.eventName === "CashbackClawedBack") clawedBack.add(event.args.refId);
    } catch {
      // other events
    }
  }
  return clawedBack;
}

const MINTED_TOPIC = toEventSelector(getAbiItem({ abi: cashbackTokenAbi, name: "CashbackMinted" }));
const SKIPPED_TOPIC = toEventSelector(getAbiItem({ abi: cashbackTokenAbi, name: "MintSkipped" }));

/**
 * Which mint ids a receipt minted and which the contract skipped as already used. Read from the
 * topics alone (the event's first topic, then the indexed mint id): a mintBatch(200) receipt holds
 * 400 logs, and decoding each against the ABI cost more than the rest of recording it.
 */
export function mintOutcomes(token: Address, logs: readonly Log[]): { minted: Set<Hex>; skipped: Set<Hex> } {
  const minted = new Set<Hex>();
  const skipped = new Set<Hex>();
  for (const log of logs) {
    const [topic, mintId] = log.topics;
    if (mintId === undefined || !isAddressEqual(log.address, token)) continue;
    if (topic === MINTED_TOPIC) minted.add(mintId);
    else if (topic === SKIPPED_TOPIC) skipped.add(mintId);
  }
  return { minted, skipped };
}
