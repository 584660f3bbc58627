import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getAddress, type Address, type Hash } from "viem";

/** What `deploy/deploy.ts` writes to `deployments/<chainId>.json`. */
export interface TokenDeployment {
  chainId: number;
  contract: "CashbackToken";
  address: Address;
  deployBlock: string; // decimal, JSON has no bigint
  deployTxHash: Hash;
  admin: Address;
  minter: Address;
  abiPath: string; // relative to the repository root
  deployedAt: string;
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const deploymentsDir = path.join(repoRoot, "deployments");

export function deploymentPath(chainId: number, dir = deploymentsDir): string {
  return path.join(dir, `${chainId}.json`);
}

/** Reads the deployment record for a chain, or returns undefined when there is none. */
export async function readDeployment(chainId: number, dir = deploymentsDir): Promise<TokenDeployment | undefined> {
  let text: string;
  try {
    text = await readFile(deploymentPath(chainId, dir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const record = JSON.parse(text) as TokenDeployment;
  return { ...record, address: getAddress(record.address) };
}
