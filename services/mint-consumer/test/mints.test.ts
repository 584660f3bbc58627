import path from "node:path";
import { describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createTestDatabase, diffSchemaWithDatabase } from "@cashback/db/testing";
import { newEvent, mintKey, STREAMS } from "@cashback/events";
import { ensureStreams } from "@cashback/outbox";
import { accruedEvent, chainIdOf, mintedEvents, publishEvent, startConsumerProcess, waitFor } from "@cashback/testing";
import { DURABLE_NAME, ensureDurable } from "../src/intake/intake.ts";
import { drained, FAST_ENV, resultEvents, useConsumerStack } from "./support/stack.ts";

const stack = useConsumerStack();
const mintIdOf = (entryId: string) => chainIdOf(mintKey(entryId));

/** The mint of an entry on chain, once there is one (read from the node, not from our records). */
async function mintOnChain(entryId: string) {
  const [minted] = await waitFor(`the mint of ${entryId} on chain`, async () => {
    const logs = await mintedEvents(stack.chain, mintIdOf(entryId));
    return logs.length > 0 && logs;
  });
  return minted!;
}

describe("mints", () => {
  it("one event -> one mint whose recipient and amount match the chain's CashbackMinted event, and a minted result event", async () => {
    const consumer = await stack.startConsumer();
    const event = accruedEvent({ amount_wei: "1234500000000000000" });
    await publishEvent(stack.nc, event);

    const minted = await mintOnChain(event.payload.entry_id);
    expect(minted.to).toBe(event.payload.wallet);
    expect(minted.amount).toBe(1234500000000000000n);
    expect(await stack.chain.balanceOf(event.payload.wallet as `0x${string}`)).toBe(1234500000000000000n);

    // The result event, published through the outbox, names the same transaction.
    const [result] = await waitFor("the minted result event", async () => {
      const r = await resultEvents(stack.nc, event.payload.entry_id);
      return r.length > 0 && r;
    });
    expect(result).toMatchObject({
      type: "cashback.minted",
      causation_id: event.id,
      correlation_id: event.correlation_id,
      payload: {
        entry_id: event.payload.entry_id,
        mint_id: mintIdOf(event.payload.entry_id),
        tx_hash: minted.txHash,
        block_number: minted.blockNumber.toString(),
        wallet: event.payload.wallet,
        amount_wei: "1234500000000000000",
      },
    });
    const row = await consumer.db.mintRequest.findUniqueOrThrow({ where: { entryId: event.payload.entry_id } });
    expect(row).toMatchObject({ status: "CONFIRMED", attempts: 0, txHash: minted.txHash, mintId: mintIdOf(event.payload.entry_id), idempotencyKey: `cashback:${event.payload.entry_id}` });
    expect(await consumer.db.processedEvent.count({ where: { eventId: event.id } })).toBe(1);
  });

  it("the same event delivered 5 times and published twice under different message ids (and once more as a new event for the entry) -> one mint", async () => {
    const event = accruedEvent();
    // The durable consumer exists, the event is published twice past JetStream's de-duplication
    // (another message id), and some other reader took both messages 4 times without acking.
    await ensureStreams(stack.nc, [STREAMS.cashback]);
    await ensureDurable(await jetstreamManager(stack.nc), { maxDeliver: 20, ackWaitMs: 30_000, maxAckPending: 1_000 });
    await publishEvent(stack.nc, event);
    await publishEvent(stack.nc, event, { msgID: `${event.id}:published-again` });
    const durable = await jetstream(stack.nc).consumers.get(STREAMS.cashback.name, DURABLE_NAME);
    for (let round = 1; round <= 4; round++) {
      const batch = await durable.fetch({ max_messages: 2, expires: 5_000 });
      let taken = 0;
      for await (const m of batch) {
        expect(m.info.deliveryCount).toBe(round);
        m.nak();
        if (++taken === 2) break;
      }
      expect(taken).toBe(2);
    }
    // The API re-publishing the entry under a new event id (same entry, wallet and amount).
    const again = newEvent("cashback.accrued", event.payload, { correlationId: event.correlation_id });

    const consumer = await stack.startConsumer();
    await publishEvent(stack.nc, again);
    const minted = await mintOnChain(event.payload.entry_id);
    await drained(stack.nc);
    await waitFor("the result event", async () => (await resultEvents(stack.nc, event.payload.entry_id)).length > 0);

    expect(await mintedEvents(stack.chain, mintIdOf(event.payload.entry_id))).toHaveLength(1);
    expect(await stack.chain.balanceOf(event.payload.wallet as `0x${string}`)).toBe(BigInt(event.payload.amount_wei));
    expect(minted.amount).toBe(BigInt(event.payload.amount_wei));
    const results = await resultEvents(stack.nc, event.payload.entry_id);
    expect(results.map((r) => r.type)).toEqual(["cashback.minted"]);
    // Both messages reached the consumer on their 5th delivery; each event id was processed once.
    expect(await consumer.metrics.redeliveries.get()).toMatchObject({ values: [{ value: 2 }] });
    expect((await consumer.db.processedEvent.findMany()).map((p) => p.eventId).sort()).toEqual([event.id, again.id].sort());
    expect(await consumer.db.mintRequest.count()).toBe(1);
    expect((await (await jetstreamManager(stack.nc)).streams.info(STREAMS.cashback.name)).state.messages).toBe(3);
  });

  it("the adapter down for a while -> retries with backoff, then one mint", async () => {
    const consumer = await stack.startConsumer({ CONSUMER_RETRY_MAX_ATTEMPTS: "1000" });
    await stack.adapter.kill();
    const event = accruedEvent();
    await publishEvent(stack.nc, event);

    const retrying = await waitFor("several failed attempts", async () => {
      const row = await consumer.db.mintRequest.findUnique({ where: { entryId: event.payload.entry_id } });
      return row !== null && row.attempts >= 3 && row;
    });
    expect(retrying).toMatchObject({ status: "PENDING", lastErrorReason: "ADAPTER_UNREACHABLE", adapterMayKnow: false });
    expect(retrying.nextAttemptAt.getTime()).toBeGreaterThanOrEqual(retrying.updatedAt.getTime());

    await stack.adapter.start();
    const minted = await mintOnChain(event.payload.entry_id);
    expect(minted).toMatchObject({ to: event.payload.wallet, amount: BigInt(event.payload.amount_wei) });
    const row = await waitFor("CONFIRMED", async () => {
      const r = await consumer.db.mintRequest.findUniqueOrThrow({ where: { entryId: event.payload.entry_id } });
      return r.status === "CONFIRMED" && r;
    });
    expect(row.attempts).toBeGreaterThanOrEqual(3);
    expect(await mintedEvents(stack.chain, mintIdOf(event.payload.entry_id))).toHaveLength(1);
    await waitFor("the minted result", async () => (await resultEvents(stack.nc, event.payload.entry_id)).some((e) => e.type === "cashback.minted"));
  });

  it("a backlog goes out in MintBatch calls, and every entry is minted once with its amount", async () => {
    const events = Array.from({ length: 60 }, (_, i) => accruedEvent({ amount_wei: String(10n ** 15n + BigInt(i)) }));
    await ensureStreams(stack.nc, [STREAMS.cashback]);
    await Promise.all(events.map((e) => publishEvent(stack.nc, e)));
    const consumer = await stack.startConsumer({ CONSUMER_CONCURRENCY: "2" });

    await waitFor("all 60 CONFIRMED", async () => (await consumer.db.mintRequest.count({ where: { status: "CONFIRMED" } })) === 60);
    for (const e of events) {
      const logs = await mintedEvents(stack.chain, mintIdOf(e.payload.entry_id));
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatchObject({ to: e.payload.wallet, amount: BigInt(e.payload.amount_wei) });
    }
    const sizes = await consumer.metrics.batchSize.get();
    const count = sizes.values.find((v) => v.metricName === "consumer_mint_batch_size_count")!.value;
    const sum = sizes.values.find((v) => v.metricName === "consumer_mint_batch_size_sum")!.value;
    expect(sum).toBe(60);
    expect(count).toBeLessThan(60); // batched: fewer calls than mints
    await waitFor("60 minted results", async () => (await resultEvents(stack.nc)).filter((e) => e.type === "cashback.minted").length === 60);
  });

  it("a consumer killed mid-work (SIGKILL) and started again loses nothing and mints nothing twice", async () => {
    const events = Array.from({ length: 20 }, () => accruedEvent());
    const ours = new Set(events.map((e) => mintIdOf(e.payload.entry_id)));
    const mintsOnChain = async () => (await mintedEvents(stack.chain)).filter((m) => ours.has(m.mintId));
    await ensureStreams(stack.nc, [STREAMS.cashback]);
    await Promise.all(events.map((e) => publishEvent(stack.nc, e)));
    const db = await createTestDatabase("mint_consumer_crash");
    // One mint per call, one call at a time: slow enough to be killed in the middle.
    const proc = await startConsumerProcess({
      natsUrl: stack.nats.url,
      adapterUrl: stack.adapter.url,
      adapterToken: stack.adapter.token,
      databaseUrl: db.url,
      env: { ...FAST_ENV, CONSUMER_MINT_BATCH_MAX: "1", CONSUMER_CONCURRENCY: "1", CONSUMER_ADAPTER_TIMEOUT_MS: "2000", LOG_LEVEL: "warn" },
    });
    try {
      await waitFor("a few mints", async () => (await mintsOnChain()).length >= 3, { intervalMs: 20 });
      await proc.kill();
      await proc.start();
      await waitFor("all 20 mints", async () => (await mintsOnChain()).length >= 20, { timeoutMs: 90_000 });
      await drained(stack.nc);
      const minted = await mintsOnChain();
      expect(minted).toHaveLength(20);
      expect(new Set(minted.map((m) => m.mintId)).size).toBe(20);
      await waitFor("20 minted results", async () => new Set((await resultEvents(stack.nc)).filter((e) => e.type === "cashback.minted").map((e) => (e.payload as { entry_id: string }).entry_id)).size === 20);
    } finally {
      await proc.stop();
      await db.drop();
    }
  });

  it("answers health, readiness and metrics probes; the migrated database matches the Prisma model", async () => {
    const consumer = await stack.startConsumer({}, { viaProxy: true });
    const base = `http://127.0.0.1:${consumer.port}`;
    expect(await (await fetch(`${base}/healthz`)).text()).toBe("ok\n");
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of ["consumer_events_total", "consumer_redeliveries_total", "consumer_dead_letters_total", "consumer_mint_latency_seconds", "consumer_mint_batch_size", "consumer_requests", "consumer_outbox_unpublished"]) {
      expect(metrics).toContain(name);
    }
    expect((await fetch(`${base}/nope`)).status).toBe(404);

    await stack.adapterProxy.down();
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe("not ready: adapter\n");

    const schemaPath = path.resolve(import.meta.dirname, "../prisma/schema.prisma");
    expect(await diffSchemaWithDatabase({ schemaPath, connectionString: consumer.config.databaseUrl })).toEqual([]);
  });
});
