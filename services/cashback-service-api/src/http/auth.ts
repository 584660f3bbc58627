import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import type { Db } from "../db.ts";
import { Lru } from "../support/lru.ts";
import { ApiError, forbidden } from "./errors.ts";

/**
 * Who is calling. Every /v1 request sends `Authorization: Bearer <key>`: the admin key (config)
 * or a merchant's API key. A merchant key acts on its own merchant's data only.
 */
export type Principal = { kind: "admin"; id: "admin" } | { kind: "merchant"; id: string; merchantId: string };

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
    authProblem?: string;
  }
}

const KEY_PREFIX = "cbk_";

/** A new merchant key: 32 random bytes, shown once; only its SHA-256 is stored. */
export function newApiKey(): { key: string; hash: string; prefix: string } {
  const key = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { key, hash: hashKey(key), prefix: key.slice(0, 12) };
}

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/**
 * Resolves bearer keys to principals. Merchant keys are cached by hash; the cache is dropped
 * whenever api_keys changes anywhere (NOTIFY, see cache-listener.ts), so a revoked key stops
 * working on every instance at once. Unknown keys are remembered for a few seconds too, so
 * requests with made-up keys (which the rate limit only counts after this) do not each cost a
 * database read.
 */
export class KeyResolver {
  private readonly adminDigest: Buffer;
  private cache = new Map<string, Principal>();
  private unknown = new Lru<string, number>(10_000);

  constructor(private readonly deps: { db: Db; adminKey: string }) {
    this.adminDigest = createHash("sha256").update(deps.adminKey).digest();
  }

  invalidate(): void {
    this.cache = new Map();
    this.unknown = new Lru(10_000); // a key issued elsewhere works here at once
  }

  async resolve(authorization: string | undefined): Promise<{ principal?: Principal; problem?: string }> {
    if (!authorization) return { problem: "missing API key (Authorization: Bearer <key>)" };
    const match = /^Bearer\s+(\S{1,200})\s*$/i.exec(authorization);
    if (!match) return { problem: "malformed Authorization header (expected: Bearer <key>)" };
    const key = match[1]!;
    const digest = createHash("sha256").update(key).digest();
    // fixed-size digests: neither the length nor the content of the admin key leaks through timing
    if (timingSafeEqual(digest, this.adminDigest)) return { principal: { kind: "admin", id: "admin" } };
    if (!key.startsWith(KEY_PREFIX)) return { problem: "invalid API key" };
    const hash = digest.toString("hex");
    const cached = this.cache.get(hash);
    if (cached) return { principal: cached };
    const knownBad = this.unknown.get(hash);
    if (knownBad !== undefined && knownBad > Date.now()) return { problem: "invalid API key" };
    const cache = this.cache; // an invalidation while we read must not be undone by our write
    const unknown = this.unknown;
    const row = await this.deps.db.apiKey.findUnique({ where: { keyHash: hash }, select: { id: true, merchantId: true, revokedAt: true } });
    if (!row) {
      if (unknown === this.unknown) unknown.set(hash, Date.now() + 10_000);
      return { problem: "invalid API key" };
    }
    if (row.revokedAt) return { problem: "API key revoked" };
    const principal: Principal = { kind: "merchant", id: row.id, merchantId: row.merchantId };
    cache.set(hash, principal);
    return { principal };
  }
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new ApiError("unauthenticated", request.authProblem ?? "missing API key");
  return request.principal;
}

export function requireAdmin(request: FastifyRequest): void {
  if (principalOf(request).kind !== "admin") throw forbidden("this needs the admin key");
}

/**
 * The merchant a request acts for: a merchant key's own merchant (naming another one is 403),
 * or, with the admin key, the merchant_id the request names (required).
 */
export function actingMerchant(request: FastifyRequest, named: string | undefined): string {
  const principal = principalOf(request);
  if (principal.kind === "merchant") {
    if (named !== undefined && named.toLowerCase() !== principal.merchantId) throw forbidden();
    return principal.merchantId;
  }
  if (named === undefined) throw new ApiError("invalid_request", "merchant_id is required with the admin key");
  return named.toLowerCase();
}

/** 403 unless the caller is the admin or the merchant owning the resource. */
export function assertCanAccess(request: FastifyRequest, ownerMerchantId: string | null): void {
  const principal = principalOf(request);
  if (principal.kind === "admin") return;
  if (ownerMerchantId !== principal.merchantId) throw forbidden();
}

/** The idempotency namespace of a caller: its merchant (all its keys share one), or "admin". */
export function idempotencyScope(principal: Principal): string {
  return principal.kind === "admin" ? "admin" : principal.merchantId;
}
