import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, waitForPort } from "./ports.ts";

function natsServerBinary(): string {
  for (const candidate of [process.env.NATS_SERVER_BIN, "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  return "nats-server"; // on PATH, or spawn fails with a clear ENOENT
}

/**
 * A throwaway nats-server with JetStream on its own port and store, owned by the test: it can be
 * stopped, killed and restarted (same port, same store, so streams survive a restart) without
 * touching the machine's NATS on 4222. scripts/ensure-services.sh installs the binary.
 */
export async function startNatsServer() {
  const port = await freePort();
  const storeDir = await mkdtemp(path.join(os.tmpdir(), "cashback-nats-"));
  let child: ChildProcess | undefined;

  const start = async () => {
    const proc = spawn(natsServerBinary(), ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    proc.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const exited = new Promise<never>((_, reject) => proc.once("exit", (code) => reject(new Error(`nats-server exited (${code}): ${stderr}`))));
    exited.catch(() => {});
    child = proc;
    await Promise.race([waitForPort(port), exited]);
  };
  const halt = async (signal: NodeJS.Signals) => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const gone = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await gone;
  };

  await start();
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    /** Graceful stop (SIGTERM). */
    stop: () => halt("SIGTERM"),
    /** Abrupt stop (SIGKILL): clients see the connection drop. */
    kill: () => halt("SIGKILL"),
    /** Starts it again after stop()/kill(), on the same port with the same store. */
    start,
    async restart() {
      await halt("SIGTERM");
      await start();
    },
    async close() {
      await halt("SIGTERM");
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}

export type NatsServer = Awaited<ReturnType<typeof startNatsServer>>;
