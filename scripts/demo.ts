// `npm run demo`: shows the platform working end to end against a running `npm start` stack
// (scripts/demo/run-demo.ts). Env: API_URL (http://127.0.0.1:$API_PORT, 3000), API_ADMIN_KEY
// (dev-admin-key), CHAIN_RPC_URL (http://127.0.0.1:$CHAIN_PORT, 8545), DEMO_SHOPPERS (3),
// DEMO_PURCHASES (per shopper, 2), DEMO_TIMEOUT_S (120). Exit code 1 when the chain disagrees
// with the ledger or the stack is not there.
import { formatUnits } from "viem";
import { runDemo } from "./demo/run-demo.ts";

const env = process.env;
const apiUrl = env.API_URL ?? `http://127.0.0.1:${env.API_PORT ?? 3000}`;
const tty = process.stdout.isTTY;
let progressShown = false;
const out = (line: string) => {
  process.stdout.write(`${progressShown ? "\r\x1b[2K" : ""}${line}\n`);
  progressShown = false;
};
const progress = (line: string) => {
  if (!tty) return; // a log gets the result lines only
  process.stdout.write(`\r\x1b[2K${line}`);
  progressShown = true;
};

const ready = await fetch(`${apiUrl}/readyz`, { signal: AbortSignal.timeout(3_000) }).then((r) => r.ok, () => false);
if (!ready) {
  console.error(`demo: the cashback API does not answer at ${apiUrl}/readyz: start the stack first (npm start), or set API_URL`);
  process.exit(1);
}

const result = await runDemo({
  apiUrl,
  adminKey: env.API_ADMIN_KEY ?? "dev-admin-key",
  rpcUrl: env.CHAIN_RPC_URL ?? `http://127.0.0.1:${env.CHAIN_PORT ?? 8545}`,
  shoppers: Number(env.DEMO_SHOPPERS ?? 3),
  purchasesPerShopper: Number(env.DEMO_PURCHASES ?? 2),
  timeoutMs: Number(env.DEMO_TIMEOUT_S ?? 120) * 1_000,
  out,
  progress,
});

out("");
out("wallet                                       ledger (net minted)   balance on chain");
for (const w of result.wallets) out(`${w.address}   ${formatUnits(w.netMintedWei, 18).padStart(18)}   ${formatUnits(w.chainBalanceWei, 18).padStart(16)} CBK`);
if (result.ok) out(`demo: ok, ${result.entries.length} ledger entries settled on chain, every balance equals the ledger`);
else {
  out("demo: FAILED");
  for (const p of result.problems) out(`  - ${p}`);
}
process.exit(result.ok ? 0 : 1);
