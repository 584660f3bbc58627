import { inspect } from "node:util";
import { context, trace } from "@opentelemetry/api";
import { pino, type DestinationStream, type Logger } from "pino";
import { ConfigError } from "./env.ts";

export type { Logger };

/** Any field with one of these names is replaced by "[redacted]" wherever it appears in a log line. */
const SECRET_KEYS = ["privateKey", "signerKey", "authToken", "authorization", "password", "secret", "apiKey"];

/** Longest text kept per field of a logged error: a log line stays bounded whatever an error quotes. */
export const LOG_TEXT_MAX_CHARS = 4_096;

/**
 * Logging must never throw: a log call sits in catch blocks and background loops, where a throw
 * becomes an unhandled rejection that ends the process. So `err` may be any value (an Error, a
 * string, a number, null, a frozen or hostile object), and a line that still can not be written
 * (e.g. a frozen object under a redacted path) is replaced by a line saying so.
 */
export function createLogger(service: string, level = process.env.LOG_LEVEL?.trim() || "info", destination?: DestinationStream): Logger {
  if (!(level in pino.levels.values) && level !== "silent") {
    throw new ConfigError(`LOG_LEVEL must be one of ${Object.keys(pino.levels.values).join(", ")} or silent, got "${level.slice(0, 40)}"`);
  }
  const options = {
    name: service,
    level,
    base: { service },
    redact: {
      paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k}`]),
      censor: "[redacted]",
    },
    serializers: { err: serializeError },
    // Every line written inside a traced request or call names its trace (see @cashback/telemetry).
    mixin: traceFields,
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger["info"]>, method: (...a: unknown[]) => void) {
        try {
          method.apply(this, args);
        } catch (failure) {
          try {
            // The message survives; the fields that could not be written are said to be lost.
            const msg = args.find((a): a is string => typeof a === "string") ?? "";
            method.call(this, { logFailure: `fields could not be written: ${describe(failure)}` }, msg);
          } catch {
            // nothing left to try; never let logging end the process
          }
        }
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * { trace_id } of the active span, when there is one (OpenTelemetry's context, no SDK needed to
 * read it). A fresh object each time: pino merges the line's fields into it.
 */
export function traceFields(): { trace_id?: string } {
  const sc = trace.getSpanContext(context.active());
  return sc && sc.traceId !== "00000000000000000000000000000000" ? { trace_id: sc.traceId } : {};
}

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;

/**
 * URLs in free text with their credentials, path and query cut off: RPC providers put API keys
 * in the path (…/v3/<key>), databases put passwords in the user info, and library errors quote
 * the URL they failed on.
 */
export function scrubUrls(text: string): string {
  return text.replace(URL_IN_TEXT, (match) => {
    try {
      const u = new URL(match);
      const rest = u.pathname !== "/" || u.search ? "/…" : "";
      return `${u.protocol}//${u.host}${rest}`;
    } catch {
      return "<url>";
    }
  });
}

/** Scrubbed and bounded text for a log field. */
function clean(text: string): string {
  const cut = text.length > LOG_TEXT_MAX_CHARS ? `${text.slice(0, LOG_TEXT_MAX_CHARS)}… (${text.length} characters)` : text;
  return scrubUrls(cut);
}

/** A description of any value that does not throw (getters are not run, proxies not trapped). */
function describe(value: unknown): string {
  try {
    return clean(inspect(value, { depth: 2, breakLength: Infinity, maxStringLength: LOG_TEXT_MAX_CHARS, getters: false, showProxy: true }));
  } catch {
    return "[value could not be described]";
  }
}

/**
 * The `err` serializer for any value: an error (or anything with a string `message`) becomes pino's
 * usual { type, message, stack, ... } in a fresh object (the caller's error is never written to),
 * with URLs scrubbed and text bounded; a string is scrubbed; other primitives stay as they are;
 * any other object is described as text.
 */
export function serializeError(err: unknown): unknown {
  try {
    if (typeof err === "string") return clean(err);
    if (typeof err === "bigint" || typeof err === "symbol" || typeof err === "function") return describe(err);
    if (err === null || typeof err !== "object") return err;
    if (!isErrorLike(err)) return { type: "NonError", message: describe(err) };
    let serialized: Record<string, unknown>;
    try {
      serialized = { ...(pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>) };
    } catch {
      // pino's serializer tags the error it reads: a frozen error refuses that, as may a proxy.
      serialized = { type: readText(err, "name") ?? "Error", message: readText(err, "message") ?? "", stack: readText(err, "stack") };
    }
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(serialized)) {
      if (key === "raw") continue;
      out[key] = typeof value === "string" ? clean(value) : value !== null && typeof value === "object" ? safeValue(value) : value;
    }
    return out;
  } catch {
    return { type: "Unserializable", message: describe(err) };
  }
}

function isErrorLike(value: object): boolean {
  try {
    return value instanceof Error || typeof (value as { message?: unknown }).message === "string";
  } catch {
    return false;
  }
}

function readText(obj: object, key: string): string | undefined {
  try {
    const value = (obj as Record<string, unknown>)[key];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A nested value of an error, kept when it turns into JSON without trouble, described otherwise. */
function safeValue(value: object): unknown {
  try {
    const json = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
    if (json === undefined) return undefined;
    return json.length > LOG_TEXT_MAX_CHARS ? describe(value) : (JSON.parse(scrubUrls(json)) as unknown);
  } catch {
    return describe(value);
  }
}
