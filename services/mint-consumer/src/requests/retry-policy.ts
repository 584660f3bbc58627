/** When to try again, and when to stop. Pure. */
export interface RetryPolicy {
  /** Transient failures after which a request the adapter does not hold is failed. */
  maxAttempts: number;
  /** Age (since the request was recorded or replayed) after which the same happens. */
  maxAgeMs: number;
  /** First backoff ceiling; doubles per attempt... */
  baseMs: number;
  /** ...up to this. */
  capMs: number;
  /** How soon to ask again about a request the adapter answered SUBMITTED. */
  reconcileMs: number;
}

/** The backoff ceiling before attempt n+1, after n failures (n >= 1): base * 2^(n-1), capped. */
export function backoffCeilingMs(failures: number, policy: Pick<RetryPolicy, "baseMs" | "capMs">): number {
  const n = Math.max(1, Math.floor(failures));
  // 2^52 already exceeds any cap; avoid Infinity for absurd counts.
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(n - 1, 52));
}

/**
 * Exponential backoff with full jitter (AWS's "full jitter"): a uniform draw in
 * [0, ceiling), so many requests failing together do not come back together.
 * `jitter` is the caller's random draw in [0, 1).
 */
export function backoffMs(failures: number, jitter: number, policy: Pick<RetryPolicy, "baseMs" | "capMs">): number {
  const j = Math.min(Math.max(jitter, 0), 1 - Number.EPSILON);
  return Math.floor(j * backoffCeilingMs(failures, policy));
}

/** Whether a request has used up its retries: too many failures, or too old. */
export function exhausted(attempts: number, retrySince: number, now: number, policy: Pick<RetryPolicy, "maxAttempts" | "maxAgeMs">): boolean {
  return attempts >= policy.maxAttempts || now - retrySince >= policy.maxAgeMs;
}
