import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { clawbackKey, DLQ_HEADERS, mintKey, newEvent, STREAMS, type Envelope, type EventType, type PayloadOf } from "@cashback/events";
import { connectNats } from "@cashback/outbox";
import { createLogger } from "@cashback/runtime";
import { keccak256, toHex } from "viem";
import { expectStatus, purchaseBody, startTestApi, until, WALLETS, type TestApi } from "./support/api.ts";
import { streamMessages } from "./support/stream.ts";
import { ResultHandler } from "../src/results/result-handler.ts";

const CBK = 10n ** 18n;
let t: TestApi;
let nc: NatsConnection;
beforeAll(async () => {
  t = await startTestApi();
  nc = await connectNats({ url: t.nats.url, name: "results-test", logger: createLogger("results-test", "silent") });
  await until("the API's streams", async () => (await fetch(`${t.baseUrl}/readyz`)).status === 200);
});
afterAll(async () => {
  await nc?.close();
  await t?.close();
});

const tx = (c: string) => `0x${c.repeat(64)}`;

async function publish<T extends EventType>(type: T, payload: PayloadOf<T>, opts: { id?: string } = {}): Promise<Envelope<T>> {
  const event = newEvent(type, payload, { correlationId: randomUUID(), id: opts.id });
  await jetstream(nc).publish(type, JSON.stringify(event), { msgID: randomUUID() }); // a fresh msgID: the stream keeps redeliveries
  return event;
}

async function purchaseWithCashback() {
  const m = await t.merchant();
  const u = await t.user(m.client, { wallet: WALLETS[1] });
  await t.rule(m.client, { name: "10%", kind: "percentage", basis_points: 1000 });
  const p = expectStatus(await m.client.post("/v1/purchases", purchaseBody(u.id)), 201);
  return { m, u, p, entryId: p.cashback.entry_id as string };
}

const processed = async (eventId: string) => (await t.api.pool.query("SELECT outcome FROM processed_events WHERE event_id = $1", [eventId])).rows[0]?.outcome as string | undefined;

async function deadLetters() {
  return (await streamMessages(nc, STREAMS.deadLetters.name)).map((m) => ({ subject: m.subject, reason: m.headers?.get(DLQ_HEADERS.reason) ?? "", body: m.string() }));
}

describe("result events move the ledger", () => {
  it("marks an accrual minted, with its mint id, tx hash and block, exactly once", async () => {
    const { m, u, p, entryId } = await purchaseWithCashback();
    const mintId = keccak256(toHex(mintKey(entryId)));
    const event = await publish("cashback.minted", { entry_id: entryId, mint_id: mintId, tx_hash: tx("a"), block_number: "42", wallet: WALLETS[1], amount_wei: (10n * CBK).toString() });
    await until("the entry to be minted", async () => (await processed(event.id)) === "applied");
    const view = expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200);
    expect(view.cashback).toMatchObject({ status: "minted", mint_id: mintId, tx_hash: tx("a"), block_number: "42" });

    // the same event again (a redelivery or a replay): nothing changes, it is counted as a duplicate
    await jetstream(nc).publish("cashback.minted", JSON.stringify(event), { msgID: randomUUID() });
    // a later failure for the same entry is stale news
    const stale = await publish("cashback.mint_failed", { entry_id: entryId, reason: "REVERTED", message: "late" });
    await until("the stale failure to be read", async () => (await processed(stale.id)) === "ignored");
    expect((await t.api.pool.query("SELECT count(*)::int AS n FROM processed_events WHERE event_id = $1", [event.id])).rows[0].n).toBe(1);
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/api_result_events_total\{type="cashback.minted",outcome="duplicate"\} 1/);
    expect(expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200).cashback.status).toBe("minted");

    const ledger = expectStatus(await m.client.get(`/v1/users/${u.id}/ledger`), 200);
    expect(ledger.totals).toMatchObject({ minted_wei: (10n * CBK).toString(), pending_wei: "0", net_minted_wei: (10n * CBK).toString() });
    const trace = expectStatus(await m.client.get(`/v1/purchases/${p.id}/trace`), 200);
    expect(trace.results.map((r: { event_id: string; outcome: string }) => [r.event_id, r.outcome])).toEqual([
      [event.id, "applied"],
      [stale.id, "ignored"],
    ]);
    expect(trace.chain).toEqual({ mint_id: mintId, tx_hash: tx("a"), block_number: "42" });
    expect(trace.outbox[0]).toMatchObject({ type: "cashback.accrued", status: "published", published_at: expect.any(String) });
  });

  it("marks a failed mint failed, and a later success minted", async () => {
    const { m, p, entryId } = await purchaseWithCashback();
    const failed = await publish("cashback.mint_failed", { entry_id: entryId, reason: "RETRIES_EXHAUSTED", message: "adapter unavailable" });
    await until("the failure", async () => (await processed(failed.id)) === "applied");
    expect(expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200).cashback).toMatchObject({ status: "failed", failure: { reason: "RETRIES_EXHAUSTED" } });
    const minted = await publish("cashback.minted", { entry_id: entryId, mint_id: keccak256(toHex(mintKey(entryId))), tx_hash: tx("b"), block_number: "7", wallet: WALLETS[1], amount_wei: (10n * CBK).toString() });
    await until("the success", async () => (await processed(minted.id)) === "applied");
    expect(expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200).cashback).toMatchObject({ status: "minted", failure: null, tx_hash: tx("b") });
  });

  it("moves a refund's clawback to clawed back or clawback failed", async () => {
    const { m, u, p, entryId } = await purchaseWithCashback();
    const r1 = expectStatus(await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 5_000 }), 201);
    const r2 = expectStatus(await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 2_500 }), 201);
    const done = await publish("cashback.clawed_back", { refund_id: r1.id, entry_id: entryId, ref_id: keccak256(toHex(clawbackKey(r1.id))), tx_hash: tx("c"), block_number: "9", wallet: WALLETS[1], amount_wei: r1.clawback_wei });
    const failed = await publish("cashback.clawback_failed", { refund_id: r2.id, entry_id: entryId, reason: "INSUFFICIENT_BALANCE", message: "spent" });
    await until("both clawback results", async () => (await processed(done.id)) === "applied" && (await processed(failed.id)) === "applied");
    const view = expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200);
    expect(view.refunds.map((r: { clawback_status: string }) => r.clawback_status)).toEqual(["clawed_back", "clawback_failed"]);
    const ledger = expectStatus(await m.client.get(`/v1/users/${u.id}/ledger`), 200);
    expect(ledger.totals).toMatchObject({ clawed_back_wei: (5n * CBK).toString(), clawback_failed_wei: (25n * CBK / 10n).toString() });
  });
});

describe("a batch of result events, in one transaction", () => {
  const bytes = (e: Envelope<EventType>) => new TextEncoder().encode(JSON.stringify(e));
  const event = <T extends EventType>(type: T, payload: PayloadOf<T>) => newEvent(type, payload, { correlationId: randomUUID() });
  const entry = async (id: string) => (await t.api.pool.query("SELECT status, tx_hash, failure_reason FROM cashback_ledger WHERE id = $1", [id])).rows[0];
  const handler = () => new ResultHandler({ db: t.api.db, logger: createLogger("results-test", "silent"), pool: t.api.pool });
  const minted = (entryId: string, c: string) => event("cashback.minted", { entry_id: entryId, mint_id: keccak256(toHex(mintKey(entryId))), tx_hash: tx(c), block_number: "5", wallet: WALLETS[1], amount_wei: (10n * CBK).toString() });

  it("applies each event once: a duplicate in the batch and a redelivery in the next are no-ops", async () => {
    const a = await purchaseWithCashback();
    const b = await purchaseWithCashback();
    const refund = expectStatus(await a.m.client.post(`/v1/purchases/${a.p.id}/refunds`, { amount_minor: 100 }), 201);
    const mintedA = minted(a.entryId, "1");
    const failedB = event("cashback.mint_failed", { entry_id: b.entryId, reason: "REVERTED", message: "first try" });
    const mintedB = minted(b.entryId, "2"); // a success after a failure, in the same batch, wins
    const clawed = event("cashback.clawed_back", { refund_id: refund.id, entry_id: a.entryId, ref_id: keccak256(toHex(clawbackKey(refund.id))), tx_hash: tx("3"), block_number: "6", wallet: WALLETS[1], amount_wei: refund.clawback_wei });
    const first = await handler().handleBatch([mintedA, mintedA, failedB, mintedB, clawed].map(bytes));
    expect(first?.map((o) => o.outcome)).toEqual(["applied", "duplicate", "applied", "applied", "applied"]);
    expect(await entry(a.entryId)).toEqual({ status: "minted", tx_hash: tx("1"), failure_reason: null });
    expect(await entry(b.entryId)).toEqual({ status: "minted", tx_hash: tx("2"), failure_reason: null });
    expect(await entry(refund.clawback_entry_id)).toMatchObject({ status: "clawed_back", tx_hash: tx("3") });
    for (const e of [mintedA, failedB, mintedB, clawed]) expect(await processed(e.id)).toBe("applied");

    // redelivered, beside a stale failure: the one is a duplicate, the other ignored; nothing moves
    const stale = event("cashback.mint_failed", { entry_id: a.entryId, reason: "REVERTED", message: "late" });
    const second = await handler().handleBatch([bytes(mintedA), bytes(stale)]);
    expect(second?.map((o) => o.outcome)).toEqual(["duplicate", "ignored"]);
    expect(await entry(a.entryId)).toEqual({ status: "minted", tx_hash: tx("1"), failure_reason: null });
    expect(await processed(stale.id)).toBe("ignored");
    const n = (await t.api.pool.query("SELECT count(*)::int AS n FROM processed_events WHERE event_id = ANY($1::uuid[])", [[mintedA.id, failedB.id, mintedB.id, clawed.id, stale.id]])).rows[0].n;
    expect(n).toBe(5);
    expect(expectStatus(await a.m.client.get(`/v1/purchases/${a.p.id}`), 200).cashback).toMatchObject({ status: "minted", mint_id: mintedA.payload.mint_id, block_number: "5" });
  });

  it("declines a batch with a poison event in it, changing nothing, so that its events go one by one", async () => {
    const c = await purchaseWithCashback();
    const good = event("cashback.mint_failed", { entry_id: c.entryId, reason: "REVERTED", message: "good" });
    const unknown = event("cashback.mint_failed", { entry_id: randomUUID(), reason: "REVERTED", message: "whose?" });
    expect(await handler().handleBatch([bytes(good), bytes(unknown)])).toBeUndefined();
    expect(await processed(good.id)).toBeUndefined();
    expect((await entry(c.entryId)).status).toBe("pending");
    // one by one: the good one applies, the poison is parked alone
    expect((await handler().handle(bytes(good))).outcome).toBe("applied");
    expect(await handler().handle(bytes(unknown))).toMatchObject({ outcome: "parked", reason: "UNKNOWN_ENTRY" });
    // messages that do not decode are parked without declining the batch
    const [bad, ok] = (await handler().handleBatch([new TextEncoder().encode("{not json"), bytes(minted(c.entryId, "4"))]))!;
    expect(bad).toMatchObject({ outcome: "parked", reason: "MALFORMED_JSON" });
    expect(ok).toMatchObject({ outcome: "applied" });
    expect((await entry(c.entryId)).status).toBe("minted");
  });
});

describe("bad or unknown result events", () => {
  it("parks them in the dead-letter stream with the reason, and keeps going", async () => {
    const js = jetstream(nc);
    await js.publish("cashback.minted", "{not json", { msgID: randomUUID() });
    const v2 = { ...newEvent("cashback.mint_failed", { entry_id: randomUUID(), reason: "X", message: "" }, { correlationId: "c" }), version: 2 };
    await js.publish("cashback.mint_failed", JSON.stringify(v2), { msgID: randomUUID() });
    await js.publish("cashback.minted", JSON.stringify({ ...v2, type: "cashback.minted", version: 1, payload: { entry_id: "x" } }), { msgID: randomUUID() });
    const unknown = await publish("cashback.mint_failed", { entry_id: randomUUID(), reason: "REVERTED", message: "whose?" });
    const { m, p, entryId } = await purchaseWithCashback();
    const refund = expectStatus(await m.client.post(`/v1/purchases/${p.id}/refunds`, { amount_minor: 100 }), 201);
    // a mint result naming a clawback entry
    const wrongKind = await publish("cashback.minted", { entry_id: refund.clawback_entry_id, mint_id: tx("d"), tx_hash: tx("d"), block_number: "1", wallet: WALLETS[1], amount_wei: "1" });
    // and a good one after all of them is still applied
    const good = await publish("cashback.mint_failed", { entry_id: entryId, reason: "REVERTED", message: "after the bad ones" });
    await until("the good event", async () => (await processed(good.id)) === "applied");
    await until("five dead letters", async () => (await deadLetters()).length >= 5);
    const reasons = (await deadLetters()).map((d) => `${d.subject} ${d.reason.split(" ")[0]}`);
    expect(reasons).toEqual([
      "dlq.cashback.minted MALFORMED_JSON",
      "dlq.cashback.mint_failed UNSUPPORTED_VERSION",
      "dlq.cashback.minted INVALID_PAYLOAD",
      "dlq.cashback.mint_failed UNKNOWN_ENTRY",
      "dlq.cashback.minted WRONG_KIND",
    ]);
    expect((await deadLetters())[3]!.body).toContain(unknown.id);
    expect(await processed(unknown.id)).toBeUndefined(); // parked events are not recorded as processed
    expect(await processed(wrongKind.id)).toBeUndefined();
    expect(expectStatus(await m.client.get(`/v1/purchases/${p.id}`), 200).cashback.status).toBe("failed");
    expect((await fetch(`${t.baseUrl}/readyz`)).status).toBe(200);
  });
});
