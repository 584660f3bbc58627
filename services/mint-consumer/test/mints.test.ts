import { describe, expect, it } from "vitest";
import { DLQ_HEADERS, mintKey, STREAMS, type Envelope } from "@cashback/events";
import { accruedEvent, chainIdOf, mintedEvents, publishEvent, streamMessages, waitFor } from "@cashback/testing";
import { useConsumerStack } from "./support/stack.ts";

const stack = useConsumerStack();

/** Result events on CASHBACK_RESULTS for one entry. */
async function results(entryId: string) {
  const all = await streamMessages(stack.nc, STREAMS.results.name);
  return all.map((m) => m.json as Envelope).filter((e) => (e.payload as { entry_id?: string }).entry_id === entryId);
}

describe("mints", () => {
  it("one event -> one mint whose recipient and amount match the chain's CashbackMinted event", async () => {
    const consumer = await stack.startConsumer();
    const event = accruedEvent({ amount_wei: "1234500000000000000" });
    await publishEvent(stack.nc, event);

    const mintId = chainIdOf(mintKey(event.payload.entry_id));
    const [minted] = await waitFor("the mint on chain", async () => {
      const logs = await mintedEvents(stack.chain, mintId);
      return logs.length > 0 && logs;
    });
    expect(minted!.to).toBe(event.payload.wallet);
    expect(minted!.amount).toBe(1234500000000000000n);
    expect(await stack.chain.balanceOf(event.payload.wallet as `0x${string}`)).toBe(1234500000000000000n);

    // The result event, published through the outbox, names the same transaction.
    const [result] = await waitFor("the minted result event", async () => {
      const r = await results(event.payload.entry_id);
      return r.length > 0 && r;
    });
    expect(result).toMatchObject({
      type: "cashback.minted",
      causation_id: event.id,
      correlation_id: event.correlation_id,
      payload: {
        entry_id: event.payload.entry_id,
        mint_id: mintId,
        tx_hash: minted!.txHash,
        block_number: minted!.blockNumber.toString(),
        wallet: event.payload.wallet,
        amount_wei: "1234500000000000000",
      },
    });
    const row = await consumer.db.mintRequest.findUniqueOrThrow({ where: { entryId: event.payload.entry_id } });
    expect(row).toMatchObject({ status: "CONFIRMED", txHash: minted!.txHash, mintId });
    expect(await consumer.db.processedEvent.count({ where: { eventId: event.id } })).toBe(1);
    void DLQ_HEADERS;
  });
});
