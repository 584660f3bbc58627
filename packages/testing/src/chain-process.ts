import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createPublicClient, http, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { cashbackTokenAbi, DEV_ADAPTER_KEY, DEV_DEPLOYER_KEY } from "@cashback/token";
import { deployToken } from "../../../deploy/deploy-token.ts";
import { freePort } from "./ports.ts";
import { repoRoot } from "./service-process.ts";
import { startTcpProxy } from "./tcp-proxy.ts";

/**
 * A real `hardhat node` as a separate process (as `npm start` runs it) on a free port, with the
 * token deployed (MINTER_ROLE to Hardhat account #1, the adapter's dev key) and its record in a
 * temporary deployments directory. Clients reach it through `rpcUrl`, a TCP proxy the test can cut
 * (`proxy.down()/hang()/up()`); `nodeUrl` bypasses it. Same shape as startTestChain's result where
 * the two overlap, so tests can use either.
 */
export async function startChainProcess(opts: { blockTimeMs?: number } = {}) {
  const port = await freePort();
  const nodeUrl = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(path.join(repoRoot, "node_modules/.bin/hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const reader = createPublicClient({ transport: http(nodeUrl) });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (await reader.getChainId().then(() => true, () => false)) break;
    if (child.exitCode !== null) throw new Error(`hardhat node exited (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`hardhat node did not answer at ${nodeUrl} within 60 s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  async function rpc<T = unknown>(method: string, params: unknown[] = []): Promise<T> {
    const res = await fetch(nodeUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
    const body = (await res.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  }

  const deploymentsDir = await mkdtemp(path.join(os.tmpdir(), "cashback-deployments-"));
  const minter = privateKeyToAccount(DEV_ADAPTER_KEY).address;
  const { deployment } = await deployToken({ rpcUrl: nodeUrl, deployerKey: DEV_DEPLOYER_KEY, minter, deploymentsDir });
  if (opts.blockTimeMs) {
    await rpc("evm_setAutomine", [false]);
    await rpc("evm_setIntervalMining", [opts.blockTimeMs]);
  }
  const proxy = await startTcpProxy(port);
  const token = deployment.address as Address;

  return {
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
    reader,
    balanceOf(address: Address): Promise<bigint> {
      return reader.readContract({ address: token, abi: cashbackTokenAbi, functionName: "balanceOf", args: [address] });
    },
    async close() {
      await proxy.close();
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
    },
  };
}

export type ChainProcess = Awaited<ReturnType<typeof startChainProcess>>;
