import closeWithGrace from "close-with-grace";
import type { Logger } from "pino";

/**
 * Runs `close` once on SIGINT/SIGTERM or a fatal error, then exits; a second signal or
 * `delay` ms passing exits at once.
 */
export function onShutdown(logger: Logger, close: () => Promise<void>, delay = 10_000): void {
  closeWithGrace({ delay }, async ({ signal, err }) => {
    if (err) logger.error({ err }, "fatal error, shutting down");
    else logger.info({ signal }, "shutting down");
    const started = Date.now();
    await close();
    // Written only when everything closed in time (after `delay` the process exits without it).
    logger.info({ ms: Date.now() - started }, "shut down cleanly");
  });
}
