import { describe, expect, it } from "vitest";
import { decodeEvent, encodeEvent } from "@cashback/events";
import { isAddress } from "viem";
import { accruedEvent, chainIdOf, clawbackRequestedEvent, freshWallet, waitFor } from "../src/index.ts";

describe("waitFor", () => {
  it("returns the first value that is neither undefined nor false", async () => {
    let n = 0;
    expect(await waitFor("n to reach 3", () => (++n >= 3 ? n : false), { intervalMs: 1 })).toBe(3);
  });

  it("names what it waited for, and the last error, when it gives up", async () => {
    await expect(waitFor("the impossible", () => { throw new Error("nope"); }, { timeoutMs: 30, intervalMs: 5 })).rejects.toThrow(/timed out after 30 ms waiting for the impossible \(last error: Error: nope\)/);
  });
});

describe("event fixtures", () => {
  it("makes valid events with fresh ids; a refund names its accrual's entry and wallet", () => {
    const accrued = accruedEvent({ amount_wei: "42" });
    const refund = clawbackRequestedEvent(accrued, { amount_wei: "2" });
    for (const e of [accrued, refund]) expect(decodeEvent(encodeEvent(e))).toMatchObject({ ok: true });
    expect(accruedEvent().payload.entry_id).not.toBe(accrued.payload.entry_id);
    expect(refund.payload).toMatchObject({ entry_id: accrued.payload.entry_id, wallet: accrued.payload.wallet, amount_wei: "2" });
    expect(refund.causation_id).toBe(accrued.id);
    expect(isAddress(freshWallet(), { strict: true })).toBe(true);
  });

  it("computes on-chain ids as keccak256 of the key", () => {
    expect(chainIdOf("demo-1")).toBe("0x876694d64580ba7994ab2644dd2b32c425d7a86f64d8259d367e71774f3e994b");
  });
});
