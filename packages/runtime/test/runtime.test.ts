import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConfigError, createLogger, int, isLoopback, redactUrl, scrubUrls, str, url } from "../src/index.ts";

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, stream };
}

describe("createLogger", () => {
  it("redacts secrets wherever they sit in a log line", () => {
    const { lines, stream } = capture();
    const logger = createLogger("test", "info", stream);
    logger.info({ privateKey: "0xdeadbeef", config: { authToken: "s3cret", password: "pw" }, deep: { a: { apiKey: "k" } } }, "hello");
    const out = lines.join("");
    for (const secret of ["0xdeadbeef", "s3cret", '"pw"', '"k"']) expect(out).not.toContain(secret);
    expect(out).toContain("[redacted]");
    expect(JSON.parse(out)).toMatchObject({ service: "test", msg: "hello" });
  });

  it("cuts keys and passwords out of URLs quoted in errors", () => {
    const { lines, stream } = capture();
    const err = Object.assign(new Error("HTTP request failed. URL: https://mainnet.example.io/v3/abcdef0123456789"), {
      url: "postgresql://app:hunter2@db:5432/app",
    });
    createLogger("test", "info", stream).error({ err }, "boom");
    const out = lines.join("");
    expect(out).not.toContain("abcdef0123456789");
    expect(out).not.toContain("hunter2");
    expect(out).toContain("https://mainnet.example.io/…");
    expect(scrubUrls("see http://127.0.0.1:8545 now")).toBe("see http://127.0.0.1:8545 now");
  });

  it("logs an err that is a string or not an object, scrubbed, without throwing", () => {
    const { lines, stream } = capture();
    const logger = createLogger("test", "info", stream);
    logger.warn({ err: "Error: connect ECONNREFUSED postgresql://app:hunter2@db:5432/app" }, "string");
    logger.warn({ err: 42 }, "number");
    logger.warn({ err: null }, "null");
    const [first, second, third] = lines.map((l) => JSON.parse(l));
    expect(first.err).toBe("Error: connect ECONNREFUSED postgresql://db:5432/…");
    expect(second.err).toBe(42);
    expect(third.err).toBe(null);
  });

  it("keeps fields that only look like secrets by name prefix", () => {
    const { lines, stream } = capture();
    createLogger("test", "info", stream).info({ tokenAddress: "0x5FbDB2315678afecb367f032d93F642f64180aa3" });
    expect(lines.join("")).toContain("0x5FbDB2315678afecb367f032d93F642f64180aa3");
  });
});

describe("logging never throws", () => {
  const frozen = Object.freeze(new Error("frozen failure"));
  const hostileGetter = Object.defineProperty(new Error("has a bad getter"), "detail", {
    enumerable: true,
    get() {
      throw new Error("getter says no");
    },
  });
  const circular: Record<string, unknown> = { message: "circular", code: "E_LOOP" };
  circular.self = circular;
  const proxy = new Proxy(
    {},
    {
      get() {
        throw new Error("trap");
      },
      ownKeys() {
        throw new Error("trap");
      },
    },
  );
  const values: [string, unknown][] = [
    ["a string", "connect ECONNREFUSED http://user:pw@127.0.0.1:8545/v3/key"],
    ["an empty string", ""],
    ["a number", 42],
    ["null", null],
    ["undefined", undefined],
    ["a bigint", 10n ** 30n],
    ["a symbol", Symbol("s")],
    ["a plain object", { reason: "nope", nested: { level: 2 } }],
    ["an array", ["a", 1]],
    ["a frozen Error", frozen],
    ["an Error with a throwing getter", hostileGetter],
    ["an error-like object with a cycle", circular],
    ["a proxy whose traps throw", proxy],
    ["an Error with a 1 MB message", new Error("x".repeat(1_000_000))],
  ];

  it.each(values)("err = %s: one JSON line, nothing thrown", (_name, err) => {
    const { lines, stream } = capture();
    const logger = createLogger("test", "info", stream);
    expect(() => logger.error({ err }, "failed")).not.toThrow();
    expect(() => logger.warn({ err, other: err }, "failed twice")).not.toThrow();
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      const parsed = JSON.parse(line) as { msg: string };
      expect(["failed", "failed twice"]).toContain(parsed.msg);
      expect(line.length).toBeLessThan(30_000);
    }
  });

  it("keeps a string err as scrubbed text, and numbers and null as they are", () => {
    const { lines, stream } = capture();
    const logger = createLogger("test", "info", stream);
    logger.warn({ err: "boom at https://rpc.example.io/v3/abcdef0123456789" }, "a");
    logger.warn({ err: 7 }, "b");
    logger.warn({ err: null }, "c");
    const [a, b, c] = lines.map((l) => JSON.parse(l) as { err: unknown });
    expect(a!.err).toBe("boom at https://rpc.example.io/…");
    expect(b!.err).toBe(7);
    expect(c!.err).toBe(null);
  });

  it("never writes to the caller's error object", () => {
    const { lines, stream } = capture();
    const err = Object.assign(new Error("see http://db.example/secret-path"), { url: "http://db.example/secret-path" });
    createLogger("test", "info", stream).error({ err }, "boom");
    expect(err.url).toBe("http://db.example/secret-path");
    expect(Object.getOwnPropertySymbols(err)).toEqual([]);
    expect(JSON.parse(lines[0]!).err).toMatchObject({ type: "Error", message: "see http://db.example/…", url: "http://db.example/…" });
  });

  it("still writes the line's message when its fields can not be written", () => {
    const { lines, stream } = capture();
    const logger = createLogger("test", "info", stream);
    expect(() => logger.info(Object.freeze({ password: "pw" }), "frozen")).not.toThrow();
    expect(() => logger.info({ detail: proxy }, "proxied")).not.toThrow();
    expect(lines.join("")).not.toContain('"pw"');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(["frozen", "proxied"]);
  });
});

describe("env readers", () => {
  it("falls back to defaults for unset or blank variables", () => {
    expect(str({ A: "  " }, "A", "d")).toBe("d");
    expect(int({}, "N", 7)).toBe(7);
  });

  it("names the variable when a value is malformed or out of range", () => {
    expect(() => int({ N: "1.5" }, "N", 1)).toThrow(/N must be a whole number/);
    expect(() => int({ N: "900" }, "N", 1, { max: 10 })).toThrow(ConfigError);
    expect(() => url({ U: "not a url" }, "U", "http://x")).toThrow(/U must be a URL/);
    expect(() => str({}, "REQUIRED")).toThrow(/REQUIRED is required/);
  });

  it("hides a URL's password and tells loopback hosts apart", () => {
    expect(redactUrl("postgresql://app:hunter2@db:5432/x")).toBe("postgresql://app:***@db:5432/x");
    expect(isLoopback("127.0.0.1")).toBe(true);
    expect(isLoopback("::1")).toBe(true);
    expect(isLoopback("0.0.0.0")).toBe(false);
  });
});
