// `npm run chain`: a local Hardhat node on 127.0.0.1:8545 (chain id 31337) with CashbackToken
// deployed. If a node already answers there, it only deploys (or reuses the deployment).
// Env: CHAIN_PORT (8545), CHAIN_HOST (127.0.0.1; 0.0.0.0 inside a container, see docker-compose.yml).
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { rpcAnswers } from "./rpc-answers.ts";

const port = Number(process.env.CHAIN_PORT ?? 8545);
const host = process.env.CHAIN_HOST ?? "127.0.0.1";
const rpcUrl = `http://127.0.0.1:${port}`; // this process reaches the node over loopback either way


function run(cmd: string, args: string[]) {
  return spawn(cmd, args, { stdio: "inherit", env: { ...process.env, CHAIN_RPC_URL: rpcUrl } });
}

let node: ReturnType<typeof spawn> | undefined;
let stopping = false; // set on Ctrl-C / SIGTERM: the node's exit is then expected
if (await rpcAnswers(rpcUrl)) {
  console.log(`chain: a node already answers at ${rpcUrl}`);
} else {
  node = spawn("hardhat", ["node", "--hostname", host, "--port", String(port)], {
    stdio: ["ignore", "ignore", "inherit"], // its per-request log is noise; errors still show
  });
  node.on("exit", (code, signal) => {
    if (stopping) process.exit(0);
    console.error(`chain: hardhat node exited (${code ?? signal})`);
    process.exit(code ?? 1);
  });
  for (let i = 0; !(await rpcAnswers(rpcUrl)); i++) {
    if (i > 120) {
      node.kill(); // don't leave it holding the port
      throw new Error(`hardhat node did not answer at ${rpcUrl} within 60 s`);
    }
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
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      stopping = true;
      node.kill(signal);
    });
  }
  console.log("chain: ready; Ctrl-C stops the node");
}
