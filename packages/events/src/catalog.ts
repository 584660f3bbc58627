import Type, { type Static, type TSchema } from "typebox";
import { Address, AmountWei, BlockNumber, Bytes32, Message, Reason, TxHash, Uuid } from "./fields.ts";

/**
 * Every event the services exchange, with its payload (version 1). The subject an event is
 * published on is its type; docs/events.md describes each one.
 *
 * Written by cashback-service-api (stream CASHBACK):
 *   cashback.accrued             a ledger entry earned cashback: mint it
 *   cashback.clawback_requested  a refund takes back (part of) an entry's cashback: claw it back
 * Written by mint-consumer (stream CASHBACK_RESULTS):
 *   cashback.minted / cashback.mint_failed
 *   cashback.clawed_back / cashback.clawback_failed
 */
export const payloads = {
  "cashback.accrued": Type.Object({
    /** The ledger entry; the mint's idempotency key is mintKey(entry_id). */
    entry_id: Uuid,
    purchase_id: Uuid,
    merchant_id: Uuid,
    user_id: Uuid,
    wallet: Address,
    amount_wei: AmountWei,
  }),
  "cashback.clawback_requested": Type.Object({
    /** One refund claws back at most once; the clawback's idempotency key is clawbackKey(refund_id). */
    refund_id: Uuid,
    entry_id: Uuid,
    purchase_id: Uuid,
    merchant_id: Uuid,
    user_id: Uuid,
    wallet: Address,
    amount_wei: AmountWei,
  }),
  "cashback.minted": Type.Object({
    entry_id: Uuid,
    /** keccak256(mintKey(entry_id)), as recorded by the token contract. */
    mint_id: Bytes32,
    tx_hash: TxHash,
    block_number: BlockNumber,
    wallet: Address,
    amount_wei: AmountWei,
  }),
  "cashback.mint_failed": Type.Object({
    entry_id: Uuid,
    reason: Reason,
    message: Message,
  }),
  "cashback.clawed_back": Type.Object({
    refund_id: Uuid,
    entry_id: Uuid,
    /** keccak256(clawbackKey(refund_id)), as recorded by the token contract. */
    ref_id: Bytes32,
    tx_hash: TxHash,
    block_number: BlockNumber,
    wallet: Address,
    amount_wei: AmountWei,
  }),
  "cashback.clawback_failed": Type.Object({
    refund_id: Uuid,
    entry_id: Uuid,
    reason: Reason,
    message: Message,
  }),
} satisfies Record<string, TSchema>;

export type EventType = keyof typeof payloads;
export type PayloadOf<T extends EventType> = Static<(typeof payloads)[T]>;
export const EVENT_TYPES = Object.keys(payloads) as EventType[];

/** The payload version this code writes and reads. A reader refuses (dead-letters) any other. */
export const EVENT_VERSION = 1;

export function isEventType(value: unknown): value is EventType {
  return typeof value === "string" && Object.hasOwn(payloads, value);
}
