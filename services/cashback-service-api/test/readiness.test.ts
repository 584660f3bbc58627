// /readyz follows Postgres: a cluster of the test's own is stopped under the running API
// (ready -> 503 naming the database) and started again (ready again, and serving).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPgCluster, waitFor, type PgCluster } from "@cashback/testing";
import { expectStatus, purchaseBody, startTestApi, type TestApi } from "./support/api.ts";

let pg: PgCluster;
let t: TestApi;

beforeAll(async () => {
  pg = await startPgCluster();
  t = await startTestApi({ database: { name: "api_ready", url: pg.url("api_ready"), drop: async () => {} } });
}, 120_000);

afterAll(async () => {
  await t?.close().catch(() => {});
  await pg?.close();
});

async function readyz() {
  const res = await fetch(`${t.baseUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, boolean> };
}

describe("readiness", () => {
  it("turns unready while Postgres is stopped, and ready (and serving) again once it is back", async () => {
    expect(await readyz()).toEqual({ status: 200, body: { database: true, nats: true } });
    expect(await (await fetch(`${t.baseUrl}/healthz`)).text()).toBe("ok\n");

    await pg.stop();
    const down = await waitFor("/readyz to say 503", async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    expect(down.body).toEqual({ database: false, nats: true });
    expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200); // alive all along: no restart wanted

    await pg.start();
    await waitFor("/readyz to say 200", async () => (await readyz()).status === 200, { timeoutMs: 60_000, intervalMs: 100 });
    const merchant = await t.merchant();
    const user = await t.user(merchant.client);
    expectStatus(await merchant.client.post("/v1/purchases", purchaseBody(user.id)), 201);
  }, 180_000);
});
