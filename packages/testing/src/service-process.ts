import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * One of our services as a real separate process (`node --import tsx <entry>`), as it runs in
 * production, so a test can SIGKILL it mid-work and start it again with the same environment.
 * Its output is kept (last 200 lines) for failure messages; `onLine` sees every line.
 */
export function serviceProcess(opts: {
  name: string;
  /** Entry file relative to the repository root, e.g. "services/blockchain-adapter/src/main.ts". */
  entry: string;
  env: Record<string, string>;
  /** Resolves true when the service is ready (e.g. GET /readyz answers 200). */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  onLine?: (line: string) => void;
}) {
  let child: ChildProcess | undefined;
  const lines: string[] = [];
  let starts = 0;

  const start = async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, opts.entry)], {
      cwd: repoRoot,
      env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "info", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    starts++;
    child = proc;
    for (const stream of [proc.stdout!, proc.stderr!]) {
      let rest = "";
      stream.on("data", (d: Buffer) => {
        const parts = (rest + d.toString()).split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          if (lines.length > 200) lines.shift();
          opts.onLine?.(line);
        }
      });
    }
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    while (!(await opts.ready().catch(() => false))) {
      if (proc.exitCode !== null) throw new Error(`${opts.name} exited with ${proc.exitCode} before it was ready:\n${lines.slice(-30).join("\n")}`);
      if (Date.now() > deadline) throw new Error(`${opts.name} not ready after ${opts.readyTimeoutMs ?? 60_000} ms:\n${lines.slice(-30).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** How it ended: its exit code, or the signal that ended it (SIGKILL after the grace period: it hung). */
  const halt = async (signal: NodeJS.Signals, graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number } | undefined> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return undefined;
    const began = Date.now();
    const gone = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once("exit", (code, sig) => resolve({ code, signal: sig })));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    const exit = await gone;
    clearTimeout(timer);
    return { ...exit, ms: Date.now() - began };
  };

  return {
    name: opts.name,
    start,
    /** SIGTERM, then SIGKILL after the grace period. */
    stop: async (graceMs?: number): Promise<void> => void (await halt("SIGTERM", graceMs)),
    /** stop() that says how it ended (exit code 0 = a clean shutdown; SIGKILL = it outlived the grace period). */
    terminate: (graceMs?: number) => halt("SIGTERM", graceMs),
    /** SIGKILL: no chance to clean up, as in a crash. */
    kill: async (): Promise<void> => void (await halt("SIGKILL")),
    async restart() {
      await halt("SIGTERM");
      await start();
    },
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    get starts() {
      return starts;
    },
    /** The last lines it printed (stdout and stderr). */
    output: () => lines.join("\n"),
  };
}

export type ServiceProcess = ReturnType<typeof serviceProcess>;

/** GET url answers 2xx within 2 s. */
export async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}
