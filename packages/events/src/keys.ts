/**
 * Idempotency keys sent to the blockchain adapter. They derive from the ledger's own ids, never
 * from a message, so every redelivery or replay of an event maps to the same key, hence the same
 * on-chain mint id (keccak256 of the key) that the token contract accepts once.
 */
export function mintKey(entryId: string): string {
  return `cashback:${entryId}`;
}

export function clawbackKey(refundId: string): string {
  return `clawback:${refundId}`;
}
