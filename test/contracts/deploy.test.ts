import { mkdtemp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { network } from "hardhat";
import { createPublicClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { cashbackTokenAbi } from "@cashback/token";
import { deployToken } from "../../deploy/deploy-token.ts";
import { DEV_ADAPTER_KEY, DEV_DEPLOYER_KEY } from "@cashback/token";

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A fresh chain served over HTTP, as `npm run chain` serves one. */
async function startNode() {
  const server = await network.createServer("default", "127.0.0.1", 0);
  servers.push(server);
  const { port } = await server.listen();
  return `http://127.0.0.1:${port}`;
}

const minter = privateKeyToAccount(DEV_ADAPTER_KEY).address;

describe("deploy script", () => {
  it("deploys, grants MINTER_ROLE to the adapter and records the deployment", async () => {
    const rpcUrl = await startNode();
    const deploymentsDir = await mkdtemp(path.join(os.tmpdir(), "deployments-"));
    const { deployment, reused } = await deployToken({ rpcUrl, deployerKey: DEV_DEPLOYER_KEY, minter, deploymentsDir });

    expect(reused).toBe(false);
    const record = JSON.parse(await readFile(path.join(deploymentsDir, "31337.json"), "utf8"));
    expect(record).toMatchObject({ chainId: 31337, address: deployment.address, minter, abiPath: expect.stringContaining("CashbackToken.json") });
    expect(BigInt(record.deployBlock)).toBeGreaterThan(0n);
    const client = createPublicClient({ transport: http(rpcUrl) });
    const role = await client.readContract({ address: deployment.address, abi: cashbackTokenAbi, functionName: "MINTER_ROLE" });
    expect(await client.readContract({ address: deployment.address, abi: cashbackTokenAbi, functionName: "hasRole", args: [role, minter] })).toBe(true);
  });

  it("grants MINTER_ROLE to every signer lane, on a fresh deployment and on a reused one", async () => {
    const rpcUrl = await startNode();
    const deploymentsDir = await mkdtemp(path.join(os.tmpdir(), "deployments-"));
    const lane = (n: number) => privateKeyToAccount(`0x${String(n).repeat(64)}` as `0x${string}`).address;
    const { deployment } = await deployToken({ rpcUrl, deployerKey: DEV_DEPLOYER_KEY, minter, extraMinters: [lane(2)], deploymentsDir });
    await deployToken({ rpcUrl, deployerKey: DEV_DEPLOYER_KEY, minter, extraMinters: [lane(2), lane(3)], deploymentsDir });
    const client = createPublicClient({ transport: http(rpcUrl) });
    const role = await client.readContract({ address: deployment.address, abi: cashbackTokenAbi, functionName: "MINTER_ROLE" });
    const has = (a: `0x${string}`) => client.readContract({ address: deployment.address, abi: cashbackTokenAbi, functionName: "hasRole", args: [role, a] });
    expect([await has(minter), await has(lane(2)), await has(lane(3)), await has(lane(4))]).toEqual([true, true, true, false]);
  });

  it("reuses a deployment that still exists, and deploys again on a new chain", async () => {
    const deploymentsDir = await mkdtemp(path.join(os.tmpdir(), "deployments-"));
    const first = await startNode();
    const a = await deployToken({ rpcUrl: first, deployerKey: DEV_DEPLOYER_KEY, minter, deploymentsDir });
    const b = await deployToken({ rpcUrl: first, deployerKey: DEV_DEPLOYER_KEY, minter, deploymentsDir });
    expect(b.reused).toBe(true);
    expect(b.deployment.address).toBe(a.deployment.address);
    const client = createPublicClient({ transport: http(first) });
    expect(await client.getTransactionCount({ address: privateKeyToAccount(DEV_DEPLOYER_KEY).address })).toBe(1); // nothing sent twice

    // A restarted node starts empty: the record alone must not be trusted.
    const second = await startNode();
    const c = await deployToken({ rpcUrl: second, deployerKey: DEV_DEPLOYER_KEY, minter, deploymentsDir });
    expect(c.reused).toBe(false);
    expect(await createPublicClient({ transport: http(second) }).getCode({ address: c.deployment.address })).toMatch(/^0x[0-9a-f]{10,}/);
  });
});
