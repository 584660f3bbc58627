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
    serializers: { err: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}
