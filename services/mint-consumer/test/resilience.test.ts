import { describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { DLQ_HEADERS, newEvent, STREAMS } from "@cashback/events";
import { ensureStreams } from "@cashback/outbox";
import { createTestDatabase } from "@cashback/db/testing";
import { accruedEvent, publishEvent, waitFor } from "@cashback/testing";
import { DURABLE_NAME, ensureDurable } from "../src/intake/intake.ts";
import { fakeAdapter } from "./support/fake-adapter.ts";
import { deadLetters, resultEvents, useFakeAdapterStack } from "./support/stack.ts";

// Outages and limits around JetStream, with an in-memory adapter.
const stack = useFakeAdapterStack();

describe("resilience", () => {
  it("NATS dies while a mint completes: the result waits in the outbox and is published when NATS is back; intake resumes", async () => {
    const adapter = fakeAdapter();
    adapter.state.unavailable = true;
    const consumer = await stack.startConsumer(adapter.transport, { CONSUMER_RETRY_MAX_ATTEMPTS: "1000" });
    const first = accruedEvent();
    await publishEvent(stack.nc, first);
    await waitFor("a failed attempt", async () => ((await consumer.db.mintRequest.findUnique({ where: { entryId: first.payload.entry_id } }))?.attempts ?? 0) >= 1);

    await stack.nats.kill();
    adapter.state.unavailable = false;
    await waitFor("CONFIRMED while NATS is down", async () => (await consumer.db.mintRequest.findUnique({ where: { entryId: first.payload.entry_id } }))?.status === "CONFIRMED");
    expect(await consumer.db.outboxEvent.count({ where: { publishedAt: null, subject: "cashback.minted" } })).toBe(1);

    await stack.nats.start();
    await waitFor("the minted result after NATS came back", async () => (await resultEvents(stack.nc, first.payload.entry_id)).some((e) => e.type === "cashback.minted"));
    const second = accruedEvent();
    await publishEvent(stack.nc, second);
    await waitFor("the next event minted", async () => (await consumer.db.mintRequest.findUnique({ where: { entryId: second.payload.entry_id } }))?.status === "CONFIRMED");
    await waitFor("its result", async () => (await resultEvents(stack.nc, second.payload.entry_id)).length === 1);
    expect(await consumer.db.outboxEvent.count({ where: { publishedAt: null } })).toBe(0);
  });

  it("at start-up, requests left SUBMITTED are settled with GetTransaction at once, not after the reconciliation interval", async () => {
    const adapter = fakeAdapter();
    adapter.state.holdMints = true; // accepted, not mined
    const db = await createTestDatabase("mint_consumer_restart");
    try {
      const first = await stack.startConsumer(adapter.transport, { CONSUMER_RECONCILE_INTERVAL_MS: "3600000" }, { databaseUrl: db.url });
      const event = accruedEvent();
      await publishEvent(stack.nc, event);
      await waitFor("SUBMITTED", async () => (await first.db.mintRequest.findUnique({ where: { entryId: event.payload.entry_id } }))?.status === "SUBMITTED");
      await first.stop();

      adapter.state.holdMints = false; // mined while the consumer was away
      const asked = adapter.calls.length;
      const second = await stack.startConsumer(adapter.transport, { CONSUMER_RECONCILE_INTERVAL_MS: "3600000" }, { databaseUrl: db.url });
      await waitFor("CONFIRMED", async () => (await second.db.mintRequest.findUnique({ where: { entryId: event.payload.entry_id } }))?.status === "CONFIRMED", { timeoutMs: 20_000 });
      expect(adapter.calls.slice(asked)).toEqual([
        { rpc: "status", key: `cashback:${event.payload.entry_id}` },
        { rpc: "mint", key: `cashback:${event.payload.entry_id}` }, // the fake mines it on that look-up
      ]);
      await second.stop();
    } finally {
      await db.drop();
    }
  });

  it("another event for a recorded entry with a different amount is dead-lettered (CONFLICTING_DUPLICATE); the first one stands", async () => {
    const adapter = fakeAdapter();
    const consumer = await stack.startConsumer(adapter.transport);
    const event = accruedEvent({ amount_wei: "1000" });
    const conflicting = newEvent("cashback.accrued", { ...event.payload, amount_wei: "9999" }, { correlationId: event.correlation_id });
    await publishEvent(stack.nc, event);
    await publishEvent(stack.nc, conflicting);
    const [letter] = await waitFor("the dead letter", async () => {
      const d = await deadLetters(stack.nc);
      return d.length > 0 && d;
    });
    expect(letter!.json).toEqual(conflicting);
    expect(letter!.headers[DLQ_HEADERS.reason]).toBe(`CONFLICTING_DUPLICATE: entry ${event.payload.entry_id} was recorded for ${event.payload.wallet} / 1000 wei by event ${event.id}`);
    await waitFor("the mint", async () => adapter.balanceOf(event.payload.wallet) === 1000n);
    expect(adapter.calls.filter((c) => c.rpc === "mint")).toHaveLength(1);
    expect(await consumer.db.mintRequest.count()).toBe(1);
  });

  it("a message on its last allowed delivery is dead-lettered (MAX_DELIVERIES), not retried into oblivion", async () => {
    const adapter = fakeAdapter();
    const settings = { maxDeliver: 3, ackWaitMs: 30_000, maxAckPending: 1_000 };
    await ensureStreams(stack.nc, [STREAMS.cashback]);
    await ensureDurable(await jetstreamManager(stack.nc), settings);
    const event = accruedEvent();
    await publishEvent(stack.nc, event);
    // Two deliveries that were never acked (a reader that crashed on it, say).
    const durable = await jetstream(stack.nc).consumers.get(STREAMS.cashback.name, DURABLE_NAME);
    for (let i = 0; i < 2; i++) (await durable.next({ expires: 5_000 }))!.nak();

    const consumer = await stack.startConsumer(adapter.transport, { CONSUMER_MAX_DELIVER: "3" });
    const [letter] = await waitFor("the dead letter", async () => {
      const d = await deadLetters(stack.nc);
      return d.length > 0 && d;
    });
    expect(letter!.headers[DLQ_HEADERS.reason]).toBe("MAX_DELIVERIES: delivered 3 times without being processed");
    expect(letter!.headers[DLQ_HEADERS.deliveries]).toBe("3");
    expect(letter!.json).toEqual(event);
    expect(await consumer.db.mintRequest.count()).toBe(0);
    expect(adapter.calls).toEqual([]);
  });
});
