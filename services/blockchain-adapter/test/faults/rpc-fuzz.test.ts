// fast-check throws malformed and hostile calls at every RPC of the adapter over the Connect
// protocol (JSON and binary, HTTP/1.1): wrong types, missing and unknown fields, odd unicode and
// NUL, huge and deeply nested bodies, bad headers and tokens. No answer may be a server error
// (5xx, INTERNAL, UNKNOWN), a refused call must record nothing, and a normal mint must succeed after.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import pg from "pg";
import { TransactionStatus } from "@cashback/proto/blockchain/v1";
import { startTestChain, type TestChain } from "@cashback/testing";
import { startTestAdapter, TEST_TOKEN } from "../support/adapter.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 1_200);
const METHODS = ["MintToken", "MintBatch", "Clawback", "GetBalance", "GetTransaction"] as const;
const HOLDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

let chain: TestChain;
let running: Awaited<ReturnType<typeof startTestAdapter>>;
let pool: pg.Pool;

beforeAll(async () => {
  chain = await startTestChain();
  running = await startTestAdapter(chain);
  pool = new pg.Pool({ connectionString: running.databaseUrl, max: 2 });
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await running?.stop();
  await running?.dropDatabase();
  await chain?.close();
});

const weird = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "\u0000", "\ud800", "\u202e", "0x", "0X70997970C51812dc3A010C7d01b50e0d17dc79C8", `${HOLDER}\u0000`, HOLDER.toLowerCase(), "-1", "1e18", "0x10", "115792089237316195423570985008687907853269984665640564039457584007913129639936", " 1", "1.5"),
  fc.string({ minLength: 300, maxLength: 5_000 }),
);
const value = fc.oneof(weird, fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(HOLDER, "1", "1000", 1, -1, 1e308, null, true, [], {}));
const mint = fc.record({ idempotencyKey: value, to: value, amountWei: value, metadata: fc.oneof(value, fc.dictionary(weird, weird, { maxKeys: 40 })) }, { requiredKeys: [] });

function body(method: (typeof METHODS)[number]) {
  switch (method) {
    case "MintToken":
      return mint;
    case "MintBatch":
      return fc.record({ mints: fc.oneof(fc.array(mint, { maxLength: 5 }), value) }, { requiredKeys: [] });
    case "Clawback":
      return fc.record({ idempotencyKey: value, from: value, amountWei: value, metadata: value }, { requiredKeys: [] });
    case "GetBalance":
      return fc.record({ address: value }, { requiredKeys: [] });
    case "GetTransaction":
      return fc.record({ idempotencyKey: value, txHash: value }, { requiredKeys: [] });
  }
}

const call = fc.constantFrom(...METHODS).chain((method) =>
  fc.record({
    method: fc.constant(method),
    payload: fc.oneof(
      { arbitrary: body(method).map((b) => JSON.stringify(b)), weight: 6 },
      { arbitrary: fc.constantFrom("{", "[]", "null", "\u0000", "{\"mints\":", "", "{\"to\":\"\u0000\"}"), weight: 1 },
      { arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => `${'{"metadata":'.repeat(n)}{}${"}".repeat(n)}`), weight: 1 },
      { arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 1 },
    ),
    contentType: fc.oneof({ arbitrary: fc.constant("application/json"), weight: 5 }, { arbitrary: fc.constantFrom("application/proto", "text/plain", "application/json; charset=latin1", ""), weight: 1 }),
    token: fc.oneof({ arbitrary: fc.constant(TEST_TOKEN), weight: 6 }, { arbitrary: fc.constantFrom("", "wrong", `${TEST_TOKEN} `, "x".repeat(5_000)), weight: 1 }),
    extra: fc.dictionary(fc.constantFrom("connect-timeout-ms", "connect-protocol-version", "traceparent", "content-encoding", "grpc-timeout"), weird.map((w) => w.replace(/[^\x20-\x7e]/g, "?")), { maxKeys: 2 }),
  }),
);

async function rows(): Promise<string> {
  const { rows } = await pool.query("SELECT (SELECT count(*) FROM mints) AS mints, (SELECT count(*) FROM clawbacks) AS clawbacks");
  return JSON.stringify(rows[0]);
}

describe("hostile input at every RPC", () => {
  it(`answers ${RUNS} malformed and hostile calls without a server error or a partial record, then a normal mint`, async () => {
    const codes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(call, async (c) => {
        const before = await rows();
        const res = await fetch(`${running.baseUrl}/cashback.blockchain.v1.BlockchainService/${c.method}`, {
          method: "POST",
          headers: { "content-type": c.contentType, authorization: `Bearer ${c.token}`, ...c.extra },
          body: c.payload,
        });
        const text = await res.text();
        let code = res.ok ? "ok" : `http_${res.status}`;
        try {
          code = (JSON.parse(text) as { code?: string }).code ?? code;
        } catch {
          /* not JSON */
        }
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (res.status >= 500 || code === "internal" || code === "unknown") throw new Error(`${c.method} answered ${res.status} ${text.slice(0, 300)}`);
        if (!res.ok) expect(await rows(), `${c.method} refused (${code}) but recorded`).toBe(before);
      }),
      { numRuns: RUNS, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined, endOnFailure: true },
    );
    console.log(`hostile RPC fuzz: ${RUNS} calls, answers ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(codes.get("invalid_argument")).toBeGreaterThan(0);

    const res = await running.client.mintToken({ idempotencyKey: `after-fuzz-${Date.now()}`, to: HOLDER, amountWei: "1" });
    expect(res.status).toBe(TransactionStatus.CONFIRMED);
  }, 300_000);
});
