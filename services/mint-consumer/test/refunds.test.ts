import { describe, expect, it } from "vitest";
import { clawbackKey, mintKey } from "@cashback/events";
import { accruedEvent, chainIdOf, clawbackRequestedEvent, clawedBackEvents, mintedEvents, publishEvent, spendTokens, waitFor } from "@cashback/testing";
import type { Address } from "viem";
import type { Consumer } from "../src/app.ts";
import { deadLetters, drained, resultEvents, useConsumerStack } from "./support/stack.ts";

// Refunds on the real chain, through the real adapter's Clawback.
const stack = useConsumerStack();
const CBK = 10n ** 18n;

async function clawbackStatus(consumer: Consumer, refundId: string, wanted: string) {
  return waitFor(`clawback ${refundId} ${wanted}`, async () => {
    const row = await consumer.db.clawback.findUnique({ where: { refundId } });
    return row?.status === wanted && row;
  });
}

describe("refunds", () => {
  it("a refund -> a clawback on chain, once (the refund delivered twice), reported with the chain's transaction", async () => {
    const consumer = await stack.startConsumer();
    const accrued = accruedEvent({ amount_wei: String(5n * CBK) });
    const refund = clawbackRequestedEvent(accrued, { amount_wei: String(2n * CBK) });
    const wallet = accrued.payload.wallet as Address;
    await publishEvent(stack.nc, accrued);
    await publishEvent(stack.nc, refund);
    await publishEvent(stack.nc, refund, { msgID: `${refund.id}:again` });

    const row = await clawbackStatus(consumer, refund.payload.refund_id, "CONFIRMED");
    const refId = chainIdOf(clawbackKey(refund.payload.refund_id));
    const [clawed] = await clawedBackEvents(stack.chain, refId);
    expect(clawed).toMatchObject({ from: wallet, amount: 2n * CBK, txHash: row.txHash });
    expect(await stack.chain.balanceOf(wallet)).toBe(3n * CBK);

    await drained(stack.nc);
    expect(await clawedBackEvents(stack.chain, refId)).toHaveLength(1);
    const results = await waitFor("minted and clawed back", async () => {
      const r = await resultEvents(stack.nc, accrued.payload.entry_id);
      return r.length === 2 && r;
    });
    expect(results.map((r) => r.type)).toEqual(["cashback.minted", "cashback.clawed_back"]);
    expect(results[1]).toMatchObject({
      causation_id: refund.id,
      payload: { refund_id: refund.payload.refund_id, entry_id: accrued.payload.entry_id, ref_id: refId, tx_hash: clawed!.txHash, block_number: clawed!.blockNumber.toString(), wallet, amount_wei: String(2n * CBK) },
    });
  });

  it("a refund whose mint is not confirmed yet waits for it: minted first, clawed back after", async () => {
    const consumer = await stack.startConsumer({ CONSUMER_RETRY_MAX_ATTEMPTS: "1000" }, { viaProxy: true });
    await stack.adapterProxy.down();
    const accrued = accruedEvent({ amount_wei: String(4n * CBK) });
    const refund = clawbackRequestedEvent(accrued, { amount_wei: String(4n * CBK) });
    await publishEvent(stack.nc, refund); // the refund even arrives first
    await publishEvent(stack.nc, accrued);
    await waitFor("the mint retrying", async () => ((await consumer.db.mintRequest.findUnique({ where: { entryId: accrued.payload.entry_id } }))?.attempts ?? 0) >= 2);
    expect((await consumer.db.clawback.findUniqueOrThrow({ where: { refundId: refund.payload.refund_id } })).status).toBe("WAITING");

    await stack.adapterProxy.up();
    await clawbackStatus(consumer, refund.payload.refund_id, "CONFIRMED");
    const [minted] = await mintedEvents(stack.chain, chainIdOf(mintKey(accrued.payload.entry_id)));
    const [clawed] = await clawedBackEvents(stack.chain, chainIdOf(clawbackKey(refund.payload.refund_id)));
    expect(clawed!.blockNumber).toBeGreaterThan(minted!.blockNumber);
    expect(await stack.chain.balanceOf(accrued.payload.wallet as Address)).toBe(0n);
  });

  it("a shopper who spent the cashback -> clawback failed (INSUFFICIENT_BALANCE): nothing taken, no dead letter", async () => {
    const consumer = await stack.startConsumer();
    const accrued = accruedEvent({ amount_wei: String(CBK) });
    const wallet = accrued.payload.wallet as Address;
    await publishEvent(stack.nc, accrued);
    await waitFor("the mint", async () => (await stack.chain.balanceOf(wallet)) === CBK);
    await spendTokens(stack.chain, wallet, (9n * CBK) / 10n);

    const refund = clawbackRequestedEvent(accrued, { amount_wei: String(CBK / 2n) });
    await publishEvent(stack.nc, refund);
    const row = await clawbackStatus(consumer, refund.payload.refund_id, "FAILED");
    expect(row.lastErrorReason).toBe("INSUFFICIENT_BALANCE");
    await waitFor("clawback_failed", async () =>
      (await resultEvents(stack.nc, accrued.payload.entry_id)).some((e) => e.type === "cashback.clawback_failed" && (e.payload as { reason: string }).reason === "INSUFFICIENT_BALANCE"),
    );
    expect(await clawedBackEvents(stack.chain, chainIdOf(clawbackKey(refund.payload.refund_id)))).toEqual([]);
    expect(await stack.chain.balanceOf(wallet)).toBe(CBK / 10n);
    expect(await deadLetters(stack.nc)).toEqual([]);
  });
});
