/**
 * Which nonce to use next, given what the chain and our own records say. Pure, so the rule is
 * tested on its own.
 *
 * - The chain's pending count is the floor: anything lower was used already ("nonce too low").
 * - Our own unresolved transactions hold their nonces: the monitor re-sends them, so the next
 *   new transaction goes after the highest of them.
 * - A stored value above both is drift (a lost transaction, a reset chain) and is discarded,
 *   or the node would hold every later transaction back ("nonce too high").
 */
export function nextNonce(chainPending: bigint, highestOpenNonce: bigint | undefined): bigint {
  if (highestOpenNonce === undefined) return chainPending;
  return highestOpenNonce + 1n > chainPending ? highestOpenNonce + 1n : chainPending;
}
