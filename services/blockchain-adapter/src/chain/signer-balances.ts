import { createPublicClient, http, type Address } from "viem";

/**
 * Each signer lane's native balance (gas money) for the /metrics gauge, read every `intervalMs`
 * on a client of its own: not through the chain breaker, so failed reads never count toward
 * stopping the mints, and not on the scrape, which would wait up to RPC_TIMEOUT_MS per signer.
 * A signer whose last read failed has no figure (no stale one).
 */
export class SignerBalances {
  private readonly latest = new Map<Address, bigint>();
  private readonly client;
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;

  constructor(private readonly opts: { rpcUrl: string; timeoutMs: number; signers: readonly Address[]; intervalMs: number }) {
    this.client = createPublicClient({ transport: http(opts.rpcUrl, { timeout: opts.timeoutMs, retryCount: 0 }) });
  }

  /** The figures of the last refresh. */
  get current(): ReadonlyMap<Address, bigint> {
    return this.latest;
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Reads every balance once (a refresh already running is joined, not doubled). */
  refresh(): Promise<void> {
    this.refreshing ??= Promise.all(
      this.opts.signers.map(async (address) => {
        try {
          this.latest.set(address, await this.client.getBalance({ address }));
        } catch {
          this.latest.delete(address);
        }
      }),
    ).then(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.refreshing;
  }
}
