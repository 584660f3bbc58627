import { describe, expect, it } from "vitest";
import { clawbackKey, DLQ_HEADERS, REPLAY_HEADER } from "@cashback/events";
import { accruedEvent, chainIdOf, clawbackRequestedEvent, publishEvent, waitFor } from "@cashback/testing";
import type { Consumer } from "../src/app.ts";
import { fakeAdapter } from "./support/fake-adapter.ts";
import { deadLetters, drained, resultEvents, useFakeAdapterStack } from "./support/stack.ts";

// The consumer's clawback logic (waiting, releases, refusals, revival) against an in-memory
// BlockchainService that keeps the adapter's promises.
const stack = useFakeAdapterStack();

async function clawbackStatus(consumer: Consumer, refundId: string, wanted: string) {
  return waitFor(`clawback ${refundId} ${wanted}`, async () => {
    const row = await consumer.db.clawback.findUnique({ where: { refundId } });
    return row?.status === wanted && row;
  });
}

describe("clawbacks (fake adapter)", () => {
  it("a refund after the mint -> one clawback, reported after the mint with its ref id and transaction", async () => {
    const adapter = fakeAdapter();
    const consumer = await stack.startConsumer(adapter.transport);
    const accrued = accruedEvent({ amount_wei: "1000" });
    const refund = clawbackRequestedEvent(accrued, { amount_wei: "400" });
    await publishEvent(stack.nc, accrued);
    await publishEvent(stack.nc, refund);
    await publishEvent(stack.nc, refund, { msgID: "published-again" });

    const row = await clawbackStatus(consumer, refund.payload.refund_id, "CONFIRMED");
    expect(row).toMatchObject({ entryId: accrued.payload.entry_id, idempotencyKey: clawbackKey(refund.payload.refund_id), refId: chainIdOf(clawbackKey(refund.payload.refund_id)) });
    expect(adapter.balanceOf(accrued.payload.wallet)).toBe(600n);
    await drained(stack.nc);
    expect(adapter.calls.filter((c) => c.rpc === "clawback")).toHaveLength(1);

    const results = await waitFor("both results", async () => {
      const r = await resultEvents(stack.nc, accrued.payload.entry_id);
      return r.length === 2 && r;
    });
    expect(results.map((r) => r.type)).toEqual(["cashback.minted", "cashback.clawed_back"]);
    expect(results[1]).toMatchObject({
      causation_id: refund.id,
      correlation_id: refund.correlation_id,
      payload: { refund_id: refund.payload.refund_id, entry_id: accrued.payload.entry_id, ref_id: row.refId, tx_hash: row.txHash, block_number: String(row.blockNumber), wallet: accrued.payload.wallet, amount_wei: "400" },
    });
  });

  it("a refund whose mint is not confirmed yet waits for it, whichever event comes first", async () => {
    const adapter = fakeAdapter();
    adapter.state.holdMints = true;
    const consumer = await stack.startConsumer(adapter.transport);
    const accrued = accruedEvent({ amount_wei: "1000" });
    const refund = clawbackRequestedEvent(accrued, { amount_wei: "1000" });
    await publishEvent(stack.nc, refund); // before its accrual, even
    await clawbackStatus(consumer, refund.payload.refund_id, "WAITING");
    await publishEvent(stack.nc, accrued);
    await waitFor("the mint SUBMITTED", async () => (await consumer.db.mintRequest.findUnique({ where: { entryId: accrued.payload.entry_id } }))?.status === "SUBMITTED");
    await new Promise((r) => setTimeout(r, 500)); // several reconciliation rounds
    expect((await consumer.db.clawback.findUniqueOrThrow({ where: { refundId: refund.payload.refund_id } })).status).toBe("WAITING");
    expect(adapter.calls.filter((c) => c.rpc === "clawback")).toEqual([]);

    adapter.state.holdMints = false; // mined
    await clawbackStatus(consumer, refund.payload.refund_id, "CONFIRMED");
    expect(adapter.balanceOf(accrued.payload.wallet)).toBe(0n);
  });

  it("a holder who spent the cashback -> clawback failed (INSUFFICIENT_BALANCE), not dead-lettered", async () => {
    const adapter = fakeAdapter();
    const consumer = await stack.startConsumer(adapter.transport);
    const accrued = accruedEvent({ amount_wei: "1000" });
    await publishEvent(stack.nc, accrued);
    await waitFor("the mint", async () => adapter.balanceOf(accrued.payload.wallet) === 1000n);
    adapter.spend(accrued.payload.wallet, 900n);
    const refund = clawbackRequestedEvent(accrued, { amount_wei: "500" });
    await publishEvent(stack.nc, refund);

    const row = await clawbackStatus(consumer, refund.payload.refund_id, "FAILED");
    expect(row).toMatchObject({ lastErrorReason: "INSUFFICIENT_BALANCE" });
    await waitFor("clawback_failed", async () =>
      (await resultEvents(stack.nc, accrued.payload.entry_id)).some((e) => e.type === "cashback.clawback_failed" && (e.payload as { reason: string }).reason === "INSUFFICIENT_BALANCE"),
    );
    expect(adapter.balanceOf(accrued.payload.wallet)).toBe(100n); // nothing taken: all or nothing
    expect(await deadLetters(stack.nc)).toEqual([]);
  });

  it("a mint that fails -> its refund's clawback fails (MINT_FAILED); the mint replayed from the dead-letter stream -> the clawback goes ahead", async () => {
    const adapter = fakeAdapter();
    adapter.state.unavailable = true;
    const consumer = await stack.startConsumer(adapter.transport, { CONSUMER_RETRY_MAX_ATTEMPTS: "2" });
    const accrued = accruedEvent({ amount_wei: "1000" });
    const refund = clawbackRequestedEvent(accrued, { amount_wei: "300" });
    await publishEvent(stack.nc, accrued);
    await publishEvent(stack.nc, refund);

    const failed = await clawbackStatus(consumer, refund.payload.refund_id, "FAILED");
    expect(failed.lastErrorReason).toBe("MINT_FAILED");
    const [letter] = await waitFor("the mint's dead letter", async () => {
      const d = await deadLetters(stack.nc);
      return d.length > 0 && d;
    });
    expect(letter!.headers[DLQ_HEADERS.reason]).toMatch(/^RETRIES_EXHAUSTED/);

    adapter.state.unavailable = false;
    await publishEvent(stack.nc, accrued, { msgID: "replay", headers: { [REPLAY_HEADER]: String(letter!.seq) } });
    await clawbackStatus(consumer, refund.payload.refund_id, "CONFIRMED");
    expect(adapter.balanceOf(accrued.payload.wallet)).toBe(700n);
    await waitFor("all four results, in order", async () => {
      const types = (await resultEvents(stack.nc, accrued.payload.entry_id)).map((r) => r.type);
      return types.join() === "cashback.mint_failed,cashback.clawback_failed,cashback.minted,cashback.clawed_back";
    });
  });
});
