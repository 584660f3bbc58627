import type { Mint, BlockchainTransaction } from "../generated/prisma/client.ts";

/** What callers see of a mint; `status` follows the proto's three states. */
export interface MintResult {
  idempotencyKey: string;
  status: "SUBMITTED" | "CONFIRMED" | "FAILED";
  txHash: string;
  blockNumber: bigint;
  mintId: string;
  replayed: boolean;
  error?: { reason: string; message: string; retryable: boolean };
}

export interface TransactionView {
  status: "SUBMITTED" | "CONFIRMED" | "FAILED";
  txHash: string;
  blockNumber: bigint;
  confirmations: bigint;
  gasUsed: string;
  idempotencyKeys: string[];
  error?: { reason: string; message: string; retryable: boolean };
}

type MintWithTx = Mint & { transaction: BlockchainTransaction | null };

export function toMintResult(row: MintWithTx, replayed: boolean): MintResult {
  const status = row.status === "CONFIRMED" || row.status === "FAILED" ? row.status : "SUBMITTED";
  return {
    idempotencyKey: row.idempotencyKey,
    status,
    txHash: row.transaction?.txHash ?? "",
    blockNumber: status === "CONFIRMED" ? (row.transaction?.blockNumber ?? 0n) : 0n,
    mintId: row.mintId,
    replayed,
    error:
      status === "FAILED"
        ? { reason: row.errorReason ?? "FAILED", message: row.errorMessage ?? "mint failed", retryable: false }
        : undefined,
  };
}

export function toTransactionView(tx: BlockchainTransaction | undefined, mints: Mint[], latestBlock: bigint): TransactionView {
  const failedMint = mints.find((m) => m.status === "FAILED");
  if (!tx) {
    // Accepted but not yet in a transaction, or refused before one was sent.
    return {
      status: failedMint ? "FAILED" : "SUBMITTED",
      txHash: "",
      blockNumber: 0n,
      confirmations: 0n,
      gasUsed: "",
      idempotencyKeys: mints.map((m) => m.idempotencyKey),
      error: failedMint ? { reason: failedMint.errorReason ?? "FAILED", message: failedMint.errorMessage ?? "", retryable: false } : undefined,
    };
  }
  const status = tx.status === "CONFIRMED" ? "CONFIRMED" : tx.status === "FAILED" ? "FAILED" : "SUBMITTED";
  const mined = tx.blockNumber !== null && latestBlock >= tx.blockNumber;
  return {
    status,
    txHash: tx.txHash,
    blockNumber: tx.blockNumber ?? 0n,
    confirmations: mined ? latestBlock - tx.blockNumber! + 1n : 0n,
    gasUsed: tx.gasUsed?.toFixed(0) ?? "",
    idempotencyKeys: mints.map((m) => m.idempotencyKey),
    error: status === "FAILED" ? { reason: "REVERTED", message: tx.errorMessage ?? "reverted", retryable: false } : undefined,
  };
}
