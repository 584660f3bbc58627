import { describe, expect, it } from "vitest";
import { encodeEventTopics, encodeAbiParameters, keccak256, stringToHex, type Log } from "viem";
import { cashbackTokenAbi, DEV_ADAPTER_KEY } from "@cashback/token";
import { ConfigError } from "@cashback/runtime";
import { clawbackOutcomes, encodeClawback, encodeMints, mintOutcomes } from "../src/chain/token-calls.ts";
import { parseClawbackRequest, refIdFor, sameClawback } from "../src/clawbacks/clawback-request.ts";
import { devKeyRefused, loadConfig } from "../src/config.ts";
import { isDatabaseUnavailable } from "../src/db.ts";
import { Writable } from "node:stream";
import { createLogger } from "@cashback/runtime";
import { backoffMs, FailureStreak } from "../src/failure-streak.ts";
import { Completions } from "../src/mints/completions.ts";
import { quote } from "../src/validation.ts";
import { mintIdFor, parseMintRequest, sameMint } from "../src/mints/mint-request.ts";
import { nextNonce } from "../src/nonces/nonce-policy.ts";
import { HeldKeys } from "../src/mints/dispatcher.ts";

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
  it("doubles its ceiling with each failure up to the cap, and draws uniformly below it", () => {
    const top = () => 0.999999;
    expect([0, 1, 2, 3, 4, 5, 6, 30].map((f) => backoffMs(f, 100, 5_000, top))).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(backoffMs(3, 100, 5_000, () => 0)).toBe(1);
    expect(backoffMs(3, 100, 5_000, () => 0.5)).toBe(401);
  });
});

describe("Completions", () => {
  it("forgets a key once its last waiter leaves, by timeout or by notification", async () => {
    const completions = new Completions();
    await completions.wait(["a", "b"], 1); // times out
    expect(completions.size).toBe(0);

    const first = completions.wait(["k"], 60_000);
    const second = completions.wait(["k", "other"], 1);
    await second; // timed out: "other" is gone, "k" still has the first waiter
    expect(completions.size).toBe(1);
    completions.notify(["k"]);
    await first;
    expect(completions.size).toBe(0);
  });

  it("hands a waiter the confirmation it was notified with (the keys confirmed together), and nothing on a timeout or a bare wake-up", async () => {
    const completions = new Completions();
    const batch = completions.wait(["b-1", "b-2"], 60_000);
    const bare = completions.wait(["c-1"], 60_000);
    completions.notify(["b-1", "b-2", "b-3"], { txHash: "0xabc", blockNumber: 7n });
    completions.notify(["c-1"]);
    expect(await batch).toEqual({ keys: new Set(["b-1", "b-2", "b-3"]), txHash: "0xabc", blockNumber: 7n });
    expect(await bare).toBeUndefined();
    expect(await completions.wait(["d-1"], 1)).toBeUndefined();
  });

  it("keeps nothing after many timed-out waits (one per mint)", async () => {
    const completions = new Completions();
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => completions.wait([`mint-${i}`], 1)));
    expect(completions.size).toBe(0);
  });
});

describe("errors quote a short prefix of the input", () => {
  it("quotes at most 40 characters, escaped, with the full length", () => {
    expect(quote("abc")).toBe('"abc"');
    expect(quote("a\u0000b")).toBe('"a\\u0000b"');
    const huge = "x".repeat(10_000_000);
    expect(quote(huge)).toBe(`"${"x".repeat(40)}"… (10000000 characters)`);
  });

  it.each(["idempotencyKey", "to", "amountWei"] as const)("a 10 MB %s gives a short INVALID_ARGUMENT message", (field) => {
    const input = { idempotencyKey: "k", to, amountWei: "1", metadata: {}, [field]: "9".repeat(10_000_000) };
    let message = "";
    try {
      parseMintRequest(input);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/10000000 characters/);
    expect(message.length).toBeLessThan(300);
  });
});

describe("FailureStreak", () => {
  function capture() {
    const lines: { level: number; msg: string; failures?: number }[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    });
    return { lines, logger: createLogger("test", "debug", stream) };
  }

  it("logs a run of one kind of failure once, the retries at debug, and the recovery once", () => {
    const { lines, logger } = capture();
    const streak = new FailureStreak(logger, "dispatcher");
    for (let i = 0; i < 100; i++) streak.failed("database", { err: "Can't reach database server" }, "database unavailable");
    streak.failed("chain", {}, "chain unreachable"); // another kind is news
    streak.succeeded();
    streak.succeeded(); // nothing to recover from
    const WARN = 40, DEBUG = 20, INFO = 30;
    expect(lines.filter((l) => l.level === WARN).map((l) => [l.msg, l.failures])).toEqual([
      ["database unavailable", 1],
      ["chain unreachable", 101],
    ]);
    expect(lines.filter((l) => l.level === DEBUG)).toHaveLength(99);
    expect(lines.filter((l) => l.level === INFO).map((l) => [l.msg, l.failures])).toEqual([["dispatcher recovered", 101]]);
    expect(streak.count).toBe(0);
  });
});

describe("config", () => {
  it("works with no environment at all (local defaults)", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: "127.0.0.1", port: 50051, usingDevKey: true, confirmations: 1 });
  });

  it("takes one signer lane per key of ADAPTER_SIGNER_KEYS, the single key by default", () => {
    const a = "0x" + "11".repeat(32);
    const b = "0x" + "22".repeat(32);
    expect(loadConfig({}).signerKeys).toHaveLength(1);
    expect(loadConfig({ ADAPTER_PRIVATE_KEY: a }).signerKeys).toEqual([a]);
    const lanes = loadConfig({ ADAPTER_SIGNER_KEYS: ` ${a}, ${b} ` });
    expect(lanes).toMatchObject({ signerKeys: [a, b], signerKey: a, usingDevKey: false });
    expect(() => loadConfig({ ADAPTER_SIGNER_KEYS: `${a},${a.toUpperCase().replace("0X", "0x")}` })).toThrow(/twice/);
    expect(() => loadConfig({ ADAPTER_SIGNER_KEYS: `${a},0x12` })).toThrow(/ADAPTER_SIGNER_KEYS entry 2/);
    expect(() => loadConfig({ ADAPTER_SIGNER_KEYS: a, ADAPTER_PRIVATE_KEY: b })).toThrow(/not both/);
    expect(loadConfig({}).gasEstimate).toBe("bound");
    expect(() => loadConfig({ MINT_GAS_ESTIMATE: "sometimes" })).toThrow(/MINT_GAS_ESTIMATE/);
  });

  it("names the variable the dev key came from when refusing it off the local chain", () => {
    const dev = DEV_ADAPTER_KEY;
    const other = "0x" + "11".repeat(32);
    expect(devKeyRefused(loadConfig({}))).toMatch(/^ADAPTER_PRIVATE_KEY is unset or holds the public dev key/);
    const lanes = loadConfig({ ADAPTER_SIGNER_KEYS: `${other},${dev}` });
    expect(lanes.usingDevKey).toBe(true);
    expect(devKeyRefused(lanes)).toMatch(/^ADAPTER_SIGNER_KEYS holds the public dev key/);
  });

  it("refuses to listen beyond loopback without an explicit token", () => {
    expect(() => loadConfig({ ADAPTER_HOST: "0.0.0.0" })).toThrow(ConfigError);
    expect(loadConfig({ ADAPTER_HOST: "0.0.0.0", ADAPTER_AUTH_TOKEN: "s3cret" }).authToken).toBe("s3cret");
  });

  it("has safe limits by default, each configurable", () => {
    expect(loadConfig({}).limits).toEqual({
      readMaxBytes: 4 * 1024 * 1024,
      maxHeaderBytes: 16 * 1024,
      maxConnections: 256,
      maxStreamsPerConnection: 100,
      handshakeTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
    });
    expect(loadConfig({}).metadata).toEqual({ maxEntries: 32, maxKeyChars: 64, maxValueChars: 512 });
    expect(loadConfig({ ADAPTER_READ_MAX_BYTES: "65536", ADAPTER_MAX_CONNECTIONS: "10" }).limits).toMatchObject({ readMaxBytes: 65536, maxConnections: 10 });
    expect(() => loadConfig({ ADAPTER_READ_MAX_BYTES: "10" })).toThrow(/ADAPTER_READ_MAX_BYTES/);
    expect(() => loadConfig({ ADAPTER_MAX_CONNECTIONS: "0" })).toThrow(/ADAPTER_MAX_CONNECTIONS/);
    expect(() => loadConfig({ ADAPTER_HANDSHAKE_TIMEOUT_MS: "40000" })).toThrow(/ADAPTER_HANDSHAKE_TIMEOUT_MS must not exceed ADAPTER_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({ METADATA_MAX_VALUE_CHARS: "x" })).toThrow(/METADATA_MAX_VALUE_CHARS/);
  });

  it("names the variable that is malformed", () => {
    expect(() => loadConfig({ ADAPTER_PORT: "http" })).toThrow(/ADAPTER_PORT/);
    expect(() => loadConfig({ ADAPTER_PRIVATE_KEY: "0x12" })).toThrow(/ADAPTER_PRIVATE_KEY/);
    expect(() => loadConfig({ TOKEN_ADDRESS: "0xnope" })).toThrow(/TOKEN_ADDRESS/);
  });
});

describe("isDatabaseUnavailable", () => {
  const failover = { code: "P2039", meta: { driverAdapterError: { cause: { code: "57P01" } } } };
  const unreachable = { code: "P2010", meta: { driverAdapterError: { name: "DriverAdapterError", cause: { kind: "DatabaseNotReachable", host: "127.0.0.1", port: 5 } } } };
  const pgLost = (message: string) => new Error(message);
  it.each<[unknown, boolean, string]>([
    [{ code: "P1001" }, true, "can not reach the server"],
    [{ code: "P2024" }, true, "pool timeout"],
    [failover, true, "connection terminated by a failover"],
    [unreachable, true, "a raw query while the server is down: a driver adapter kind, no SQLSTATE"],
    [{ code: "P2010", meta: { driverAdapterError: { cause: { kind: "ConnectionClosed" } } } }, true, "connection reset"],
    [pgLost("Client has encountered a connection error and is not queryable"), true, "pg, no SQLSTATE: a transaction's client after the server went away"],
    [pgLost("Connection terminated unexpectedly"), true, "pg, no SQLSTATE: the query running when it went away"],
    [{ code: "57P03", message: "the database system is starting up" }, true, "raw pg error: starting up"],
    [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5"), { code: "ECONNREFUSED" }), true, "raw socket error"],
    [new Error("migration failed", { cause: Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }) }), true, "a socket error as the cause"],
    [{ code: "P2010", meta: { driverAdapterError: { cause: { code: "40P01" } } } }, true, "deadlock"],
    [{ code: "P2002" }, false, "unique violation: a bug or a conflict, not an outage"],
    [{ code: "P2010", meta: { driverAdapterError: { cause: { kind: "UniqueConstraintViolation", originalCode: "23505" } } } }, false, "a mapped constraint error"],
    [{ code: "P2010", meta: { driverAdapterError: { cause: { code: "22P02" } } } }, false, "bad input syntax"],
    [pgLost("Connection terminated unexpectedly, said the user"), false, "only pg's exact messages"],
    [new TypeError("Connection terminated unexpectedly"), false, "a TypeError is a bug"],
    [new Error("boom"), false, "anything else"],
    ["Connection terminated unexpectedly", false, "a string is not an error"],
    [null, false, "null"],
  ])("%j -> %s (%s)", (err, expected, _why) => {
    expect(isDatabaseUnavailable(err)).toBe(expected);
  });
});

describe("HeldKeys (shared by the signer lanes)", () => {
  it("holds a round's keys from its broadcast; a commit releases them, a failed one keeps them until the chain is asked", () => {
    const held = new HeldKeys();
    held.sending(["a", "b"]);
    expect([...held.keys]).toEqual(["a", "b"]); // no other lane claims them while in flight
    expect(held.waiting).toBe(false); // in flight only: nothing to ask the chain about
    held.sent(["a"], true);
    expect([...held.keys]).toEqual(["b"]);
    held.sent(["b"], false); // commit failed after the broadcast: in doubt
    expect([...held.keys]).toEqual(["b"]);
    expect(held.waiting).toBe(true);
  });
});
