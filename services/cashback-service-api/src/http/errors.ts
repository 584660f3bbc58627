import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";

/**
 * Errors as data: every error answer has one body, `{ error: { code, message, details } }`,
 * with a stable machine-readable `code` (below) and a message meant for the developer reading
 * it. A 500 says only "internal error" (the log has the rest); a stack trace never leaves.
 */
export const ERROR_CODES = {
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  idempotency_key_reused: 422,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export class ApiError extends Error {
  override name = "ApiError";
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.statusCode = ERROR_CODES[code];
  }
}

export const notFound = (what: string) => new ApiError("not_found", `${what} not found`);
export const forbidden = (message = "this key may not access that merchant's data") => new ApiError("forbidden", message);
export const unprocessable = (message: string, details?: Record<string, unknown>) => new ApiError("unprocessable", message, details);

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: "invalid_request",
  401: "unauthenticated",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "unprocessable",
  429: "rate_limited",
  503: "unavailable",
};

/** Turns anything thrown by a route, a hook, fastify's body parser or its validator into the error body. */
export function toErrorAnswer(err: unknown): { status: number; body: ErrorBody; headers: Record<string, string>; internal: boolean } {
  if (err instanceof ApiError) {
    return { status: err.statusCode, body: { error: { code: err.code, message: err.message, details: err.details } }, headers: err.headers, internal: false };
  }
  const e = err as FastifyError & { validation?: { instancePath?: string; message?: string }[]; validationContext?: string };
  if (e?.validation) {
    const problems = e.validation.map((v) => ({ path: `${e.validationContext ?? "body"}${v.instancePath ?? ""}`, message: v.message ?? "invalid" }));
    return { status: 400, body: { error: { code: "invalid_request", message: e.message, details: { problems } } }, headers: {}, internal: false };
  }
  const status = typeof e?.statusCode === "number" ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? "invalid_request";
    // fastify's own client errors (FST_ERR_CTP_BODY_TOO_LARGE, FST_ERR_CTP_INVALID_JSON_BODY...) have safe messages
    return { status, body: { error: { code, message: e.message || code, details: e.code ? { reason: e.code } : {} } }, headers: {}, internal: false };
  }
  return { status: 500, body: { error: { code: "internal", message: "internal error", details: {} } }, headers: {}, internal: true };
}

export function errorHandler(logger: Logger) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const answer = toErrorAnswer(err);
    if (answer.internal) logger.error({ err, method: request.method, url: request.routeOptions?.url ?? "?" }, "request failed");
    for (const [k, v] of Object.entries(answer.headers)) reply.header(k, v);
    return reply.status(answer.status).send(answer.body);
  };
}
