// Deploys CashbackToken to a running node and records it in deployments/<chainId>.json.
// Env: CHAIN_RPC_URL (default http://127.0.0.1:8545), DEPLOYER_PRIVATE_KEY and ADAPTER_PRIVATE_KEY
// (default: Hardhat dev accounts #0 and #1) or MINTER_ADDRESS instead of the adapter key.
import { getAddress, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { deployToken } from "./deploy-token.ts";
import { DEV_ADAPTER_KEY, DEV_DEPLOYER_KEY } from "@cashback/token";

const rpcUrl = process.env.CHAIN_RPC_URL ?? "http://127.0.0.1:8545";
const deployerKey = (process.env.DEPLOYER_PRIVATE_KEY ?? DEV_DEPLOYER_KEY) as Hex;
const minter = process.env.MINTER_ADDRESS
  ? getAddress(process.env.MINTER_ADDRESS)
  : privateKeyToAccount((process.env.ADAPTER_PRIVATE_KEY ?? DEV_ADAPTER_KEY) as Hex).address;

try {
  const { deployment } = await deployToken({ rpcUrl, deployerKey, minter, log: (l) => console.log(l) });
  console.log(JSON.stringify({ chainId: deployment.chainId, address: deployment.address, minter: deployment.minter }));
} catch (err) {
  console.error(`deploy failed: ${(err as Error).message.split("\n")[0]}`);
  process.exitCode = 1;
}
