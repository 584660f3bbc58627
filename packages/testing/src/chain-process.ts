import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createPublicClient, http } from "viem";
import { deployedChain } from "./deployed-chain.ts";
import { freePort } from "./ports.ts";
import { repoRoot } from "./service-process.ts";

/**
 * A real `hardhat node` as a separate process (as `npm start` runs it) on a free port, with the
 * token deployed (see deployedChain). Clients reach it through `rpcUrl`, a TCP proxy the test can cut
 * (`proxy.down()/hang()/up()`); `nodeUrl` bypasses it. The same handle as startTestChain returns,
 * so tests can use either.
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

  return deployedChain(port, {
    blockTimeMs: opts.blockTimeMs,
    async closeNode() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await gone;
      }
    },
  });
}

export type ChainProcess = Awaited<ReturnType<typeof startChainProcess>>;
