import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createPublicClient, http, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { cashbackTokenAbi, DEV_ADAPTER_KEY, DEV_DEPLOYER_KEY } from "@cashback/token";
import { deployToken } from "../../../deploy/deploy-token.ts";
import { startTcpProxy } from "./tcp-proxy.ts";

/**
 * What startTestChain (in-process) and startChainProcess (a `hardhat node`) share once their node
 * answers on `nodePort`: the token deployed (MINTER_ROLE to Hardhat account #1, the adapter's dev
 * key) with its record in a temporary deployments directory, a TCP proxy in front of the node
 * that tests can cut (`proxy.down()`, `proxy.hang()`) without losing the chain's state, and the
 * handle tests use. `closeNode` stops the node after the proxy.
 */
export async function deployedChain(nodePort: number, opts: { blockTimeMs?: number; closeNode: () => Promise<void> }) {
  const nodeUrl = `http://127.0.0.1:${nodePort}`;
  const deploymentsDir = await mkdtemp(path.join(os.tmpdir(), "cashback-deployments-"));
  const minter = privateKeyToAccount(DEV_ADAPTER_KEY).address;
  const { deployment } = await deployToken({ rpcUrl: nodeUrl, deployerKey: DEV_DEPLOYER_KEY, minter, deploymentsDir });
  const token = deployment.address as Address;
  const reader = createPublicClient({ transport: http(nodeUrl) });

  /** A JSON-RPC call straight to the node (bypassing the proxy), e.g. evm_mine. */
  async function rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    const res = await fetch(nodeUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    const body = (await res.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  }

  if (opts.blockTimeMs) {
    // A real chain's pace: a block every blockTimeMs, transactions wait in the mempool until then.
    await rpc("evm_setAutomine", [false]);
    await rpc("evm_setIntervalMining", [opts.blockTimeMs]);
  }
  const proxy = await startTcpProxy(nodePort);

  return {
    /** Through the proxy: what the code under test should use. */
    rpcUrl: proxy.url,
    nodeUrl,
    chainId: deployment.chainId,
    deploymentsDir,
    token,
    deployBlock: BigInt(deployment.deployBlock),
    adminKey: DEV_DEPLOYER_KEY as Hex,
    adapterKey: DEV_ADAPTER_KEY as Hex,
    minter: minter as Address,
    proxy,
    rpc,
    /** A viem client straight to the node: reads that do not go through any code under test. */
    reader,
    balanceOf(address: Address): Promise<bigint> {
      return reader.readContract({ address: token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [address] });
    },
    async close() {
      await proxy.close();
      await opts.closeNode();
    },
  };
}
