import type { ServiceName } from "@cashback/testing";

/** A small seeded PRNG (mulberry32): a chaos run is reproducible from its printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type ChaosAction =
  | { kind: "kill"; service: ServiceName; instance: number }
  | { kind: "sigterm"; service: ServiceName; instance: number }
  | { kind: "nats-restart" }
  | { kind: "postgres-restart" }
  | { kind: "rpc-cut"; ms: number };

export interface ChaosSettings {
  /** Window in which actions start (ms from the start of the load). */
  durationMs: number;
  killsPerService: number;
  sigtermsPerService: number;
  instancesPerService: number;
  rpcCutMs: number;
}

export const SERVICES: readonly ServiceName[] = ["adapter", "consumer", "api"];

/**
 * When to break what: each service's kills and SIGTERMs at random moments over the window
 * (instances alternate, so each one goes down), one NATS restart, one Postgres restart and one
 * cut of the chain's JSON-RPC, sorted by time. Pure: same seed, same plan.
 */
export function planChaos(random: () => number, s: ChaosSettings): { atMs: number; action: ChaosAction }[] {
  const at = () => Math.floor(random() * s.durationMs * 0.9);
  const plan: { atMs: number; action: ChaosAction }[] = [];
  for (const service of SERVICES) {
    for (let k = 0; k < s.killsPerService; k++) plan.push({ atMs: at(), action: { kind: "kill", service, instance: k % s.instancesPerService } });
    for (let k = 0; k < s.sigtermsPerService; k++) plan.push({ atMs: at(), action: { kind: "sigterm", service, instance: (k + 1) % s.instancesPerService } });
  }
  plan.push({ atMs: at(), action: { kind: "nats-restart" } });
  plan.push({ atMs: at(), action: { kind: "postgres-restart" } });
  // The cut starts early enough to end inside the window, so the drain after it is measured.
  plan.push({ atMs: Math.floor(random() * Math.max(1, s.durationMs - s.rpcCutMs) * 0.9), action: { kind: "rpc-cut", ms: s.rpcCutMs } });
  return plan.sort((a, b) => a.atMs - b.atMs);
}
