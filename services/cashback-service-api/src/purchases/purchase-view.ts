import Type from "typebox";
import { jsonMinor } from "../rules/money.ts";
import { AmountMinor, Bytes32, Category, Currency, Nullable, Timestamp, Uuid, Wei } from "../http/schemas.ts";

/** A purchase as the REST API shows it: with its cashback and refunds. */
export const PurchaseSchema = Type.Object(
  {
    id: Uuid,
    merchant_id: Uuid,
    user_id: Uuid,
    category: Category,
    amount_minor: AmountMinor,
    currency: Currency,
    occurred_at: Timestamp,
    created_at: Timestamp,
    refunded_minor: Type.Integer({ minimum: 0, description: "sum of its refunds, in minor units" }),
    cashback: Type.Object({
      amount_wei: Wei,
      status: Type.Union([Type.Literal("none"), Type.Literal("pending"), Type.Literal("minted"), Type.Literal("failed")], {
        description: "none: no rule paid anything; pending: waiting for the mint; minted; failed",
      }),
      entry_id: Nullable(Uuid),
      rules: Type.Array(Type.Object({ rule_id: Uuid, name: Type.String(), amount_wei: Wei }), { description: "the rules that paid, and how much each" }),
      mint_id: Nullable(Bytes32),
      tx_hash: Nullable(Bytes32),
      block_number: Nullable(Type.String()),
      failure: Nullable(Type.Object({ reason: Type.String(), message: Type.String() })),
      clawed_back_wei: Type.String({ description: "cashback its refunds take back (requested or done)" }),
    }),
    refunds: Type.Array(
      Type.Object({
        id: Uuid,
        amount_minor: AmountMinor,
        clawback_wei: Wei,
        clawback_status: Type.Union([Type.Literal("none"), Type.Literal("clawback_pending"), Type.Literal("clawed_back"), Type.Literal("clawback_failed")]),
        created_at: Timestamp,
      }),
    ),
  },
  { $id: "Purchase" },
);

export type PurchaseView = {
  id: string;
  merchant_id: string;
  user_id: string;
  category: string;
  amount_minor: number;
  currency: string;
  occurred_at: string;
  created_at: string;
  refunded_minor: number;
  cashback: {
    amount_wei: string;
    status: "none" | "pending" | "minted" | "failed";
    entry_id: string | null;
    rules: { rule_id: string; name: string; amount_wei: string }[];
    mint_id: string | null;
    tx_hash: string | null;
    block_number: string | null;
    failure: { reason: string; message: string } | null;
    clawed_back_wei: string;
  };
  refunds: { id: string; amount_minor: number; clawback_wei: string; clawback_status: "none" | "clawback_pending" | "clawed_back" | "clawback_failed"; created_at: string }[];
};

export interface PurchaseRecord {
  id: string;
  merchantId: string;
  userId: string;
  category: string;
  amountMinor: bigint;
  currency: string;
  occurredAt: Date;
  createdAt: Date;
  refundedMinor: bigint;
  cashbackWei: bigint;
  cashbackRules: { rule_id: string; name: string; amount_wei: string }[];
}

export interface EntryRecord {
  id: string;
  status: string;
  chainRef: string | null;
  txHash: string | null;
  blockNumber: bigint | null;
  failureReason: string | null;
  failureMessage: string | null;
}

export function purchaseView(
  p: PurchaseRecord,
  accrual: EntryRecord | null,
  refunds: { id: string; amountMinor: bigint; clawbackWei: bigint; createdAt: Date; clawbackStatus: string | null }[] = [],
): PurchaseView {
  const minted = accrual?.status === "minted";
  return {
    id: p.id,
    merchant_id: p.merchantId,
    user_id: p.userId,
    category: p.category,
    amount_minor: jsonMinor(p.amountMinor),
    currency: p.currency,
    occurred_at: p.occurredAt.toISOString(),
    created_at: p.createdAt.toISOString(),
    refunded_minor: jsonMinor(p.refundedMinor),
    cashback: {
      amount_wei: p.cashbackWei.toString(),
      status: (accrual?.status as "pending" | "minted" | "failed" | undefined) ?? "none",
      entry_id: accrual?.id ?? null,
      rules: p.cashbackRules,
      mint_id: minted ? accrual.chainRef : null,
      tx_hash: minted ? accrual.txHash : null,
      block_number: minted && accrual.blockNumber !== null ? accrual.blockNumber.toString() : null,
      failure: accrual?.failureReason ? { reason: accrual.failureReason, message: accrual.failureMessage ?? "" } : null,
      clawed_back_wei: refunds.reduce((sum, r) => sum + r.clawbackWei, 0n).toString(),
    },
    refunds: refunds.map((r) => ({
      id: r.id,
      amount_minor: jsonMinor(r.amountMinor),
      clawback_wei: r.clawbackWei.toString(),
      clawback_status: (r.clawbackStatus as "clawback_pending" | "clawed_back" | "clawback_failed" | null) ?? "none",
      created_at: r.createdAt.toISOString(),
    })),
  };
}
