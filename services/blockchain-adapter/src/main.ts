import { createLogger, onShutdown } from "@cashback/runtime";
import { startTelemetry } from "@cashback/telemetry";
import { startAdapter, type Adapter } from "./app.ts";
import { loadConfig } from "./config.ts";

// Tracing first: every log line then carries the trace id of the work it is about.
const telemetry = startTelemetry({ service: "blockchain-adapter" });
const logger = createLogger("blockchain-adapter");
const starting = new AbortController();
let adapter: Adapter | undefined;
// Registered first: a signal while start-up still waits for the database or the chain stops it too.
onShutdown(logger, async () => {
  starting.abort();
  await adapter?.stop();
  await telemetry.shutdown();
});
try {
  adapter = await startAdapter(loadConfig(), logger, { signal: starting.signal });
} catch (err) {
  if (!starting.signal.aborted) {
    logger.fatal({ err }, "blockchain adapter failed to start");
    process.exit(1);
  }
}
