import { createLogger, onShutdown } from "@cashback/runtime";
import { startTelemetry } from "@cashback/telemetry";
import { startApi, type Api } from "./app.ts";
import { loadConfig } from "./config.ts";

// Tracing first: every log line then carries the trace id of the work it is about.
const telemetry = startTelemetry({ service: "cashback-service-api" });
const logger = createLogger("cashback-service-api");
// Registered first: a signal during start-up ends the process cleanly too.
let api: Api | undefined;
onShutdown(logger, async () => {
  await api?.stop();
  await telemetry.shutdown();
});
try {
  api = await startApi(loadConfig(), logger);
} catch (err) {
  logger.fatal({ err }, "cashback API failed to start");
  process.exit(1);
}
