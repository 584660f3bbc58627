import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  createPublicClient,
  createWalletClient,
  getAddress,
  http,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { cashbackTokenAbi, deploymentPath, readDeployment, repoRoot, type TokenDeployment } from "@cashback/token";

const ARTIFACT = "artifacts/contracts/CashbackToken.sol/CashbackToken.json";

export interface DeployOptions {
  rpcUrl: string;
  deployerKey: Hex;
  minter: Address;
  /** Further signers of the adapter (ADAPTER_SIGNER_KEYS lanes): each gets MINTER_ROLE too. */
  extraMinters?: readonly Address[];
  deploymentsDir?: string;
  log?: (line: string) => void;
}

/**
 * Deploys CashbackToken and grants MINTER_ROLE to `minter`, or reuses the recorded deployment
 * when its contract still exists on this chain (a restarted Hardhat node starts empty, so the
 * record alone proves nothing).
 */
export async function deployToken(opts: DeployOptions): Promise<{ deployment: TokenDeployment; reused: boolean }> {
  const log = opts.log ?? (() => {});
  const account = privateKeyToAccount(opts.deployerKey);
  const publicClient = createPublicClient({ transport: http(opts.rpcUrl) }) as PublicClient;
  const wallet = createWalletClient({ account, transport: http(opts.rpcUrl) });
  const chainId = await publicClient.getChainId();

  const existing = await readDeployment(chainId, opts.deploymentsDir);
  if (existing && (await isLive(publicClient, existing))) {
    for (const m of [opts.minter, ...(opts.extraMinters ?? [])]) await ensureMinter(publicClient, wallet, existing.address, m, log);
    log(`reusing CashbackToken at ${existing.address} on chain ${chainId}`);
    return { deployment: { ...existing, minter: opts.minter }, reused: true };
  }

  const { bytecode } = JSON.parse(await readFile(path.join(repoRoot, ARTIFACT), "utf8")) as { bytecode: Hex };
  const hash = await wallet.deployContract({
    abi: cashbackTokenAbi,
    bytecode,
    args: [account.address, opts.minter],
    chain: null,
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success" || !receipt.contractAddress) throw new Error(`deployment ${hash} failed`);

  for (const m of opts.extraMinters ?? []) await ensureMinter(publicClient, wallet, getAddress(receipt.contractAddress), m, log);

  const deployment: TokenDeployment = {
    chainId,
    contract: "CashbackToken",
    address: getAddress(receipt.contractAddress),
    deployBlock: receipt.blockNumber.toString(),
    deployTxHash: hash,
    admin: account.address,
    minter: opts.minter,
    abiPath: ARTIFACT,
    deployedAt: new Date().toISOString(),
  };
  const file = deploymentPath(chainId, opts.deploymentsDir);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(deployment, null, 2) + "\n");
  log(`deployed CashbackToken at ${deployment.address} (block ${deployment.deployBlock}) -> ${path.relative(repoRoot, file)}`);
  return { deployment, reused: false };
}

async function isLive(client: PublicClient, d: TokenDeployment): Promise<boolean> {
  const code = await client.getCode({ address: d.address });
  if (!code || code === "0x") return false;
  // Same address, other contract (a reset chain redeployed by someone else) counts as not ours.
  const symbol = await client.readContract({ address: d.address, abi: cashbackTokenAbi, functionName: "symbol" }).catch(() => undefined);
  return symbol === "CBK";
}

async function ensureMinter(
  client: PublicClient,
  wallet: ReturnType<typeof createWalletClient>,
  token: Address,
  minter: Address,
  log: (line: string) => void,
) {
  const role = await client.readContract({ address: token, abi: cashbackTokenAbi, functionName: "MINTER_ROLE" });
  if (await client.readContract({ address: token, abi: cashbackTokenAbi, functionName: "hasRole", args: [role, minter] })) return;
  const hash = await wallet.writeContract({
    address: token,
    abi: cashbackTokenAbi,
    functionName: "grantRole",
    args: [role, minter],
    chain: null,
    account: wallet.account!,
  });
  await client.waitForTransactionReceipt({ hash });
  log(`granted MINTER_ROLE to ${minter}`);
}
