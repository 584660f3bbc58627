/// <reference lib="dom" />
import { decodeFunctionResult, encodeFunctionData, erc20Abi, getAddress, toHex, type Address, type Hex } from "viem";
import { addChainParams, watchAssetParams, type PageConfig } from "./format.ts";

/** The EIP-1193 provider a wallet extension injects as window.ethereum (MetaMask and others). */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown }): Promise<unknown>;
  on?(event: string, listener: (...args: any[]) => void): void;
  removeListener?(event: string, listener: (...args: any[]) => void): void;
}

declare global {
  interface Window {
    ethereum?: Eip1193Provider;
  }
}

/** EIP-1193 / EIP-1474 error codes the page explains to the shopper. */
export const USER_REJECTED = 4001;
export const UNRECOGNIZED_CHAIN = 4902;

export function errorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Every wallet call the page makes, in one place. */
export class Wallet {
  constructor(readonly provider: Eip1193Provider) {}

  /** Asks the wallet to connect (a prompt the first time); the selected account. */
  async connect(): Promise<Address> {
    const accounts = (await this.provider.request({ method: "eth_requestAccounts" })) as string[];
    if (!accounts?.[0]) throw new Error("the wallet gave no account");
    return getAddress(accounts[0]);
  }

  /** The accounts the site may already see, without a prompt. */
  async accounts(): Promise<Address[]> {
    const accounts = ((await this.provider.request({ method: "eth_accounts" })) as string[]) ?? [];
    return accounts.map((a) => getAddress(a));
  }

  async chainId(): Promise<number> {
    return Number(await this.provider.request({ method: "eth_chainId" }));
  }

  /** personal_sign of the message's UTF-8 bytes, as EIP-4361 asks. */
  async signMessage(address: Address, message: string): Promise<Hex> {
    return (await this.provider.request({ method: "personal_sign", params: [toHex(message), address] })) as Hex;
  }

  /** Adds the chain (the wallet also offers to switch to it), switches if it did not, then watches CBK. */
  async setUp(config: PageConfig): Promise<{ switched: boolean; watched: boolean }> {
    await this.provider.request({ method: "wallet_addEthereumChain", params: [addChainParams(config)] });
    let switched = (await this.chainId()) === config.chain.id;
    if (!switched) {
      await this.provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: config.chain.id_hex }] });
      switched = (await this.chainId()) === config.chain.id;
    }
    let watched = false;
    if (config.token) watched = Boolean(await this.provider.request({ method: "wallet_watchAsset", params: watchAssetParams(config.token) }));
    return { switched, watched };
  }

  /** balanceOf(owner) through the wallet's own connection to the chain (eth_call). */
  async tokenBalance(token: Address, owner: Address): Promise<bigint> {
    const data = encodeFunctionData({ abi: erc20Abi, functionName: "balanceOf", args: [owner] });
    const result = (await this.provider.request({ method: "eth_call", params: [{ to: token, data }, "latest"] })) as Hex;
    return decodeFunctionResult({ abi: erc20Abi, functionName: "balanceOf", data: result });
  }
}
