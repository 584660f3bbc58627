import type { FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { createPublicClient, http, type Hex } from "viem";
import { verifySiweMessage } from "viem/siwe";
import type { Logger } from "pino";
import type { ShopperConfig } from "../config.ts";
import type { Db } from "../db.ts";
import { ApiError } from "../http/errors.ts";
import { Address, errors, PageQuery, Timestamp, Uuid, Wei } from "../http/schemas.ts";
import type { App } from "../http/server.ts";
import { LedgerTotalsSchema } from "../ledger/schemas.ts";
import { walletHistory } from "./history.ts";
import { pageConfig, SIGN_IN_STATEMENT } from "./page-config.ts";
import { clearedSessionCookie, sessionCookie, sessionToken } from "./session-cookie.ts";
import type { ShopperSessions } from "./session-store.ts";
import { checkSignInMessage, type SignInReason } from "./sign-in-check.ts";

/** Unauthenticated sign-in calls per client address per minute (each nonce is a database row). */
export const SIGN_IN_RATE_PER_MINUTE = 60;

const SessionSchema = Type.Object({ wallet_address: Address, chain_id: Type.Integer(), expires_at: Timestamp });

const HistoryEntrySchema = Type.Object(
  {
    id: Uuid,
    kind: Type.Union([Type.Literal("accrual"), Type.Literal("clawback")], { description: "accrual: cashback a purchase earned; clawback: what a refund took back" }),
    status: Type.String({ description: "accrual: pending -> minted | failed; clawback: clawback_pending -> clawed_back | clawback_failed" }),
    amount_wei: Wei,
    purchase: Type.Object({ id: Uuid, occurred_at: Timestamp, amount_minor: Type.Integer(), currency: Type.String(), category: Type.String() }),
    merchant: Type.Object({ id: Uuid, name: Type.String() }),
    refund: Type.Union([Type.Object({ id: Uuid, amount_minor: Type.Integer(), created_at: Timestamp }), Type.Null()]),
    tx_hash: Type.Union([Type.String(), Type.Null()]),
    block_number: Type.Union([Type.String(), Type.Null()]),
    failure_reason: Type.Union([Type.String(), Type.Null()]),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "ShopperHistoryEntry" },
);

const PageConfigSchema = Type.Object({
  chain: Type.Object({
    id: Type.Integer(),
    id_hex: Type.String(),
    name: Type.String(),
    rpc_url: Type.String(),
    native_currency: Type.Object({ name: Type.String(), symbol: Type.String(), decimals: Type.Integer() }),
    explorer_url: Type.Union([Type.String(), Type.Null()]),
  }),
  token: Type.Union([Type.Object({ address: Address, name: Type.String(), symbol: Type.String(), decimals: Type.Integer() }), Type.Null()]),
  token_unavailable: Type.Union([Type.String(), Type.Null()]),
  sign_in: Type.Object({ statement: Type.String(), nonce_ttl_seconds: Type.Number(), session_ttl_seconds: Type.Number() }),
});

/**
 * The shopper page's API, under /v1/shopper (no merchant key: a wallet signs in instead).
 * Sign-In with Ethereum (EIP-4361): the page gets a nonce, the wallet signs a message naming it,
 * this site (domain and URI), our chain and the wallet; the API checks the message
 * (sign-in-check.ts), the signature (viem's verifySiweMessage: EOAs and ERC-1271/6492 contract
 * wallets), then uses up the nonce and opens a session for that one wallet in the same
 * transaction (session-store.ts). Every read after that is the session's wallet's, and no route
 * takes a wallet as a parameter.
 */
export function registerShopperRoutes(app: App, deps: { db: Db; sessions: ShopperSessions; config: ShopperConfig; origins: () => string[]; deploymentsDir?: string; logger: Logger }) {
  const { db, sessions, config } = deps;
  const chain = createPublicClient({ transport: http(config.chainRpcUrl, { timeout: 5_000, retryCount: 0 }) });
  const signInRate = { rateLimit: { max: SIGN_IN_RATE_PER_MINUTE, timeWindow: 60_000 } };

  /** The session of the request's cookie, or 401. */
  async function sessionOf(request: FastifyRequest) {
    const token = sessionToken(request.headers.cookie);
    const session = token ? await sessions.find(token) : null;
    if (!session) throw new ApiError("unauthenticated", token ? "the session has expired or was closed; sign in again" : "not signed in: sign in with your wallet (POST /v1/shopper/sign-in)", { reason: "no_session" });
    return session;
  }

  app.get("/v1/shopper/config", {
    schema: { tags: ["shopper"], summary: "What the shopper page needs: the chain to add to the wallet, the token to watch, the sign-in rules", security: [], response: { 200: PageConfigSchema, ...errors() } },
    handler: async () => pageConfig(config, deps.deploymentsDir),
  });

  app.post("/v1/shopper/nonce", {
    config: signInRate,
    schema: {
      tags: ["shopper"],
      summary: "A fresh sign-in nonce: good once, for a few minutes",
      security: [],
      response: { 201: Type.Object({ nonce: Type.String(), expires_at: Timestamp, chain_id: Type.Integer(), statement: Type.String() }), ...errors() },
    },
    handler: async (_request, reply) => {
      const { nonce, expiresAt } = await sessions.issueNonce();
      return reply.status(201).send({ nonce, expires_at: expiresAt.toISOString(), chain_id: config.chainId, statement: SIGN_IN_STATEMENT });
    },
  });

  app.post("/v1/shopper/sign-in", {
    config: signInRate,
    schema: {
      tags: ["shopper"],
      summary: "Sign in with Ethereum (EIP-4361): opens a short session for the signing wallet",
      description:
        "The message must be an EIP-4361 message (exactly as viem's createSiweMessage writes it) for this site (domain and URI on one of API_PUBLIC_ORIGINS), for CHAIN_ID, with a nonce from POST /v1/shopper/nonce that was not used and has not expired, signed by its address (personal_sign). The answer sets an HttpOnly, SameSite=Strict cookie for /v1/shopper. Refusals are 401 with details.reason: foreign_domain, foreign_uri, wrong_chain, message_expired, not_yet_valid, issued_in_future, bad_signature, nonce_unknown, nonce_used, nonce_expired; a malformed message is 400 (reason malformed_message).",
      security: [],
      body: Type.Object(
        {
          message: Type.String({ minLength: 1, maxLength: 4096, description: "the EIP-4361 message that was signed" }),
          signature: Type.String({ pattern: "^0x([0-9a-fA-F]{2})+$", maxLength: 20_000, description: "personal_sign signature (65 bytes for an EOA; ERC-1271/6492 for contract wallets)" }),
        },
        { additionalProperties: false },
      ),
      response: { 200: SessionSchema, ...errors(503) },
    },
    handler: async (request, reply) => {
      const now = new Date();
      const checked = checkSignInMessage(request.body.message, { origins: deps.origins(), chainId: config.chainId, now });
      if (!checked.ok) throw refusal(checked.problem.reason, checked.problem.message, checked.problem.status);
      const { fields } = checked;
      let valid: boolean;
      try {
        valid = await verifySiweMessage(chain, { message: request.body.message, signature: request.body.signature as Hex, address: fields.address, domain: fields.domain, nonce: fields.nonce, time: now });
      } catch (err) {
        deps.logger.warn({ err: String(err) }, "sign-in: the signature could not be checked");
        throw new ApiError("unavailable", "the signature could not be checked (the chain did not answer); try again", { reason: "chain_unavailable" });
      }
      if (!valid) {
        // viem answers false also when the chain could not be asked (a contract wallet's check):
        // tell that apart, so a shopper is not told their signature is wrong when it may not be.
        const chainAnswers = await chain.getBlockNumber({ cacheTime: 0 }).then(() => true, () => false);
        if (!chainAnswers) throw new ApiError("unavailable", "the signature could not be checked (the chain did not answer); try again", { reason: "chain_unavailable" });
        throw refusal("bad_signature", `the signature is not ${fields.address}'s signature of this message`);
      }

      const opened = await sessions.signIn({ nonce: fields.nonce, walletAddress: fields.address, chainId: fields.chainId, notAfter: fields.expirationTime });
      if (!opened.ok) throw refusal(opened.reason, NONCE_MESSAGES[opened.reason as keyof typeof NONCE_MESSAGES]);
      const { session, token } = opened;
      reply.header("set-cookie", sessionCookie(token, { maxAgeSeconds: (session.expiresAt.getTime() - Date.now()) / 1000, secure: fields.uri.startsWith("https:") }));
      reply.header("cache-control", "no-store");
      return { wallet_address: session.walletAddress, chain_id: session.chainId, expires_at: session.expiresAt.toISOString() };
    },
  });

  app.get("/v1/shopper/session", {
    schema: { tags: ["shopper"], summary: "The signed-in wallet (401 when not signed in)", security: [], response: { 200: SessionSchema, ...errors() } },
    handler: async (request, reply) => {
      const session = await sessionOf(request);
      reply.header("cache-control", "no-store");
      return { wallet_address: session.walletAddress, chain_id: session.chainId, expires_at: session.expiresAt.toISOString() };
    },
  });

  app.post("/v1/shopper/sign-out", {
    schema: { tags: ["shopper"], summary: "Closes the session and clears its cookie", security: [], response: { 204: Type.Null(), ...errors() } },
    handler: async (request, reply: FastifyReply) => {
      const token = sessionToken(request.headers.cookie);
      if (token) await sessions.signOut(token);
      const secure = (request.headers.origin ?? "").startsWith("https:") || request.protocol === "https";
      return reply.header("set-cookie", clearedSessionCookie(secure)).status(204).send();
    },
  });

  app.get("/v1/shopper/history", {
    schema: {
      tags: ["shopper"],
      summary: "The signed-in wallet's cashback history, newest first, with totals by status",
      description: "Only the session's own wallet: there is no parameter naming a wallet. Across every merchant that registered the wallet.",
      security: [],
      querystring: Type.Object(PageQuery, { additionalProperties: false }),
      response: {
        200: Type.Object({ wallet_address: Address, totals: LedgerTotalsSchema, entries: Type.Object({ data: Type.Array(Type.Ref("ShopperHistoryEntry")), next_cursor: Type.Union([Type.String(), Type.Null()]) }) }),
        ...errors(),
      },
    },
    handler: async (request, reply) => {
      const session = await sessionOf(request);
      reply.header("cache-control", "no-store");
      return walletHistory(db, session.walletAddress, { limit: request.query.limit ?? 20, cursor: request.query.cursor });
    },
  });
}

export { HistoryEntrySchema };

const NONCE_MESSAGES = {
  nonce_unknown: "the message's nonce was not issued here (ask POST /v1/shopper/nonce for one)",
  nonce_used: "the message's nonce was already used: a sign-in message works once; sign a new one",
  nonce_expired: "the message's nonce has expired; sign a new one",
} as const;

function refusal(reason: SignInReason, message: string, status: 400 | 401 = 401): ApiError {
  return new ApiError(status === 400 ? "invalid_request" : "unauthenticated", message, { reason });
}
