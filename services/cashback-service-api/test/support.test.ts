import { describe, expect, it } from "vitest";
import { canonicalJson } from "../src/support/canonical-json.ts";
import { Lru } from "../src/support/lru.ts";
import { uuidv7 } from "../src/support/uuid.ts";
import { jsonMinor } from "../src/rules/money.ts";

describe("uuidv7", () => {
  it("is a v7 UUID carrying its millisecond, and sorts by time", () => {
    const at = Date.UTC(2026, 10, 28, 12, 0, 0, 123);
    const id = uuidv7(at);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace("-", "").slice(0, 12), 16)).toBe(at);
    const ids = [uuidv7(at + 2), uuidv7(at), uuidv7(at + 1), uuidv7(at + 1_000_000)];
    expect([...ids].sort()).toEqual([ids[1], ids[2], ids[0], ids[3]]);
    expect(new Set(Array.from({ length: 1000 }, () => uuidv7(at))).size).toBe(1000);
  });
});

describe("canonicalJson", () => {
  it("writes the same text whatever the key order, at any depth", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}');
    expect(canonicalJson({ a: 1, skip: undefined })).toBe('{"a":1}');
    expect(canonicalJson(null)).toBe("null");
  });
});

describe("Lru", () => {
  it("forgets the least recently used entry first", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    lru.get("a");
    lru.set("c", 3);
    expect([lru.get("a"), lru.get("b"), lru.get("c"), lru.size]).toEqual([1, undefined, 3, 2]);
  });
});

describe("jsonMinor", () => {
  it("converts exactly or refuses", () => {
    expect(jsonMinor(10n ** 15n)).toBe(1_000_000_000_000_000);
    expect(() => jsonMinor(2n ** 53n)).toThrow(RangeError);
    expect(() => jsonMinor(-1n)).toThrow(RangeError);
  });
});
