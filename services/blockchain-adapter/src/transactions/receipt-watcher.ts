import { setTimeout as sleep } from "node:timers/promises";
import type { Hash } from "viem";
import type { Logger } from "@cashback/runtime";
import type { ChainClient } from "../chain/chain-client.ts";
import { shortMessage } from "../chain/rpc-errors.ts";
import type { Metrics } from "../metrics.ts";
import type { Settlement } from "../mints/settlement.ts";
import { isSettled } from "./lifecycle.ts";

/**
 * Polls for the receipt of each transaction just sent, quickly at first, until it has the
 * configured confirmations. Gives up after `stuckAfterMs`: from then on the TxMonitor, which
 * also covers transactions left over from before a restart, is in charge of it.
 */
export class ReceiptWatcher {
  private readonly deps: { chain: ChainClient; settlement: Settlement; logger: Logger; metrics: Metrics; confirmations: number; stuckAfterMs: number };
  private readonly active = new Set<Promise<void>>();
  private stopped = false;

  constructor(deps: ReceiptWatcher["deps"]) {
    this.deps = deps;
  }

  watch(txId: bigint, hash: Hash): void {
    const job = this.follow(txId, hash)
      .catch((err) => this.deps.logger.warn({ tx: hash, err: shortMessage(err) }, "receipt watch failed; the monitor will retry"))
      .catch(() => {}); // a watch must never become an unhandled rejection
    this.active.add(job);
    void job.finally(() => this.active.delete(job));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.active]);
  }

  private async follow(txId: bigint, hash: Hash): Promise<void> {
    const { chain, settlement, confirmations, stuckAfterMs, metrics } = this.deps;
    const started = Date.now();
    let delay = 5;
    while (!this.stopped && Date.now() - started < stuckAfterMs) {
      const receipt = await chain.receipt(hash);
      if (receipt && (confirmations <= 1 || isSettled(await chain.blockNumber(), receipt.blockNumber, confirmations))) {
        const t0 = performance.now();
        await settlement.recordReceipt(txId, receipt);
        metrics.roundPhaseSeconds.observe({ phase: "receipt" }, (performance.now() - t0) / 1000);
        metrics.receiptSeconds.observe((Date.now() - started) / 1000);
        return;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 1_000);
    }
  }
}
