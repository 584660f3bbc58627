import { network } from "hardhat";
import { deployedChain } from "./deployed-chain.ts";

/**
 * A real Hardhat chain in this process, served over HTTP like `npm run chain`, with the token
 * deployed (see deployedChain). Clients reach it through `rpcUrl`, a TCP proxy that tests can cut
 * to simulate an outage without losing the chain's state; `nodeUrl` bypasses the proxy.
 */
export async function startTestChain(opts: { blockTimeMs?: number } = {}) {
  const server = await network.createServer("default", "127.0.0.1", 0);
  const { port } = await server.listen();
  return deployedChain(port, { blockTimeMs: opts.blockTimeMs, closeNode: () => server.close() });
}

export type TestChain = Awaited<ReturnType<typeof startTestChain>>;
