import { getAddress, type Address } from "viem";
import { createSiweMessage, parseSiweMessage, validateSiweMessage } from "viem/siwe";

/**
 * Everything about a Sign-In with Ethereum (EIP-4361) message that can be decided without I/O:
 * its form, that it was made for this site (domain, URI, scheme), for our chain, and that it is
 * within its own validity window. The signature (verifySiweMessage) and the nonce (single use,
 * server-side) are checked after this by the sign-in route. Pure, table-tested.
 */
export type SignInReason =
  | "malformed_message"
  | "foreign_domain"
  | "foreign_uri"
  | "wrong_chain"
  | "message_expired"
  | "not_yet_valid"
  | "issued_in_future"
  | "bad_signature"
  | "nonce_unknown"
  | "nonce_used"
  | "nonce_expired";

export interface SignInProblem {
  /** 400 when the message is not a well-formed EIP-4361 message, 401 when it is refused. */
  status: 400 | 401;
  reason: SignInReason;
  message: string;
}

export interface SignInFields {
  address: Address;
  chainId: number;
  domain: string;
  uri: string;
  nonce: string;
  issuedAt: Date | undefined;
  expirationTime: Date | undefined;
}

export interface SignInExpectations {
  /** Origins the page is served from: the message's URI must be on one, its domain that origin's host. */
  origins: readonly string[];
  chainId: number;
  now: Date;
}

/** Clocks differ: a message issued this far in the future is still accepted. */
export const CLOCK_SKEW_MS = 5 * 60_000;

const REQUIRED = ["address", "chainId", "domain", "nonce", "uri", "version", "issuedAt"] as const;

export function checkSignInMessage(text: string, expected: SignInExpectations): { ok: true; fields: SignInFields } | { ok: false; problem: SignInProblem } {
  const malformed = (message: string) => ({ ok: false as const, problem: { status: 400 as const, reason: "malformed_message" as const, message } });
  const refused = (reason: SignInReason, message: string) => ({ ok: false as const, problem: { status: 401 as const, reason, message } });

  const parsed = parseSiweMessage(text);
  const missing = REQUIRED.filter((field) => parsed[field] === undefined);
  if (missing.length > 0) return malformed(`not an EIP-4361 sign-in message: no ${missing.join(", ")}`);
  if (parsed.version !== "1") return malformed(`unsupported EIP-4361 version "${parsed.version}" (only "1")`);
  if (!/^[a-zA-Z0-9]{8,64}$/.test(parsed.nonce!)) return malformed("the nonce must be 8 to 64 letters and digits");
  for (const field of ["issuedAt", "expirationTime", "notBefore"] as const) {
    const value = parsed[field];
    if (value !== undefined && Number.isNaN(value.getTime())) return malformed(`${field} is not an RFC 3339 date-time`);
  }
  if (parsed.address !== getAddress(parsed.address!)) return malformed("the address must be EIP-55 checksummed, as EIP-4361 requires");
  // The signed text must be exactly what its fields say: nothing smuggled between or after them.
  let canonical: string;
  try {
    canonical = createSiweMessage(parsed as Parameters<typeof createSiweMessage>[0]);
  } catch (err) {
    return malformed(`not a valid EIP-4361 message: ${(err as Error).message.split("\n")[0]}`);
  }
  if (canonical !== text) return malformed("the message is not in EIP-4361's exact form (as viem's createSiweMessage writes it)");

  let uri: URL;
  try {
    uri = new URL(parsed.uri!);
  } catch {
    return malformed("URI is not a URI");
  }
  const hosts = expected.origins.map((o) => new URL(o).host);
  if (!hosts.includes(parsed.domain!)) return refused("foreign_domain", `the message is for ${parsed.domain}, not for this site (${hosts.join(", ")})`);
  if (!expected.origins.includes(uri.origin) || uri.host !== parsed.domain) {
    return refused("foreign_uri", `the message's URI ${parsed.uri} is not on this site's origin for ${parsed.domain}`);
  }
  if (parsed.scheme !== undefined && `${parsed.scheme}:` !== uri.protocol) return refused("foreign_domain", `the message's scheme ${parsed.scheme} is not its URI's`);
  if (parsed.chainId !== expected.chainId) return refused("wrong_chain", `the message is for chain ${parsed.chainId}; this site signs in on chain ${expected.chainId}`);

  const now = expected.now.getTime();
  if (parsed.expirationTime && now >= parsed.expirationTime.getTime()) return refused("message_expired", `the message expired at ${parsed.expirationTime.toISOString()}`);
  if (parsed.notBefore && now < parsed.notBefore.getTime()) return refused("not_yet_valid", `the message is not valid before ${parsed.notBefore.toISOString()}`);
  if (parsed.issuedAt && parsed.issuedAt.getTime() > now + CLOCK_SKEW_MS) return refused("issued_in_future", `the message says it was issued at ${parsed.issuedAt.toISOString()}, in the future`);

  // viem's own rules (the same checks verifySiweMessage makes before the signature): belt and braces.
  if (!validateSiweMessage({ message: parsed, domain: parsed.domain, nonce: parsed.nonce, time: expected.now })) return malformed("the message does not pass EIP-4361 validation");

  return {
    ok: true,
    fields: {
      address: getAddress(parsed.address!),
      chainId: parsed.chainId!,
      domain: parsed.domain!,
      uri: parsed.uri!,
      nonce: parsed.nonce!,
      issuedAt: parsed.issuedAt,
      expirationTime: parsed.expirationTime,
    },
  };
}
