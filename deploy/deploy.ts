// Deploys CashbackToken to a running node and records it in deployments/<chainId>.json.
// Env: CHAIN_RPC_URL (default http://127.0.0.1:8545), DEPLOYER_PRIVATE_KEY and ADAPTER_PRIVATE_KEY
// (default: Hardhat dev accounts #0 and #1) or MINTER_ADDRESS instead of the adapter key.
// ADAPTER_SIGNER_KEYS (comma-separated, the adapter's signer lanes) or MINTER_ADDRESSES: MINTER_ROLE
// is granted to every one of them; on the local chain (31337) each is also given 100 ETH for gas
// when it holds less than 1.
import { getAddress, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployToken } from "./deploy-token.ts";
import { DEV_ADAPTER_KEY, DEV_DEPLOYER_KEY, LOCAL_CHAIN_ID } from "@cashback/token";
import { createPublicClient, createWalletClient, http, parseEther, type Address } from "viem";

const rpcUrl = process.env.CHAIN_RPC_URL ?? "http://127.0.0.1:8545";
const deployerKey = (process.env.DEPLOYER_PRIVATE_KEY ?? DEV_DEPLOYER_KEY) as Hex;
const list = (v: string | undefined) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []);
const lanes = [...list(process.env.ADAPTER_SIGNER_KEYS).map((k) => privateKeyToAccount(k as Hex).address), ...list(process.env.MINTER_ADDRESSES).map((a) => getAddress(a))];
const minter =
  lanes[0] ??
  (process.env.MINTER_ADDRESS ? getAddress(process.env.MINTER_ADDRESS) : privateKeyToAccount((process.env.ADAPTER_PRIVATE_KEY ?? DEV_ADAPTER_KEY) as Hex).address);

try {
  const { deployment } = await deployToken({ rpcUrl, deployerKey, minter, extraMinters: lanes.slice(1), log: (l) => console.log(l) });
  if (deployment.chainId === LOCAL_CHAIN_ID) await fundLocally(lanes);
  console.log(JSON.stringify({ chainId: deployment.chainId, address: deployment.address, minter: deployment.minter }));
} catch (err) {
  console.error(`deploy failed: ${(err as Error).message.split("\n")[0]}`);
  process.exitCode = 1;
}

/** Gas money for every signer lane on the local chain that holds less than 1 ETH (the dev accounts hold more, so they are skipped). */
async function fundLocally(addresses: readonly Address[]) {
  const reader = createPublicClient({ transport: http(rpcUrl) });
  const wallet = createWalletClient({ account: privateKeyToAccount(deployerKey), transport: http(rpcUrl) });
  for (const to of addresses) {
    if ((await reader.getBalance({ address: to })) >= parseEther("1")) continue;
    await reader.waitForTransactionReceipt({ hash: await wallet.sendTransaction({ to, value: parseEther("100"), chain: null }) });
    console.log(`funded ${to} with 100 ETH for gas (local chain)`);
  }
}
