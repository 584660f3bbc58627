import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { canonicalJson } from "../support/canonical-json.ts";
import { toJson } from "../support/json.ts";
import type { Db, Tx } from "../db.ts";
import { idempotencyScope, principalOf } from "./auth.ts";
import { ApiError } from "./errors.ts";

/**
 * Idempotency-Key on every POST, with Stripe's semantics:
 * - the first request with a key runs, and its answer (status and body) is stored in the same
 *   transaction as its changes;
 * - a retry with the same key and the same request (method, path, canonical JSON body) gets that
 *   answer again, with `Idempotent-Replayed: true`, and changes nothing;
 * - the same key with another request is 422 idempotency_key_reused;
 * - a duplicate arriving while the first is still running waits for it (the key's row is
 *   locked by the first transaction) and then gets its answer: concurrent duplicates do the work
 *   once.
 * Keys are per caller (a merchant's keys share one namespace; the admin has its own) and kept at
 * least API_IDEMPOTENCY_TTL_HOURS. Only successful answers are stored: a request that failed
 * changed nothing and may be retried with the same key.
 */
export interface IdempotencyRequest {
  scope: string;
  key: string;
  method: string;
  path: string;
  hash: string;
}

export interface Answer<B = unknown> {
  status: number;
  body: B;
  replayed?: boolean;
  /** What to keep for replays when it must differ from `body` (a new API key is never stored). */
  storedBody?: unknown;
  /** `body` already serialized (the purchase writer has it for the idempotency record anyway). */
  json?: string;
}

export function idempotencyRequest(request: FastifyRequest): IdempotencyRequest | undefined {
  const key = request.headers["idempotency-key"];
  if (key === undefined) return undefined;
  if (typeof key !== "string" || key.length === 0 || key.length > 255) {
    throw new ApiError("invalid_request", "Idempotency-Key must be 1 to 255 characters");
  }
  const path = request.url;
  const hash = createHash("sha256").update(`${request.method} ${path}\n${canonicalJson(request.body ?? null)}`).digest("hex");
  return { scope: idempotencyScope(principalOf(request)), key, method: request.method, path, hash };
}

class KeyTaken extends Error {}

export class Idempotency {
  constructor(private readonly deps: { db: Db; ttlMs: number; logger: Logger }) {}

  /** Runs `work` in one Prisma transaction with the key's record (or without, when there is no key). */
  async run<B>(idem: IdempotencyRequest | undefined, work: (tx: Tx) => Promise<Answer<B>>): Promise<Answer<B>> {
    if (!idem) return this.deps.db.$transaction((tx) => work(tx), { timeout: 15_000, maxWait: 10_000 });
    try {
      return await this.deps.db.$transaction(
        async (tx) => {
          // Waits here for a concurrent first request with this key, then finds its row.
          const inserted = await tx.$executeRaw`
            INSERT INTO idempotency_keys (principal, key, request_method, request_path, request_hash, response_status, response_body)
            VALUES (${idem.scope}, ${idem.key}, ${idem.method}, ${idem.path.slice(0, 300)}, ${idem.hash}, 0, '{}')
            ON CONFLICT DO NOTHING`;
          if (inserted === 0) throw new KeyTaken();
          const answer = await work(tx);
          await tx.$executeRaw`
            UPDATE idempotency_keys SET response_status = ${answer.status}, response_body = ${toJson(answer.storedBody ?? answer.body)}::jsonb
            WHERE principal = ${idem.scope} AND key = ${idem.key}`;
          return answer;
        },
        { timeout: 15_000, maxWait: 10_000 },
      );
    } catch (err) {
      if (err instanceof KeyTaken) return this.replay(idem) as Promise<Answer<B>>;
      throw err;
    }
  }

  /** The stored answer for a key that is already taken: a replay, or 422 when the request differs. */
  async replay(idem: IdempotencyRequest): Promise<Answer> {
    const stored = await this.deps.db.idempotencyKey.findUnique({ where: { principal_key: { principal: idem.scope, key: idem.key } } });
    if (!stored) throw new ApiError("conflict", "a request with this Idempotency-Key did not finish; retry it");
    if (stored.requestHash !== idem.hash) {
      throw new ApiError("idempotency_key_reused", "this Idempotency-Key was used with another request (method, path or body); use a new key", {
        original_method: stored.requestMethod,
        original_path: stored.requestPath,
      });
    }
    return { status: stored.responseStatus, body: stored.responseBody, replayed: true };
  }

  /** Deletes records older than the retention, a batch at a time. */
  async prune(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.deps.db.$executeRaw`
        DELETE FROM idempotency_keys WHERE ctid IN (
          SELECT ctid FROM idempotency_keys WHERE created_at < now() - (${this.deps.ttlMs}::bigint * interval '1 millisecond') LIMIT 5000)`;
      total += n;
      if (n < 5000) return total;
    }
  }
}

export function send<B>(reply: FastifyReply, answer: Answer<B>): FastifyReply {
  if (answer.replayed) reply.header("idempotent-replayed", "true");
  // a string with a JSON content type goes out as it is, without a second serialization
  if (answer.json !== undefined) return reply.status(answer.status).type("application/json; charset=utf-8").send(answer.json);
  return reply.status(answer.status).send(answer.body);
}
