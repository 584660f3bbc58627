import { createLogger, onShutdown } from "@cashback/runtime";
import { startApi } from "./app.ts";
import { loadConfig } from "./config.ts";

const logger = createLogger("cashback-service-api");
try {
  const api = await startApi(loadConfig(), logger);
  onShutdown(logger, () => api.stop());
} catch (err) {
  logger.fatal({ err }, "cashback API failed to start");
  process.exit(1);
}
