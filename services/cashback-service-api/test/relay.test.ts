import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { newEvent, STREAMS } from "@cashback/events";
import { createTestDatabase, type TestDatabase } from "@cashback/db/testing";
import { connectNats, insertOutboxSql, outboxRecord } from "@cashback/outbox";
import { createLogger } from "@cashback/runtime";
import { startNatsServer, type NatsServer } from "@cashback/testing";
import { expectStatus, purchaseBody, startTestApi, until, WALLETS, type TestApi } from "./support/api.ts";
import { streamMessages } from "./support/stream.ts";

const logger = createLogger("relay-test", "silent");
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function shared(): Promise<{ db: TestDatabase; nats: NatsServer; nc: NatsConnection }> {
  const db = await createTestDatabase("api_relay");
  const nats = await startNatsServer();
  const nc = await connectNats({ url: nats.url, name: "relay-test", logger });
  cleanup.push(() => db.drop(), () => nats.close(), () => nc.close());
  return { db, nats, nc };
}

async function api(opts: Parameters<typeof startTestApi>[0]): Promise<TestApi> {
  const t = await startTestApi(opts);
  cleanup.push(() => t.close());
  return t;
}

const unpublished = async (t: TestApi) => Number((await t.api.pool.query("SELECT count(*) AS n FROM outbox_events WHERE published_at IS NULL")).rows[0].n);

describe("the outbox relay inside the API", () => {
  it("publishes every event exactly once into the stream with three API instances (three relays) at once", async () => {
    const { db, nats, nc } = await shared();
    const instances = [await api({ database: db, nats }), await api({ database: db, nats }), await api({ database: db, nats })];
    const [a] = instances as [TestApi, TestApi, TestApi];
    const m = await a.merchant();
    await a.rule(m.client, { name: "1%", kind: "percentage", basis_points: 100 });
    const users = await Promise.all(Array.from({ length: 10 }, (_, i) => a.user(m.client, { externalId: `u${i}` })));

    // A backlog no relay was told about (as if written while they were all down), announced by
    // one NOTIFY: all three relays wake and compete for the same rows...
    const backlog = Array.from({ length: 1_500 }, (_, i) =>
      outboxRecord(
        newEvent("cashback.accrued", { entry_id: randomUUID(), purchase_id: randomUUID(), merchant_id: m.id, user_id: randomUUID(), wallet: WALLETS[0], amount_wei: String(i + 1) }, { correlationId: randomUUID() }),
        { aggregateId: `agg-${i % 300}` },
      ),
    );
    for (let i = 0; i < backlog.length; i += 500) {
      const { text, values } = insertOutboxSql(backlog.slice(i, i + 500));
      await a.api.pool.query(text, values);
    }
    await a.api.pool.query("NOTIFY outbox_events");
    // ...while purchases keep arriving through all three instances.
    const purchases = await Promise.all(
      Array.from({ length: 150 }, (_, i) => instances[i % 3]!.as(m.key).post("/v1/purchases", purchaseBody(users[i % users.length]!.id))),
    );
    for (const p of purchases) expectStatus(p, 201);

    await until("the outbox to drain", async () => (await unpublished(a)) === 0);
    const expected = new Set<string>((await a.api.pool.query("SELECT id FROM outbox_events")).rows.map((r) => r.id));
    expect(expected.size).toBe(1_650);
    const messages = await streamMessages(nc, STREAMS.cashback.name);
    const ids = messages.map((msg) => msg.json<{ id: string }>().id);
    expect(ids).toHaveLength(expected.size);
    expect(new Set(ids)).toEqual(expected);
    // in order per aggregate (the backlog's aggregates have 5 events each, written in order)
    const position = new Map(backlog.map((r, i) => [r.id, i]));
    const last = new Map<string, number>();
    for (const msg of messages) {
      const e = msg.json<{ id: string }>();
      const i = position.get(e.id);
      if (i === undefined) continue;
      const agg = backlog[i]!.aggregateId;
      expect(i).toBeGreaterThan(last.get(agg) ?? -1);
      last.set(agg, i);
    }
  });

  it("keeps taking purchases through a NATS outage and publishes every event once it is back", async () => {
    const { db, nats, nc } = await shared();
    const t = await api({ database: db, nats });
    const m = await t.merchant();
    await t.rule(m.client, { name: "1%", kind: "percentage", basis_points: 100 });
    const u = await t.user(m.client);
    expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id)), 201);
    await until("the first event to be published", async () => (await unpublished(t)) === 0);

    await nats.kill();
    const during = [];
    for (let i = 0; i < 60; i++) during.push(expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id)), 201));
    expect((await fetch(`${t.baseUrl}/readyz`)).status).toBe(503);
    await until("the relay to record failed attempts", async () => Number((await t.api.pool.query("SELECT count(*) AS n FROM outbox_events WHERE attempts > 0")).rows[0].n) > 0);
    expect(await unpublished(t)).toBe(60);

    await nats.start();
    await until("the outbox to drain after the outage", async () => (await unpublished(t)) === 0);
    await until("readiness", async () => (await fetch(`${t.baseUrl}/readyz`)).status === 200);
    const messages = (await streamMessages(nc, STREAMS.cashback.name)).map((msg) => msg.json<{ payload: { purchase_id: string } }>());
    expect(messages).toHaveLength(61);
    const purchased = messages.map((e) => e.payload.purchase_id);
    expect(new Set(purchased).size).toBe(61);
    for (const p of during) expect(purchased).toContain(p.id);
  });
});
