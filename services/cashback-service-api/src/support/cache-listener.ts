import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { Logger } from "pino";

/**
 * LISTENs on `cashback_api_cache` (the migration's triggers NOTIFY the changed table's name) and
 * calls `onChange(table)`. Every (re)connection first calls `onChange` for every table: changes
 * made while it was not listening would otherwise be missed.
 */
export class CacheListener {
  private running = false;
  private client?: pg.Client;
  private loop?: Promise<void>;

  constructor(
    private readonly deps: {
      connectionString: string;
      tables: readonly string[];
      onChange: (table: string) => Promise<void> | void;
      logger: Logger;
    },
  ) {}

  /** Resolves once listening (or once the first attempt failed; it keeps trying). */
  start(): Promise<void> {
    this.running = true;
    let first: () => void = () => {};
    const started = new Promise<void>((resolve) => (first = resolve));
    this.loop = this.run(() => first());
    return started;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.client?.end().catch(() => {});
    await this.loop;
  }

  private async run(onFirstAttempt: () => void): Promise<void> {
    let failures = 0;
    while (this.running) {
      const client = new pg.Client({ connectionString: this.deps.connectionString });
      const ended = new Promise<void>((resolve) => {
        client.on("end", resolve);
        client.on("error", () => resolve());
      });
      client.on("notification", (msg) => void this.changed(msg.payload ?? ""));
      try {
        await client.connect();
        await client.query("LISTEN cashback_api_cache");
        this.client = client;
        if (failures > 0) this.deps.logger.info("cache listener reconnected");
        failures = 0;
        await Promise.all(this.deps.tables.map((t) => this.changed(t)));
        onFirstAttempt();
        await ended;
      } catch (err) {
        onFirstAttempt();
        if (failures === 0 && this.running) this.deps.logger.warn({ err: String(err) }, "cache listener disconnected; retrying");
      }
      this.client = undefined;
      await client.end().catch(() => {});
      if (this.running) await sleep(Math.min(5_000, 200 * 2 ** Math.min(failures++, 5)));
    }
  }

  private async changed(table: string): Promise<void> {
    try {
      await this.deps.onChange(table);
    } catch (err) {
      this.deps.logger.warn({ err: String(err), table }, "cache refresh failed");
    }
  }
}
