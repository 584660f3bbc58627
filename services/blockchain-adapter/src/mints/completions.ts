/** In-process wake-ups for callers waiting on mints to reach a final state. */
export class Completions {
  private readonly waiters = new Map<string, Set<() => void>>();

  notify(keys: Iterable<string>): void {
    for (const key of keys) {
      const set = this.waiters.get(key);
      if (!set) continue;
      this.waiters.delete(key);
      for (const wake of set) wake();
    }
  }

  /**
   * Resolves when any of `keys` is notified, or after `ms`. Register before reading the state
   * you wait on, so a notification between the read and the wait is not missed.
   */
  wait(keys: readonly string[], ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        for (const key of keys) this.waiters.get(key)?.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      for (const key of keys) {
        let set = this.waiters.get(key);
        if (!set) this.waiters.set(key, (set = new Set()));
        set.add(wake);
      }
    });
  }
}
