import Type from "typebox";
import { Address, Bytes32, Nullable, Timestamp, Uuid, Wei } from "../http/schemas.ts";

export const LedgerEntrySchema = Type.Object(
  {
    id: Uuid,
    kind: Type.Union([Type.Literal("accrual"), Type.Literal("clawback")]),
    status: Type.Union(
      ["pending", "minted", "failed", "clawback_pending", "clawed_back", "clawback_failed"].map((s) => Type.Literal(s)),
      { description: "accrual: pending -> minted | failed; clawback: clawback_pending -> clawed_back | clawback_failed" },
    ),
    purchase_id: Uuid,
    refund_id: Nullable(Uuid),
    accrual_id: Nullable(Uuid),
    merchant_id: Uuid,
    user_id: Uuid,
    wallet_address: Address,
    amount_wei: Wei,
    event_id: Uuid,
    chain_ref: Nullable(Bytes32),
    tx_hash: Nullable(Bytes32),
    block_number: Nullable(Type.String()),
    failure: Nullable(Type.Object({ reason: Type.String(), message: Type.String() })),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "LedgerEntry", description: "chain_ref: the mint id of an accrual, the ref id of a clawback" },
);

export const LedgerTotalsSchema = Type.Object({
  pending_wei: Wei,
  minted_wei: Wei,
  failed_wei: Wei,
  clawback_pending_wei: Wei,
  clawed_back_wei: Wei,
  clawback_failed_wei: Wei,
  net_minted_wei: Type.String({ description: "minted minus clawed back: what the chain should hold from this ledger" }),
  entries: Type.Integer(),
});

export const BalanceSchema = Type.Object({
  available: Type.Boolean(),
  balance_wei: Nullable(Wei),
  block_number: Nullable(Type.String()),
  reason: Type.Optional(Type.String()),
});
