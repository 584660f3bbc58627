export { ConfigError, int, isLoopback, optionalStr, redactUrl, resolveSecretFiles, str, url } from "./env.ts";
export { createLogger, LOG_TEXT_MAX_CHARS, scrubUrls, serializeError, traceFields, type Logger } from "./logger.ts";
export { onShutdown } from "./shutdown.ts";
