import { createHash, randomBytes } from "node:crypto";
import type { Db } from "../db.ts";
import type { ShopperSession } from "../generated/prisma/client.ts";
import { uuidv7 } from "../support/uuid.ts";
import type { SignInReason } from "./sign-in-check.ts";

/**
 * The shopper page's sign-in state, and the only writer of its two tables:
 * - siwe_nonces: a nonce per sign-in attempt, good once and for `nonceTtlMs`; a used one is kept
 *   until an hour after it expired, so that a replay is told "already used" rather than "unknown";
 * - shopper_sessions: one row per signed-in wallet, for `sessionTtlMs` at most (never beyond the
 *   sign-in message's own expiration time). The cookie carries a random 256-bit token; only its
 *   SHA-256 is stored, so a database read gives nobody a session.
 */
export class ShopperSessions {
  constructor(private readonly deps: { db: Db; nonceTtlMs: number; sessionTtlMs: number }) {}

  /** A fresh nonce: 128 random bits as 32 hex digits (EIP-4361: at least 8 alphanumerics). */
  async issueNonce(): Promise<{ nonce: string; expiresAt: Date }> {
    // Not viem's generateSiweNonce: it draws from Math.random, which is not a CSPRNG.
    const nonce = randomBytes(16).toString("hex");
    const expiresAt = new Date(Date.now() + this.deps.nonceTtlMs);
    await this.deps.db.siweNonce.create({ data: { nonce, expiresAt } });
    return { nonce, expiresAt };
  }

  /**
   * Uses up the message's nonce and opens the session, in one transaction: two requests with the
   * same signed message can not both get a session, and a failed insert leaves the nonce unused.
   */
  async signIn(opts: { nonce: string; walletAddress: string; chainId: number; notAfter?: Date }): Promise<{ ok: true; token: string; session: ShopperSession } | { ok: false; reason: SignInReason }> {
    return this.deps.db.$transaction(async (tx) => {
      const used = await tx.$executeRaw`UPDATE siwe_nonces SET used_at = now() WHERE nonce = ${opts.nonce} AND used_at IS NULL AND expires_at > now()`;
      if (used === 0) {
        const row = await tx.siweNonce.findUnique({ where: { nonce: opts.nonce } });
        const reason: SignInReason = !row ? "nonce_unknown" : row.usedAt ? "nonce_used" : "nonce_expired";
        return { ok: false as const, reason };
      }
      const token = randomBytes(32).toString("base64url");
      let expiresAt = new Date(Date.now() + this.deps.sessionTtlMs);
      if (opts.notAfter && opts.notAfter < expiresAt) expiresAt = opts.notAfter;
      const session = await tx.shopperSession.create({
        data: { id: uuidv7(), tokenHash: hashToken(token), walletAddress: opts.walletAddress, chainId: opts.chainId, nonce: opts.nonce, expiresAt },
      });
      return { ok: true as const, token, session };
    });
  }

  /** The live session a cookie's token opens, if any. */
  async find(token: string): Promise<ShopperSession | null> {
    const session = await this.deps.db.shopperSession.findUnique({ where: { tokenHash: hashToken(token) } });
    return session && session.expiresAt.getTime() > Date.now() ? session : null;
  }

  async signOut(token: string): Promise<void> {
    await this.deps.db.shopperSession.deleteMany({ where: { tokenHash: hashToken(token) } });
  }

  /** Drops expired sessions, and nonces an hour after they expired. */
  async prune(): Promise<{ sessions: number; nonces: number }> {
    const sessions = await this.deps.db.$executeRaw`DELETE FROM shopper_sessions WHERE expires_at < now()`;
    const nonces = await this.deps.db.$executeRaw`DELETE FROM siwe_nonces WHERE expires_at < now() - interval '1 hour'`;
    return { sessions, nonces };
  }
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
