import type { IncomingMessage, Server, ServerResponse } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { Logger } from "pino";
import { trace, type Tracer } from "@cashback/telemetry";
import { nameServerSpan, tracedServer } from "../observability/http-tracing.ts";
import type { Metrics } from "../metrics.ts";
import type { KeyResolver } from "./auth.ts";
import { ApiError, errorHandler } from "./errors.ts";
import { jsonDepthExceeds, MAX_JSON_DEPTH } from "./json-depth.ts";
import { ErrorBody } from "./schemas.ts";

/** /v1 needs an API key, except the shopper page's routes: a wallet signs in there instead. */
function needsKey(url: string): boolean {
  return url.startsWith("/v1/") && !url.startsWith("/v1/shopper/");
}

export type App = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface ServerDeps {
  logger: Logger;
  metrics: Metrics;
  keys: KeyResolver;
  bodyLimitBytes: number;
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** Server spans of the requests (default: the process's tracer provider, see @cashback/telemetry). */
  tracer?: Tracer;
}

/**
 * The fastify instance with everything but the routes: validation (TypeBox, no type coercion of
 * bodies: a JSON number is never silently turned into a wei string), one error handler and one
 * error body, authentication, a per-key rate limit, REST metrics, OpenAPI 3.1 + docs UI.
 */
export async function buildServer(deps: ServerDeps): Promise<App> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), // a line per request would cost more than the request at 3k/s
    bodyLimit: deps.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    ajv: { customOptions: { coerceTypes: false } },
    serverFactory: tracedServer(deps.tracer ?? trace.getTracer("cashback-service-api")),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.removeContentTypeParser("text/plain"); // JSON only: anything else is 415, not a string body
  // fastify's own JSON parser (prototype poisoning refused), after a bound on the nesting depth.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (typeof body === "string" && jsonDepthExceeds(body)) {
      return done(new ApiError("invalid_request", `JSON nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    }
    parseJson(request, body as string, done);
  });
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.addSchema(ErrorBody);
  app.setErrorHandler(errorHandler(deps.logger));
  app.setNotFoundHandler((request) => {
    throw new ApiError("not_found", `no route ${request.method} ${request.url.split("?")[0]}`);
  });

  // Who is calling: resolved for every request, required (401) only by the /v1 routes, after
  // the rate limit has counted the request against the key or, without one, the address.
  app.addHook("onRequest", async (request) => {
    nameServerSpan(request.method, request.routeOptions.url);
    if (!needsKey(request.url)) return;
    const { principal, problem } = await deps.keys.resolve(request.headers.authorization);
    request.principal = principal;
    request.authProblem = problem;
  });
  app.addHook("preValidation", async (request) => {
    if (needsKey(request.url) && !request.principal) throw new ApiError("unauthenticated", request.authProblem ?? "missing API key");
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    deps.metrics.httpDuration.observe({ route, method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    // An access log costs more than a purchase at 3k/s: on at LOG_LEVEL=debug (carries the trace id).
    if (deps.logger.isLevelEnabled("debug")) request.log.debug({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, "request answered");
  });

  await app.register(rateLimit, {
    global: true,
    max: deps.rateLimitMax,
    timeWindow: deps.rateLimitWindowMs,
    keyGenerator: (request) => request.principal?.id ?? request.ip,
    allowList: (request) => !request.url.startsWith("/v1/"),
    errorResponseBuilder: (_request, context) =>
      new ApiError("rate_limited", `rate limit of ${context.max} requests per ${context.after} reached; retry after the Retry-After header's seconds`, { limit: context.max, window: context.after }),
  });

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Cashback API",
        version: "1.0.0",
        description:
          "Merchants send purchases; each earns cashback by the merchant's and the platform's rules, paid as CBK (ERC-20) minted to the shopper's wallet. JSON uses snake_case; fiat amounts are integer minor units, token amounts decimal strings of wei. Every POST accepts an Idempotency-Key. Errors: `{ error: { code, message, details } }`. See docs/cashback-api.md.",
      },
      components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "the admin key or a merchant's API key (cbk_...)" } } },
      security: [{ apiKey: [] }],
      tags: [
        { name: "merchants", description: "merchants and their API keys (admin)" },
        { name: "users", description: "shoppers of a merchant" },
        { name: "purchases", description: "purchases, their cashback, refunds and trace" },
        { name: "rules", description: "cashback rules (platform-wide or per merchant)" },
        { name: "ledger", description: "a user's cashback ledger and on-chain balance" },
        { name: "shopper", description: "the shopper page's API: sign in with Ethereum (EIP-4361), then the wallet's own history (session cookie, no API key)" },
        { name: "operations", description: "health, readiness, metrics" },
      ],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: "/docs", staticCSP: true, uiConfig: { docExpansion: "list", deepLinking: true } });
  app.get("/openapi.json", { schema: { hide: true }, config: { rateLimit: false } }, async () => app.swagger());

  return app;
}
