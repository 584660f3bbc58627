/** Keys confirmed together by one transaction (its state is committed before the notification). */
export interface Confirmation {
  keys: ReadonlySet<string>;
  txHash: string;
  blockNumber: bigint;
}

/** In-process wake-ups for callers waiting on mints or clawbacks to reach a final state. */
export class Completions {
  private readonly waiters = new Map<string, Set<(c?: Confirmation) => void>>();

  /** `confirmed`: all of `keys` are CONFIRMED by that transaction, so a waiter need not read them. */
  notify(keys: Iterable<string>, confirmed?: { txHash: string; blockNumber: bigint }): void {
    const list = [...keys];
    const confirmation = confirmed && { ...confirmed, keys: new Set(list) };
    for (const key of list) {
      const set = this.waiters.get(key);
      if (!set) continue;
      this.waiters.delete(key);
      for (const wake of set) wake(confirmation);
    }
  }

  /**
   * Resolves when any of `keys` is notified, or after `ms`. Register before reading the state
   * you wait on, so a notification between the read and the wait is not missed. Every way out
   * unregisters the waiter, and a key whose last waiter leaves is forgotten: nothing is kept
   * per key once nobody waits on it. Resolves with the notification's Confirmation, if it had one.
   */
  wait(keys: readonly string[], ms: number): Promise<Confirmation | undefined> {
    return new Promise((resolve) => {
      const wake = (confirmation?: Confirmation) => {
        clearTimeout(timer);
        for (const key of keys) {
          const set = this.waiters.get(key);
          if (!set) continue;
          set.delete(wake);
          if (set.size === 0) this.waiters.delete(key);
        }
        resolve(confirmation);
      };
      const timer = setTimeout(() => wake(), ms);
      for (const key of keys) {
        let set = this.waiters.get(key);
        if (!set) this.waiters.set(key, (set = new Set()));
        set.add(wake);
      }
    });
  }

  /** How many keys have someone waiting (for tests and metrics). */
  get size(): number {
    return this.waiters.size;
  }
}
