import { numberToHex } from "viem";
import { readDeployment } from "@cashback/token";
import type { ShopperConfig } from "../config.ts";

/** CashbackToken's own constants (contracts/CashbackToken.sol: ERC20("Cashback Token", "CBK"), 18 decimals). */
export const TOKEN = { name: "Cashback Token", symbol: "CBK", decimals: 18 } as const;

export interface PageConfig {
  chain: {
    id: number;
    /** As wallet_addEthereumChain wants it: 0x-prefixed hex. */
    id_hex: string;
    name: string;
    rpc_url: string;
    native_currency: { name: string; symbol: string; decimals: number };
    explorer_url: string | null;
  };
  token: { address: string; name: string; symbol: string; decimals: number } | null;
  /** Why `token` is null: no address configured and no deployment record for the chain. */
  token_unavailable: string | null;
  sign_in: { statement: string; nonce_ttl_seconds: number; session_ttl_seconds: number };
}

export const SIGN_IN_STATEMENT = "Sign in to see your CBK cashback. This signature costs nothing and sends no transaction.";

/**
 * What the shopper page needs to know: the chain (to add it to the wallet), the token (to watch
 * it and read the balance), the sign-in rules. The token address is TOKEN_ADDRESS or, without it,
 * read from deployments/<chainId>.json on every call, so a redeployment is picked up without a
 * restart.
 */
export async function pageConfig(config: ShopperConfig, deploymentsDir?: string): Promise<PageConfig> {
  let address = config.tokenAddress;
  let unavailable: string | null = null;
  if (!address) {
    try {
      address = (await readDeployment(config.chainId, deploymentsDir))?.address;
      if (!address) unavailable = `no deployment record for chain ${config.chainId} (deployments/${config.chainId}.json): deploy the token (npm run deploy) or set TOKEN_ADDRESS`;
    } catch (err) {
      unavailable = `the deployment record for chain ${config.chainId} can not be read (${(err as Error).message}); set TOKEN_ADDRESS`;
    }
  }
  return {
    chain: {
      id: config.chainId,
      id_hex: numberToHex(config.chainId),
      name: config.chainName,
      rpc_url: config.walletRpcUrl,
      native_currency: { name: "Ether", symbol: "ETH", decimals: 18 },
      explorer_url: config.explorerUrl ?? null,
    },
    token: address ? { address, ...TOKEN } : null,
    token_unavailable: unavailable,
    sign_in: { statement: SIGN_IN_STATEMENT, nonce_ttl_seconds: config.nonceTtlMs / 1000, session_ttl_seconds: config.sessionTtlMs / 1000 },
  };
}
