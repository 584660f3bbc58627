import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/** Any field with one of these names is replaced by "[redacted]" wherever it appears in a log line. */
const SECRET_KEYS = ["privateKey", "signerKey", "authToken", "authorization", "password", "secret", "apiKey"];

export function createLogger(service: string, level = process.env.LOG_LEVEL ?? "info", destination?: DestinationStream): Logger {
  const options = {
    name: service,
    level,
    base: { service },
    redact: {
      paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `req.headers.${k}`]),
      censor: "[redacted]",
    },
    serializers: { err: scrubbedError },
  };
  return destination ? pino(options, destination) : pino(options);
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

function scrubbedError(err: unknown) {
  // `err` is often a plain string (`{ err: String(e) }`): a serializer that throws here would
  // turn a warning into an uncaught exception in whatever code was logging.
  if (typeof err === "string") return scrubUrls(err);
  if (err === null || typeof err !== "object") return err;
  // a copy: a plain object passed as err is the caller's, not ours to scrub in place
  const serialized = { ...(pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>) };
  for (const [key, value] of Object.entries(serialized)) {
    if (typeof value === "string") serialized[key] = scrubUrls(value);
  }
  return serialized;
}
