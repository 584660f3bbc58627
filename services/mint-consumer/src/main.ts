import { createLogger, onShutdown } from "@cashback/runtime";
import { startConsumer } from "./app.ts";
import { loadConfig } from "./config.ts";

const logger = createLogger("mint-consumer");
try {
  const consumer = await startConsumer(loadConfig(), logger);
  onShutdown(logger, () => consumer.stop());
} catch (err) {
  logger.fatal({ err }, "mint consumer failed to start");
  process.exit(1);
}
