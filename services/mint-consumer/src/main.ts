import { createLogger, onShutdown } from "@cashback/runtime";
import { startTelemetry } from "@cashback/telemetry";
import { startConsumer, type Consumer } from "./app.ts";
import { loadConfig } from "./config.ts";

// Tracing first: every log line then carries the trace id of the work it is about.
const telemetry = startTelemetry({ service: "mint-consumer" });
const logger = createLogger("mint-consumer");
// Registered first: a signal during start-up ends the process cleanly too.
let consumer: Consumer | undefined;
onShutdown(logger, async () => {
  await consumer?.stop();
  await telemetry.shutdown();
});
try {
  consumer = await startConsumer(loadConfig(), logger);
} catch (err) {
  logger.fatal({ err }, "mint consumer failed to start");
  process.exit(1);
}
