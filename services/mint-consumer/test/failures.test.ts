import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { DLQ_HEADERS, mintKey, newEvent, REPLAY_HEADER, STREAMS } from "@cashback/events";
import { ensureStreams } from "@cashback/outbox";
import { accruedEvent, chainIdOf, mintedEvents, publishEvent, publishRaw, repoRoot, setMinterRole, waitFor } from "@cashback/testing";
import { listDeadLetters, replayAllDeadLetters } from "../src/dlq/dead-letter-queue.ts";
import { DURABLE_NAME } from "../src/intake/intake.ts";
import { deadLetters, drained, resultEvents, useConsumerStack } from "./support/stack.ts";

const stack = useConsumerStack();
const mintIdOf = (entryId: string) => chainIdOf(mintKey(entryId));

/** `npm run dlq -- <args>` as an operator runs it (the same script, as a process). */
async function dlq(...args: string[]) {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", path.join(repoRoot, "services/mint-consumer/src/dlq/cli.ts"), ...args], {
    cwd: repoRoot,
    env: { ...process.env, NATS_URL: stack.nats.url },
  });
  return stdout;
}

async function status(consumer: Awaited<ReturnType<typeof stack.startConsumer>>, entryId: string, wanted: string) {
  return waitFor(`${entryId} ${wanted}`, async () => {
    const row = await consumer.db.mintRequest.findUnique({ where: { entryId } });
    return row?.status === wanted && row;
  });
}

describe("failures, dead letters and replays", () => {
  it("a non-retryable failure (the contract refuses the mint) -> mint failed + dead letter, nothing minted", async () => {
    const consumer = await stack.startConsumer();
    await setMinterRole(stack.chain, false);
    const event = accruedEvent();
    try {
      await publishEvent(stack.nc, event, { headers: { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01` } });
      const row = await status(consumer, event.payload.entry_id, "FAILED");
      expect(row).toMatchObject({ lastErrorReason: "REVERTED", attempts: 0 });
      expect(row.lastError).toMatch(/AccessControlUnauthorizedAccount/);
    } finally {
      await setMinterRole(stack.chain, true);
    }

    const [failed] = await waitFor("mint_failed", async () => {
      const r = await resultEvents(stack.nc, event.payload.entry_id);
      return r.length > 0 && r;
    });
    expect(failed).toMatchObject({ type: "cashback.mint_failed", causation_id: event.id, payload: { entry_id: event.payload.entry_id, reason: "REVERTED" } });

    const [letter] = await waitFor("the dead letter", async () => {
      const d = await deadLetters(stack.nc);
      return d.length > 0 && d;
    });
    expect(letter!.subject).toBe("dlq.cashback.accrued");
    expect(letter!.json).toEqual(event); // the original event, as it came
    expect(letter!.headers[DLQ_HEADERS.reason]).toMatch(/^REVERTED: .*AccessControlUnauthorizedAccount/);
    expect(letter!.headers).toMatchObject({
      [DLQ_HEADERS.subject]: "cashback.accrued",
      [DLQ_HEADERS.stream]: "CASHBACK",
      [DLQ_HEADERS.sequence]: "1",
      [DLQ_HEADERS.deliveries]: "1",
      traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-01`,
    });
    expect(await mintedEvents(stack.chain, mintIdOf(event.payload.entry_id))).toEqual([]);
    expect(await consumer.metrics.deadLetters.get()).toMatchObject({ values: [{ labels: { reason: "REVERTED" }, value: 1 }] });
  });

  it("an entry the adapter refuses (amount >= 2^128) fails alone; the others sharing its batch are minted", async () => {
    const good = [accruedEvent(), accruedEvent()];
    const bad = accruedEvent({ amount_wei: (2n ** 128n).toString() });
    await ensureStreams(stack.nc, [STREAMS.cashback]);
    for (const e of [good[0]!, bad, good[1]!]) await publishEvent(stack.nc, e);
    const consumer = await stack.startConsumer();

    const row = await status(consumer, bad.payload.entry_id, "FAILED");
    expect(row.lastErrorReason).toBe("INVALID_ARGUMENT");
    for (const e of good) {
      await status(consumer, e.payload.entry_id, "CONFIRMED");
      expect(await mintedEvents(stack.chain, mintIdOf(e.payload.entry_id))).toHaveLength(1);
    }
    await waitFor("the dead letter", async () => (await deadLetters(stack.nc)).some((d) => (d.json as { id?: string })?.id === bad.id));
    // They went out together, the adapter refused the batch, and it was split into single calls.
    const calls = (await consumer.metrics.adapterCalls.get()).values.map((v) => `${v.labels.rpc}/${v.labels.outcome}=${v.value}`).sort();
    expect(calls).toEqual(["MintBatch/REFUSED=1", "MintToken/CONFIRMED=2", "MintToken/REFUSED=1"]);
  });

  it("messages that are not valid events are dead-lettered with their reason and acked, and the consumer carries on", async () => {
    const consumer = await stack.startConsumer();
    await publishRaw(stack.nc, "cashback.accrued", "{not json");
    const invalid = accruedEvent();
    await publishRaw(stack.nc, "cashback.accrued", JSON.stringify({ ...invalid, payload: { ...invalid.payload, amount_wei: "-5" } }));
    await publishRaw(stack.nc, "cashback.accrued", JSON.stringify({ ...accruedEvent(), version: 2 }));
    const result = newEvent("cashback.mint_failed", { entry_id: invalid.payload.entry_id, reason: "X", message: "" }, { correlationId: "c" });
    await publishRaw(stack.nc, "cashback.accrued", JSON.stringify(result));
    const fine = accruedEvent();
    await publishEvent(stack.nc, fine);

    await status(consumer, fine.payload.entry_id, "CONFIRMED");
    await drained(stack.nc);
    const letters = await waitFor("4 dead letters", async () => {
      const d = await deadLetters(stack.nc);
      return d.length === 4 && d;
    });
    expect(letters.map((d) => d.headers[DLQ_HEADERS.reason]!.split(":")[0])).toEqual(["MALFORMED_JSON", "INVALID_PAYLOAD", "UNSUPPORTED_VERSION", "UNEXPECTED_TYPE"]);
    expect(letters.map((d) => d.headers[DLQ_HEADERS.sequence])).toEqual(["1", "2", "3", "4"]);
    expect(letters[0]!.text).toBe("{not json"); // body kept byte for byte
    const info = await (await jetstreamManager(stack.nc)).consumers.info(STREAMS.cashback.name, DURABLE_NAME);
    expect(info.num_redelivered).toBe(0);
    expect(await consumer.db.mintRequest.count()).toBe(1);
  });

  it("retries exhausted while the adapter is unreachable -> failed + dead letter; replayed from the dead-letter stream it mints once", async () => {
    const consumer = await stack.startConsumer({ CONSUMER_RETRY_MAX_ATTEMPTS: "3" }, { viaProxy: true });
    await stack.adapterProxy.down();
    const event = accruedEvent();
    await publishEvent(stack.nc, event);
    const failed = await status(consumer, event.payload.entry_id, "FAILED");
    expect(failed).toMatchObject({ lastErrorReason: "RETRIES_EXHAUSTED", attempts: 3, adapterMayKnow: false });
    const [letter] = await waitFor("the dead letter", async () => {
      const d = await deadLetters(stack.nc);
      return d.length > 0 && d;
    });
    expect(letter!.headers[DLQ_HEADERS.reason]).toMatch(/^RETRIES_EXHAUSTED: gave up after 3 attempts .* last error ADAPTER_UNREACHABLE/);
    expect(await dlq("list")).toMatch(new RegExp(`^${letter!.seq}\\s.*cashback\\.accrued\\s+${event.payload.entry_id}\\s+${event.id}\\s+1\\s+RETRIES_EXHAUSTED`, "m"));

    await stack.adapterProxy.up();
    expect(await dlq("replay", String(letter!.seq))).toMatch(new RegExp(`^replayed ${letter!.seq} -> cashback.accrued`));
    const minted = await status(consumer, event.payload.entry_id, "CONFIRMED");
    expect(minted.attempts).toBe(0); // a replay starts a new life
    expect(await mintedEvents(stack.chain, mintIdOf(event.payload.entry_id))).toHaveLength(1);

    // The dead letter is gone; replaying all, or the same replay delivered again, changes nothing.
    expect(await listDeadLetters(stack.nc)).toEqual([]);
    expect(await replayAllDeadLetters(stack.nc)).toEqual({ replayed: [], failed: [] });
    await publishEvent(stack.nc, event, { msgID: "duplicate-replay", headers: { [REPLAY_HEADER]: String(letter!.seq) } });
    await drained(stack.nc);
    expect(await mintedEvents(stack.chain, mintIdOf(event.payload.entry_id))).toHaveLength(1);
    await waitFor("minted after mint_failed", async () => {
      const types = (await resultEvents(stack.nc, event.payload.entry_id)).map((r) => r.type);
      return types.join() === "cashback.mint_failed,cashback.minted";
    });
    expect(await consumer.db.processedEvent.count({ where: { eventId: event.id } })).toBe(2); // the original and one replay
  });
});
