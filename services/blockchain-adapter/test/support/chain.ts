import { mkdtemp } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { network } from "hardhat";
import { privateKeyToAccount } from "viem/accounts";
import type { Address, Hex } from "viem";
import { deployToken } from "../../../../deploy/deploy-token.ts";
import { DEV_ADAPTER_KEY, DEV_DEPLOYER_KEY } from "@cashback/token";

/**
 * A real Hardhat chain in this process, served over HTTP like `npm run chain`, with the token
 * deployed. The adapter reaches it through a TCP proxy that tests can cut to simulate an outage
 * without losing the chain's state.
 */
export async function startTestChain() {
  const server = await network.createServer("default", "127.0.0.1", 0);
  const { port: nodePort } = await server.listen();
  const nodeUrl = `http://127.0.0.1:${nodePort}`;
  const proxy = await startProxy(nodePort);
  const deploymentsDir = await mkdtemp(path.join(os.tmpdir(), "cashback-deployments-"));
  const minter = privateKeyToAccount(DEV_ADAPTER_KEY).address;
  const { deployment } = await deployToken({ rpcUrl: nodeUrl, deployerKey: DEV_DEPLOYER_KEY, minter, deploymentsDir });

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

  return {
    rpcUrl: proxy.url,
    nodeUrl,
    deploymentsDir,
    token: deployment.address as Address,
    adminKey: DEV_DEPLOYER_KEY as Hex,
    adapterKey: DEV_ADAPTER_KEY as Hex,
    minter: minter as Address,
    proxy,
    rpc,
    async close() {
      await proxy.close();
      await server.close();
    },
  };
}

export type TestChain = Awaited<ReturnType<typeof startTestChain>>;

/** Forwards 127.0.0.1:<port> to the node; down() refuses connections until up(). */
async function startProxy(targetPort: number) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(targetPort, "127.0.0.1");
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });
  const down = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await listen();
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    down,
    up: listen,
    close: down,
  };
}
