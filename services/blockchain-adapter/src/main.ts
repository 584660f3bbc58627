import { createLogger, onShutdown } from "@cashback/runtime";
import { startAdapter } from "./app.ts";
import { loadConfig } from "./config.ts";

const logger = createLogger("blockchain-adapter");
try {
  const adapter = await startAdapter(loadConfig(), logger);
  onShutdown(logger, () => adapter.stop());
} catch (err) {
  logger.fatal({ err }, "blockchain adapter failed to start");
  process.exit(1);
}
