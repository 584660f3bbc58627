import { createPublicClient, getAddress, http, isAddress, type Address } from "viem";
import { ConfigError, optionalStr, url } from "@cashback/runtime";
import { readDeployment } from "@cashback/token";
import { reconcile, type Report } from "./compare.ts";
import { readChain, readLedger } from "./sources.ts";

/** The variables the services use: the API's database, the chain, the token (else deployments/<chainId>.json). */
export interface ReconcileConfig {
  databaseUrl: string;
  rpcUrl: string;
  tokenAddress?: Address;
  tokenDeployBlock?: bigint;
  deploymentsDir?: string;
  blocksPerQuery?: number;
}

export function loadReconcileConfig(env: Record<string, string | undefined> = process.env): ReconcileConfig {
  const token = optionalStr(env, "TOKEN_ADDRESS");
  if (token && !isAddress(token, { strict: false })) throw new ConfigError("TOKEN_ADDRESS must be an address");
  const deployBlock = optionalStr(env, "TOKEN_DEPLOY_BLOCK");
  if (deployBlock && !/^\d+$/.test(deployBlock)) throw new ConfigError("TOKEN_DEPLOY_BLOCK must be a block number");
  const blocks = optionalStr(env, "LOG_QUERY_BLOCKS");
  if (blocks && !/^[1-9]\d*$/.test(blocks)) throw new ConfigError("LOG_QUERY_BLOCKS must be a positive whole number");
  return {
    databaseUrl: url(env, "API_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cashback_api"),
    rpcUrl: url(env, "CHAIN_RPC_URL", "http://127.0.0.1:8545"),
    tokenAddress: token ? getAddress(token) : undefined,
    tokenDeployBlock: deployBlock ? BigInt(deployBlock) : undefined,
    deploymentsDir: optionalStr(env, "DEPLOYMENTS_DIR"),
    blocksPerQuery: blocks ? Number(blocks) : undefined,
  };
}

/** Reads the ledger, then the chain (so every final entry had its chain event before the read), and compares. */
export async function runReconcile(config: ReconcileConfig): Promise<Report & { block: bigint; token: Address }> {
  let token = config.tokenAddress;
  let fromBlock = config.tokenDeployBlock ?? 0n;
  if (!token) {
    const chainId = await createPublicClient({ transport: http(config.rpcUrl) }).getChainId();
    const deployment = await readDeployment(chainId, config.deploymentsDir);
    if (!deployment) throw new ConfigError(`TOKEN_ADDRESS is unset and there is no deployments/${chainId}.json`);
    token = deployment.address;
    fromBlock = config.tokenDeployBlock ?? BigInt(deployment.deployBlock);
  }
  const ledger = await readLedger(config.databaseUrl);
  const chain = await readChain({ rpcUrl: config.rpcUrl, token, fromBlock, wallets: ledger.map((r) => r.wallet), blocksPerQuery: config.blocksPerQuery });
  return { ...reconcile(ledger, chain), block: chain.block, token };
}
