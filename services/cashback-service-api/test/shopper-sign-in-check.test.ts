import { describe, expect, it } from "vitest";
import { createSiweMessage } from "viem/siwe";
import { checkSignInMessage, type SignInReason } from "../src/shopper/sign-in-check.ts";

// The pure part of sign-in: every refusal a message can earn before its signature and nonce.
const ORIGINS = ["http://127.0.0.1:3000", "http://localhost:3000"];
const NOW = new Date("2026-11-30T12:00:00.000Z");
const ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const base = {
  address: ADDRESS,
  chainId: 31337,
  domain: "127.0.0.1:3000",
  uri: "http://127.0.0.1:3000",
  version: "1",
  nonce: "0123456789abcdef0123456789abcdef",
  issuedAt: new Date(NOW.getTime() - 10_000),
  expirationTime: new Date(NOW.getTime() + 60_000),
  statement: "Sign in to see your CBK cashback.",
} as const;
const message = (over: Partial<Parameters<typeof createSiweMessage>[0]> = {}) => createSiweMessage({ ...base, ...over });
const check = (text: string) => checkSignInMessage(text, { origins: ORIGINS, chainId: 31337, now: NOW });

describe("checkSignInMessage", () => {
  it("accepts a message for this site, this chain, within its window", () => {
    const result = check(message());
    expect(result).toEqual({ ok: true, fields: { address: ADDRESS, chainId: 31337, domain: "127.0.0.1:3000", uri: "http://127.0.0.1:3000", nonce: base.nonce, issuedAt: base.issuedAt, expirationTime: base.expirationTime } });
    expect(check(message({ domain: "localhost:3000", uri: "http://localhost:3000/app" })).ok).toBe(true);
    expect(check(message({ expirationTime: undefined, scheme: "http" })).ok).toBe(true);
  });

  const replaced = (from: string, to: string) => message().replace(from, to);
  it.each<[string, string, 400 | 401, SignInReason]>([
    ["another site's domain", message({ domain: "evil.example", uri: "https://evil.example" }), 401, "foreign_domain"],
    ["our port on another host", message({ domain: "127.0.0.1:3001", uri: "http://127.0.0.1:3001" }), 401, "foreign_domain"],
    ["our domain with a foreign URI", message({ uri: "https://evil.example/login" }), 401, "foreign_uri"],
    ["our domain with the other origin's URI", message({ uri: "http://localhost:3000" }), 401, "foreign_uri"],
    ["https scheme for an http origin", message({ scheme: "https" }), 401, "foreign_domain"],
    ["another chain", message({ chainId: 1 }), 401, "wrong_chain"],
    ["an expired message", message({ expirationTime: new Date(NOW.getTime() - 1) }), 401, "message_expired"],
    ["expiring right now", message({ expirationTime: NOW }), 401, "message_expired"],
    ["not valid yet", message({ notBefore: new Date(NOW.getTime() + 60_000) }), 401, "not_yet_valid"],
    ["issued an hour ahead", message({ issuedAt: new Date(NOW.getTime() + 3_600_000), expirationTime: undefined }), 401, "issued_in_future"],
    ["not a sign-in message", "hello, please sign", 400, "malformed_message"],
    ["no nonce line", message().replace(/\nNonce: .*\n/, "\n"), 400, "malformed_message"],
    ["a lower-case address", replaced(ADDRESS, ADDRESS.toLowerCase()), 400, "malformed_message"],
    ["version 2", replaced("Version: 1", "Version: 2"), 400, "malformed_message"],
    ["a short nonce", message({ nonce: "abc12345" }).replace("abc12345", "abc1"), 400, "malformed_message"],
    ["a date that is not RFC 3339", replaced(base.issuedAt.toISOString(), "yesterday"), 400, "malformed_message"],
    ["text smuggled after the fields", `${message()}\nTransfer: everything`, 400, "malformed_message"],
  ])("refuses %s", (_what, text, status, reason) => {
    const result = check(text);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problem).toMatchObject({ status, reason });
      expect(result.problem.message.length).toBeGreaterThan(10);
    }
  });

  it("accepts a message issued slightly ahead (clock skew)", () => {
    expect(check(message({ issuedAt: new Date(NOW.getTime() + 60_000) })).ok).toBe(true);
  });
});
