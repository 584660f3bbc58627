// `npm run chain`: a local Hardhat node on 127.0.0.1:8545 (chain id 31337) with CashbackToken
// deployed. If a node already answers there, it only deploys (or reuses the deployment).
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

const port = Number(process.env.CHAIN_PORT ?? 8545);
const rpcUrl = `http://127.0.0.1:${port}`;

async function rpcAnswers(): Promise<boolean> {
  try {
    const res = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
    });
    return res.ok;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[]) {
  return spawn(cmd, args, { stdio: "inherit", env: { ...process.env, CHAIN_RPC_URL: rpcUrl } });
}

let node: ReturnType<typeof spawn> | undefined;
if (await rpcAnswers()) {
  console.log(`chain: a node already answers at ${rpcUrl}`);
} else {
  node = spawn("hardhat", ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "inherit"], // its per-request log is noise; errors still show
  });
  node.on("exit", (code) => {
    console.error(`chain: hardhat node exited (${code})`);
    process.exit(code ?? 1);
  });
  for (let i = 0; !(await rpcAnswers()); i++) {
    if (i > 120) throw new Error(`hardhat node did not answer at ${rpcUrl} within 60 s`);
    await sleep(500);
  }
  console.log(`chain: hardhat node listening at ${rpcUrl} (chain id 31337)`);
}

const deploy = run("tsx", ["deploy/deploy.ts"]);
const code: number = await new Promise((resolve) => deploy.on("exit", (c) => resolve(c ?? 1)));
if (code !== 0) {
  node?.kill();
  process.exit(code);
}
if (node) {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => node.kill(signal));
  console.log("chain: ready; Ctrl-C stops the node");
}
