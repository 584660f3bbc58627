import type { ChainClient } from "../chain/chain-client.ts";
import type { MintDispatcher } from "../mints/dispatcher.ts";
import type { TxMonitor } from "../transactions/tx-monitor.ts";
import type { NonceStore } from "../nonces/nonce-store.ts";

/** One signer key: its own nonce row, sender and monitor. */
export interface Lane {
  chain: ChainClient;
  nonces: NonceStore;
  dispatcher: MintDispatcher;
  monitor: TxMonitor;
}

/**
 * The signer lanes (ADAPTER_SIGNER_KEYS) seen as one sender by the services and the monitor:
 * new work wakes every lane (the first to claim a row sends it, SKIP LOCKED shares the rest), a
 * re-queue asks every lane to check the chain, and the signer is "out of funds" only when every
 * lane is (one funded lane still sends everything).
 */
export class SignerLanes {
  readonly lanes: readonly Lane[];

  constructor(lanes: readonly Lane[]) {
    if (lanes.length === 0) throw new Error("at least one signer lane");
    this.lanes = lanes;
  }

  nudge(): void {
    for (const lane of this.lanes) lane.dispatcher.nudge();
  }

  requireChainCheck(): void {
    for (const lane of this.lanes) lane.dispatcher.requireChainCheck();
  }

  get outOfFunds(): boolean {
    return this.lanes.every((lane) => lane.dispatcher.outOfFunds);
  }

  /** One monitor pass over every lane's open transactions (tests and start-up). */
  async check(): Promise<void> {
    for (const lane of this.lanes) await lane.monitor.check();
  }

  start(): void {
    for (const lane of this.lanes) {
      lane.monitor.start();
      lane.dispatcher.start();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.dispatcher.stop()));
    await Promise.all(this.lanes.map((lane) => lane.monitor.stop()));
  }
}
