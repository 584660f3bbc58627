import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { jsonDepthExceeds } from "../src/http/json-depth.ts";

/** Nesting depth of a parsed value, the slow way. */
function depth(v: unknown): number {
  if (v === null || typeof v !== "object") return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depth));
}

describe("jsonDepthExceeds", () => {
  it("counts nesting without parsing; brackets inside strings (escaped quotes too) do not count", () => {
    const table: [string, number, boolean][] = [
      ["{}", 1, false],
      ["[[]]", 1, true],
      ['{"a":[{"b":1}]}', 3, false],
      ['{"a":[{"b":1}]}', 2, true],
      ['"[[[[[["', 0, false],
      ['{"a":"\\"[[[["}', 1, false],
      ['["\\\\",[[1]]]', 2, true],
      ["1", 0, false],
    ];
    for (const [text, limit, exceeds] of table) expect(jsonDepthExceeds(text, limit), text).toBe(exceeds);
  });

  it("agrees with the parsed depth of any JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 8 }), (value, limit) => {
        const text = JSON.stringify(value);
        expect(jsonDepthExceeds(text, limit)).toBe(depth(JSON.parse(text)) > limit);
      }),
      { numRuns: 2_000 },
    );
  });
});
