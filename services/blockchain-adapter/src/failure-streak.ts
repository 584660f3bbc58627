import type { Logger } from "@cashback/runtime";

/**
 * Logging for a loop that retries: a run of failures of one kind is logged once (then again at
 * most once a minute, with the count), the retries in between at debug level, and the recovery
 * once. An outage of the database or the chain thus costs a few log lines, not one (with a
 * stack) per retry.
 */
export class FailureStreak {
  private readonly logger: Logger;
  private readonly what: string;
  private failures = 0;
  private kind?: string;
  private since = 0;
  private lastLoggedAt = 0;

  constructor(logger: Logger, what: string) {
    this.logger = logger;
    this.what = what;
  }

  /** One more failure of `kind` (e.g. "database", "chain"); `level` for the lines that are logged. */
  failed(kind: string, fields: Record<string, unknown>, message: string, level: "warn" | "error" = "warn"): void {
    const now = Date.now();
    if (this.failures === 0) this.since = now;
    this.failures++;
    const line = { ...fields, failures: this.failures, failingForMs: now - this.since };
    if (kind !== this.kind || now - this.lastLoggedAt >= 60_000) {
      this.kind = kind;
      this.lastLoggedAt = now;
      this.logger[level](line, message);
    } else {
      this.logger.debug(line, message);
    }
  }

  succeeded(): void {
    if (this.failures === 0) return;
    this.logger.info({ failures: this.failures, failedForMs: Date.now() - this.since }, `${this.what} recovered`);
    this.failures = 0;
    this.kind = undefined;
  }

  get count(): number {
    return this.failures;
  }
}

/** Exponential backoff with full jitter: a random wait in [1, min(cap, base * 2^failures)] ms. */
export function backoffMs(failures: number, baseMs = 100, capMs = 5_000, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures, 0), 16));
  return Math.floor(random() * ceiling) + 1;
}
