import { describe, expect, it } from "vitest";
import { clawbackKey, decodeEvent, encodeEvent, mintKey, newEvent, STREAMS, EVENT_TYPES } from "../src/index.ts";

const accrued = {
  entry_id: "0190b7a2-59e4-7c3a-8a6e-3f2b8c1d4e5f",
  purchase_id: "0190b7a2-59e4-7c3a-8a6e-3f2b8c1d4e60",
  merchant_id: "0190b7a2-59e4-7c3a-8a6e-3f2b8c1d4e61",
  user_id: "0190b7a2-59e4-7c3a-8a6e-3f2b8c1d4e62",
  wallet: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  amount_wei: "2500000000000000000",
};

describe("events", () => {
  it("round-trips an event through the wire format", () => {
    const event = newEvent("cashback.accrued", accrued, { correlationId: "purchase-1" });
    expect(event).toMatchObject({ type: "cashback.accrued", version: 1, correlation_id: "purchase-1", payload: accrued });
    const decoded = decodeEvent(encodeEvent(event));
    expect(decoded).toEqual({ ok: true, event });
  });

  it("refuses to build an event with an invalid payload", () => {
    expect(() => newEvent("cashback.accrued", { ...accrued, amount_wei: "0" }, { correlationId: "x" })).toThrow(/amount_wei/);
    expect(() => newEvent("cashback.accrued", { ...accrued, amount_wei: "1.5" }, { correlationId: "x" })).toThrow(/amount_wei/);
  });

  it.each([
    ["not json", "{", "MALFORMED_JSON"],
    ["not an object", "42", "INVALID_ENVELOPE"],
    ["missing id", JSON.stringify({ type: "cashback.accrued", version: 1, occurred_at: new Date().toISOString(), correlation_id: "c", payload: accrued }), "INVALID_ENVELOPE"],
    ["bad date", JSON.stringify({ id: accrued.entry_id, type: "cashback.accrued", version: 1, occurred_at: "yesterday", correlation_id: "c", payload: accrued }), "INVALID_ENVELOPE"],
    ["unknown type", JSON.stringify({ id: accrued.entry_id, type: "cashback.teleported", version: 1, occurred_at: new Date().toISOString(), correlation_id: "c", payload: {} }), "UNKNOWN_TYPE"],
    ["future version", JSON.stringify({ id: accrued.entry_id, type: "cashback.accrued", version: 2, occurred_at: new Date().toISOString(), correlation_id: "c", payload: accrued }), "UNSUPPORTED_VERSION"],
    ["bad payload", JSON.stringify({ id: accrued.entry_id, type: "cashback.accrued", version: 1, occurred_at: new Date().toISOString(), correlation_id: "c", payload: { ...accrued, wallet: "me" } }), "INVALID_PAYLOAD"],
    ["huge", "x".repeat(70_000), "INVALID_ENVELOPE"],
  ])("decodes %s as %s without throwing", (_name, text, reason) => {
    const result = decodeEvent(Buffer.from(text));
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toBe(reason);
  });

  it("derives idempotency keys from ledger ids only", () => {
    expect(mintKey(accrued.entry_id)).toBe(`cashback:${accrued.entry_id}`);
    expect(clawbackKey(accrued.entry_id)).toBe(`clawback:${accrued.entry_id}`);
  });

  it("routes every event type to exactly one stream", () => {
    for (const type of EVENT_TYPES) {
      const owners = Object.values(STREAMS).filter((s) => (s.subjects as readonly string[]).includes(type));
      expect(owners.map((s) => s.name), type).toHaveLength(1);
    }
  });
});
