import { createLogger, onShutdown } from "@cashback/runtime";
import { startTelemetry } from "@cashback/telemetry";
import { startConsumer } from "./app.ts";
import { loadConfig } from "./config.ts";

// Tracing first: every log line then carries the trace id of the work it is about.
const telemetry = startTelemetry({ service: "mint-consumer" });
const logger = createLogger("mint-consumer");
try {
  const consumer = await startConsumer(loadConfig(), logger);
  onShutdown(logger, async () => {
    await consumer.stop();
    await telemetry.shutdown();
  });
} catch (err) {
  logger.fatal({ err }, "mint consumer failed to start");
  process.exit(1);
}
