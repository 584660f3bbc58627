import { expect, it } from "vitest";
import { planChaos, seededRandom } from "./plan.ts";

const settings = { durationMs: 60_000, killsPerService: 5, sigtermsPerService: 2, instancesPerService: 2, rpcCutMs: 30_000 };

it("the plan: each service's kills and SIGTERMs on alternating instances, one NATS and one Postgres restart, one RPC cut that ends inside the window, in time order", () => {
  const plan = planChaos(seededRandom(42), settings);
  const of = (kind: string, service?: string) => plan.filter((p) => p.action.kind === kind && (!service || ("service" in p.action && p.action.service === service)));
  for (const service of ["adapter", "consumer", "api"]) {
    expect(of("kill", service).map((p) => ("instance" in p.action ? p.action.instance : -1)).sort()).toEqual([0, 0, 0, 1, 1]);
    expect(of("sigterm", service).map((p) => ("instance" in p.action ? p.action.instance : -1)).sort()).toEqual([0, 1]);
  }
  expect(of("nats-restart")).toHaveLength(1);
  expect(of("postgres-restart")).toHaveLength(1);
  const [cut] = of("rpc-cut");
  expect(cut!.atMs + 30_000).toBeLessThanOrEqual(60_000);
  expect(plan.map((p) => p.atMs)).toEqual([...plan.map((p) => p.atMs)].sort((a, b) => a - b));
  expect(plan.every((p) => p.atMs >= 0 && p.atMs < 60_000)).toBe(true);
});

it("the same seed gives the same plan; another seed another one", () => {
  expect(planChaos(seededRandom(7), settings)).toEqual(planChaos(seededRandom(7), settings));
  expect(planChaos(seededRandom(7), settings)).not.toEqual(planChaos(seededRandom(8), settings));
});
