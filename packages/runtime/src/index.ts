export { ConfigError, int, isLoopback, optionalStr, redactUrl, str, url } from "./env.ts";
export { createLogger, scrubUrls, type Logger } from "./logger.ts";
export { onShutdown } from "./shutdown.ts";
