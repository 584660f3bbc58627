// `npm run reconcile`: proves the books equal the chain, or lists where they do not (exit 1).
import { redactUrl, scrubUrls } from "@cashback/runtime";
import { formatReport } from "./compare.ts";
import { loadReconcileConfig, runReconcile } from "./run.ts";

try {
  const config = loadReconcileConfig();
  console.log(`reconcile: ledger ${redactUrl(config.databaseUrl)} against chain ${scrubUrls(config.rpcUrl)}`);
  const report = await runReconcile(config);
  console.log(`token ${report.token} at block ${report.block}`);
  console.log(formatReport(report));
  process.exit(report.differences.length === 0 ? 0 : 1);
} catch (err) {
  console.error(`reconcile failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
