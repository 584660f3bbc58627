import { randomUUID } from "node:crypto";
import type { Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { newEvent, type Envelope, type PayloadOf } from "@cashback/events";

/** A fresh shopper wallet (EIP-55 checksummed), never used before. */
export const freshWallet = (): Address => privateKeyToAccount(generatePrivateKey()).address;

/** A valid cashback.accrued event with fresh ids; override any payload field. */
export function accruedEvent(payload: Partial<PayloadOf<"cashback.accrued">> = {}, opts: { correlationId?: string } = {}): Envelope<"cashback.accrued"> {
  const purchaseId = payload.purchase_id ?? randomUUID();
  return newEvent(
    "cashback.accrued",
    { entry_id: randomUUID(), purchase_id: purchaseId, merchant_id: randomUUID(), user_id: randomUUID(), wallet: freshWallet(), amount_wei: "1000000000000000000", ...payload },
    { correlationId: opts.correlationId ?? purchaseId },
  );
}

/** A valid cashback.clawback_requested event for an accrued one (same entry, wallet, ids); override any field. */
export function clawbackRequestedEvent(accrued: Envelope<"cashback.accrued">, payload: Partial<PayloadOf<"cashback.clawback_requested">> = {}): Envelope<"cashback.clawback_requested"> {
  const p = accrued.payload;
  return newEvent(
    "cashback.clawback_requested",
    { refund_id: randomUUID(), entry_id: p.entry_id, purchase_id: p.purchase_id, merchant_id: p.merchant_id, user_id: p.user_id, wallet: p.wallet, amount_wei: p.amount_wei, ...payload },
    { correlationId: accrued.correlation_id, causationId: accrued.id },
  );
}
