import { confirmationsAt } from "../transactions/lifecycle.ts";
import type { BlockchainTransaction, Clawback, Mint } from "../generated/prisma/client.ts";

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

/** What callers see of a clawback; the same three states as a mint. */
export interface ClawbackResult {
  idempotencyKey: string;
  status: "SUBMITTED" | "CONFIRMED" | "FAILED";
  txHash: string;
  blockNumber: bigint;
  refId: string;
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

/** What an answer needs of a stored row (a Prisma row or MintCallStore's outcome). */
type Stored = Pick<Mint, "idempotencyKey" | "status" | "errorReason" | "errorMessage"> & { transaction: Pick<BlockchainTransaction, "txHash" | "blockNumber"> | null };
type MintWithTx = Stored & Pick<Mint, "mintId">;
type ClawbackWithTx = Stored & Pick<Clawback, "refId">;
/** What a transaction view needs of the mints or clawback a transaction carries. */
type Carried = Pick<Mint, "idempotencyKey" | "status" | "errorReason" | "errorMessage">;

/** The caller's view of a stored row: PENDING and SUBMITTED are both SUBMITTED on the wire. */
function resultOf(row: MintWithTx | ClawbackWithTx, what: string) {
  const status = row.status === "CONFIRMED" || row.status === "FAILED" ? row.status : "SUBMITTED";
  return {
    idempotencyKey: row.idempotencyKey,
    status,
    txHash: row.transaction?.txHash ?? "",
    blockNumber: status === "CONFIRMED" ? (row.transaction?.blockNumber ?? 0n) : 0n,
    error:
      status === "FAILED"
        ? { reason: row.errorReason ?? "FAILED", message: row.errorMessage ?? `${what} failed`, retryable: false }
        : undefined,
  } as const;
}

export function toMintResult(row: MintWithTx, replayed: boolean): MintResult {
  return { ...resultOf(row, "mint"), mintId: row.mintId, replayed };
}

export function toClawbackResult(row: ClawbackWithTx, replayed: boolean): ClawbackResult {
  return { ...resultOf(row, "clawback"), refId: row.refId, replayed };
}

export function toTransactionView(tx: BlockchainTransaction | undefined, mints: Carried[], latestBlock: bigint): TransactionView {
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
  return {
    status,
    txHash: tx.txHash,
    blockNumber: tx.blockNumber ?? 0n,
    confirmations: confirmationsAt(latestBlock, tx.blockNumber),
    gasUsed: tx.gasUsed?.toFixed(0) ?? "",
    idempotencyKeys: mints.map((m) => m.idempotencyKey),
    error:
      status === "FAILED"
        ? { reason: failedMint?.errorReason ?? "REVERTED", message: failedMint?.errorMessage ?? tx.errorMessage ?? "reverted", retryable: false }
        : undefined,
  };
}
