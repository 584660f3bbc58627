import { describe, expect, it } from "vitest";
import { encodeEventTopics, encodeAbiParameters, keccak256, stringToHex, type Log } from "viem";
import { cashbackTokenAbi } from "@cashback/token";
import { ConfigError } from "@cashback/runtime";
import { clawbackOutcomes, encodeClawback, encodeMints, mintOutcomes } from "../src/chain/token-calls.ts";
import { parseClawbackRequest, refIdFor, sameClawback } from "../src/clawbacks/clawback-request.ts";
import { loadConfig } from "../src/config.ts";
import { isDatabaseUnavailable } from "../src/db.ts";
import { backoffMs } from "../src/mints/dispatcher.ts";
import { mintIdFor, parseMintRequest, sameMint } from "../src/mints/mint-request.ts";
import { nextNonce } from "../src/nonces/nonce-policy.ts";

const token = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

describe("parseMintRequest", () => {
  it("derives the mint id from the key alone and keeps the amount exact", () => {
    const req = parseMintRequest({ idempotencyKey: "ledger:42", to: to.toLowerCase(), amountWei: "123456789012345678901234567890", metadata: { purchase: "p-1" } });
    expect(req.mintId).toBe(keccak256(stringToHex("ledger:42")));
    expect(req.mintId).toBe(mintIdFor("ledger:42"));
    expect(req.to).toBe(to); // checksummed
    expect(req.amountWei).toBe(123456789012345678901234567890n);
  });

  it("accepts amounts up to 2^128 - 1", () => {
    const max = (2n ** 128n - 1n).toString();
    expect(parseMintRequest({ idempotencyKey: "k", to, amountWei: max, metadata: {} }).amountWei).toBe(2n ** 128n - 1n);
  });

  it("rejects leading zeros and too much metadata", () => {
    expect(() => parseMintRequest({ idempotencyKey: "k", to, amountWei: "007", metadata: {} })).toThrow(/amount_wei/);
    const metadata = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"]));
    expect(() => parseMintRequest({ idempotencyKey: "k", to, amountWei: "1", metadata })).toThrow(/metadata/);
    expect(() => parseMintRequest({ idempotencyKey: "k", to, amountWei: "1", metadata: { note: "a\u0000b" } })).toThrow(/NUL/);
  });

  it("treats the same recipient in another letter case as the same mint", () => {
    const req = parseMintRequest({ idempotencyKey: "k", to, amountWei: "5", metadata: {} });
    expect(sameMint({ toAddress: to.toLowerCase(), amountWei: 5n }, req)).toBe(true);
    expect(sameMint({ toAddress: to, amountWei: 6n }, req)).toBe(false);
  });
});

describe("parseClawbackRequest", () => {
  it("derives the refId from the key alone, checksums the holder and keeps the amount exact", () => {
    const req = parseClawbackRequest({ idempotencyKey: "refund:42", from: to.toLowerCase(), amountWei: "340282366920938463463374607431768211455", metadata: {} });
    expect(req.refId).toBe(keccak256(stringToHex("refund:42")));
    expect(req.refId).toBe(refIdFor("refund:42"));
    expect(req.from).toBe(to);
    expect(req.amountWei).toBe(2n ** 128n - 1n);
  });

  it("applies the mint rules to every field", () => {
    const ok = { idempotencyKey: "k", from: to, amountWei: "1", metadata: {} };
    expect(() => parseClawbackRequest({ ...ok, from: "0x0000000000000000000000000000000000000000" })).toThrow(/zero address/);
    expect(() => parseClawbackRequest({ ...ok, amountWei: "0" })).toThrow(/amount_wei/);
    expect(() => parseClawbackRequest({ ...ok, idempotencyKey: "a b" })).toThrow(/idempotency_key/);
    expect(() => parseClawbackRequest({ ...ok, metadata: { a: "\u0000" } })).toThrow(/NUL/);
  });

  it("a replay is the same holder (any letter case) and amount", () => {
    const req = parseClawbackRequest({ idempotencyKey: "k", from: to, amountWei: "5", metadata: {} });
    expect(sameClawback({ fromAddress: to.toLowerCase(), amountWei: 5n }, req)).toBe(true);
    expect(sameClawback({ fromAddress: to, amountWei: 4n }, req)).toBe(false);
  });
});

describe("nextNonce", () => {
  it.each([
    { chain: 5n, open: undefined, next: 5n, why: "no open transactions: the chain decides" },
    { chain: 5n, open: 7n, next: 8n, why: "open transactions keep their nonces" },
    { chain: 9n, open: 7n, next: 9n, why: "the chain moved past them (used elsewhere)" },
    { chain: 0n, open: 0n, next: 1n, why: "first transaction still open" },
  ])("$why", ({ chain, open, next }) => {
    expect(nextNonce(chain, open)).toBe(next);
  });
});

describe("token calls", () => {
  it("uses mint for one entry and mintBatch for several", () => {
    const m = { to, amountWei: 1n, mintId: mintIdFor("a") } as const;
    expect(encodeMints([m]).kind).toBe("mint");
    expect(encodeMints([m, { ...m, mintId: mintIdFor("b") }]).kind).toBe("mint_batch");
    expect(() => encodeMints([])).toThrow();
  });

  it("reads minted and skipped ids from a receipt's logs, ignoring other contracts", () => {
    const log = (eventName: "CashbackMinted" | "MintSkipped", id: string, address = token) =>
      ({
        address,
        topics: encodeEventTopics({ abi: cashbackTokenAbi, eventName, args: { mintId: mintIdFor(id), to } }),
        data: encodeAbiParameters([{ type: "uint256" }], [1n]),
      }) as unknown as Log;
    const { minted, skipped } = mintOutcomes(token, [
      log("CashbackMinted", "a"),
      log("MintSkipped", "b"),
      log("CashbackMinted", "c", "0x0000000000000000000000000000000000000001"),
    ]);
    expect([...minted]).toEqual([mintIdFor("a")]);
    expect([...skipped]).toEqual([mintIdFor("b")]);
  });

  it("encodes one clawback per transaction and reads clawed back refIds from a receipt's logs", () => {
    expect(encodeClawback({ from: to, amountWei: 1n, refId: refIdFor("r") }).kind).toBe("clawback");
    const log = (id: string, address = token) =>
      ({
        address,
        topics: encodeEventTopics({ abi: cashbackTokenAbi, eventName: "CashbackClawedBack", args: { refId: refIdFor(id), from: to } }),
        data: encodeAbiParameters([{ type: "uint256" }], [1n]),
      }) as unknown as Log;
    expect([...clawbackOutcomes(token, [log("r1"), log("r2", "0x0000000000000000000000000000000000000001")])]).toEqual([refIdFor("r1")]);
  });
});

describe("backoff", () => {
  it("grows with failures, stays within its cap and above zero", () => {
    for (let failures = 1; failures < 30; failures++) {
      const ms = backoffMs(failures);
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(Math.min(5_000, 100 * 2 ** failures) + 1);
    }
  });
});

describe("config", () => {
  it("works with no environment at all (local defaults)", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: "127.0.0.1", port: 50051, usingDevKey: true, confirmations: 1 });
  });

  it("refuses to listen beyond loopback without an explicit token", () => {
    expect(() => loadConfig({ ADAPTER_HOST: "0.0.0.0" })).toThrow(ConfigError);
    expect(loadConfig({ ADAPTER_HOST: "0.0.0.0", ADAPTER_AUTH_TOKEN: "s3cret" }).authToken).toBe("s3cret");
  });

  it("names the variable that is malformed", () => {
    expect(() => loadConfig({ ADAPTER_PORT: "http" })).toThrow(/ADAPTER_PORT/);
    expect(() => loadConfig({ ADAPTER_PRIVATE_KEY: "0x12" })).toThrow(/ADAPTER_PRIVATE_KEY/);
    expect(() => loadConfig({ TOKEN_ADDRESS: "0xnope" })).toThrow(/TOKEN_ADDRESS/);
  });
});

describe("isDatabaseUnavailable", () => {
  const failover = { code: "P2039", meta: { driverAdapterError: { cause: { code: "57P01" } } } };
  it.each<[unknown, boolean, string]>([
    [{ code: "P1001" }, true, "can not reach the server"],
    [{ code: "P2024" }, true, "pool timeout"],
    [failover, true, "connection terminated by a failover"],
    [{ code: "P2010", meta: { driverAdapterError: { cause: { code: "40P01" } } } }, true, "deadlock"],
    [{ code: "P2002" }, false, "unique violation: a bug or a conflict, not an outage"],
    [{ code: "P2010", meta: { driverAdapterError: { cause: { code: "22P02" } } } }, false, "bad input syntax"],
    [new Error("boom"), false, "anything else"],
  ])("%j -> %s (%s)", (err, expected, _why) => {
    expect(isDatabaseUnavailable(err)).toBe(expected);
  });
});
