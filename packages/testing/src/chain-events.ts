import { encodeFunctionData, keccak256, stringToHex, toHex, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { cashbackTokenAbi } from "@cashback/token";
import type { TestChain } from "./chain.ts";

/** The on-chain id for an idempotency key, as the adapter and the contract compute it. */
export const chainIdOf = (idempotencyKey: string): Hex => keccak256(stringToHex(idempotencyKey));

/**
 * CashbackMinted events read straight from the node (`chain.reader`), optionally for one mint id:
 * what tests assert against, rather than any service's own records.
 */
export async function mintedEvents(chain: TestChain, mintId?: Hex) {
  const logs = await chain.reader.getContractEvents({
    address: chain.token,
    abi: cashbackTokenAbi,
    eventName: "CashbackMinted",
    args: mintId ? { mintId } : undefined,
    fromBlock: chain.deployBlock,
    toBlock: "latest",
  });
  return logs.map((l) => ({ mintId: l.args.mintId as Hex, to: l.args.to as Address, amount: l.args.amount as bigint, txHash: l.transactionHash, blockNumber: l.blockNumber }));
}

/** CashbackClawedBack events read straight from the node, optionally for one ref id. */
export async function clawedBackEvents(chain: TestChain, refId?: Hex) {
  const logs = await chain.reader.getContractEvents({
    address: chain.token,
    abi: cashbackTokenAbi,
    eventName: "CashbackClawedBack",
    args: refId ? { refId } : undefined,
    fromBlock: chain.deployBlock,
    toBlock: "latest",
  });
  return logs.map((l) => ({ refId: l.args.refId as Hex, from: l.args.from as Address, amount: l.args.amount as bigint, txHash: l.transactionHash, blockNumber: l.blockNumber }));
}

/**
 * Grants or revokes the adapter's MINTER_ROLE as the token's admin (impersonated on the node), to
 * make the contract refuse mints for a while.
 */
export async function setMinterRole(chain: TestChain, granted: boolean, account: Address = chain.minter): Promise<void> {
  const admin = privateKeyToAccount(chain.adminKey).address;
  await chain.rpc("hardhat_impersonateAccount", [admin]);
  const data = encodeFunctionData({
    abi: cashbackTokenAbi,
    functionName: granted ? "grantRole" : "revokeRole",
    args: [keccak256(toHex("MINTER_ROLE")), account],
  });
  const hash = await chain.rpc<Hex>("eth_sendTransaction", [{ from: admin, to: chain.token, data }]);
  await chain.reader.waitForTransactionReceipt({ hash });
}

/**
 * A fresh signer for the token: `wei` of gas money (default 100 ETH) and MINTER_ROLE, as the deploy
 * script grants each of ADAPTER_SIGNER_KEYS. Returns its private key.
 */
export async function freshMinter(chain: TestChain, wei = 10n ** 20n): Promise<Hex> {
  const key = generatePrivateKey();
  const address = privateKeyToAccount(key).address;
  await chain.rpc("hardhat_setBalance", [address, toHex(wei)]);
  await setMinterRole(chain, true, address);
  return key;
}

/** Burns `amount` from `holder`'s balance with a plain transfer away (impersonated), e.g. to make a clawback find too little. */
export async function spendTokens(chain: TestChain, holder: Address, amount: bigint, to: Address = "0x000000000000000000000000000000000000dEaD"): Promise<void> {
  await chain.rpc("hardhat_impersonateAccount", [holder]);
  await chain.rpc("hardhat_setBalance", [holder, "0x56BC75E2D63100000"]); // 100 ETH for gas
  const data = encodeFunctionData({ abi: cashbackTokenAbi, functionName: "transfer", args: [to, amount] });
  const hash = await chain.rpc<Hex>("eth_sendTransaction", [{ from: holder, to: chain.token, data }]);
  await chain.reader.waitForTransactionReceipt({ hash });
}
