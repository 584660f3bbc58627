// A small process supervisor for `npm start` (scripts/start.ts): starts services in order, each
// once the previous one is ready, prefixes their output with [name], restarts one that exits with
// exponential backoff (a crash never takes the others down), and stops them all, last started
// first, on request.
//
// Each service runs as `node --import tsx <entry>` in its own process group, so one signal reaches
// every process under it (e.g. scripts/chain.ts -> hardhat node); no npm in between, so signals
// arrive directly and npm prints nothing.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

export interface ServiceSpec {
  name: string;
  /** TypeScript entry file, relative to the working directory. */
  entry: string;
  env?: Record<string, string>;
  /** Resolves true once the service serves (polled every 250 ms). */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Restarted after these restart (their state is what it was built on). */
  restartWith?: string[];
  /** Said once when it is restarted after a crash. */
  restartWarning?: string;
}

interface Running {
  spec: ServiceSpec;
  child?: ChildProcess;
  exited?: Promise<number>;
  startedAt: number;
  failures: number;
  restarting: boolean;
}

const RESET_AFTER_MS = 60_000; // up this long: the next crash starts the backoff over
const MAX_EARLY_FAILURES = 6; // crashing before ready this many times in a row at start-up: give up

export class Supervisor {
  private readonly running = new Map<string, Running>();
  private readonly order: string[] = [];
  private stopping = false;
  private readonly width: number;
  private readonly colors: number[];

  constructor(
    private readonly specs: ServiceSpec[],
    private readonly opts: { cwd: string; baseEnv: NodeJS.ProcessEnv },
  ) {
    this.width = Math.max(...specs.map((s) => s.name.length), "start".length);
    this.colors = process.stdout.isTTY ? [36, 35, 33, 32, 34, 31] : [];
  }

  say(line: string): void {
    process.stdout.write(`${this.prefix("start", -1)} ${line}\n`);
  }

  /** Starts every service in order, each once the previous one is ready. Throws if one never gets there. */
  async startAll(): Promise<void> {
    for (const spec of this.specs) {
      if (this.stopping) return;
      const r: Running = { spec, startedAt: 0, failures: 0, restarting: false };
      this.running.set(spec.name, r);
      this.order.push(spec.name);
      for (;;) {
        this.say(`starting ${spec.name}`);
        this.launch(r);
        try {
          await this.waitReady(r);
          this.say(`${spec.name} is ready`);
          break;
        } catch (err) {
          if (this.stopping) return;
          r.failures++;
          if (r.failures >= MAX_EARLY_FAILURES) throw new Error(`${spec.name} did not start (${(err as Error).message}), ${r.failures} times in a row`);
          const delay = backoffMs(r.failures);
          this.say(`${spec.name}: ${(err as Error).message}; trying again in ${(delay / 1000).toFixed(1)} s`);
          await this.halt(r);
          await sleep(delay);
        }
      }
    }
  }

  /** Stops every service, last started first: SIGTERM to its process group, SIGKILL after 15 s. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const name of [...this.order].reverse()) await this.halt(this.running.get(name)!);
  }

  private launch(r: Running): void {
    const index = this.specs.indexOf(r.spec);
    const child = spawn(process.execPath, ["--import", "tsx", r.spec.entry], {
      cwd: this.opts.cwd,
      detached: true, // own process group: see the note at the top
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...this.opts.baseEnv, ...r.spec.env },
    });
    r.child = child;
    r.startedAt = Date.now();
    for (const [stream, out] of [
      [child.stdout!, process.stdout],
      [child.stderr!, process.stderr],
    ] as const) {
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => out.write(`${this.prefix(r.spec.name, index)} ${line}\n`));
    }
    r.exited = new Promise((resolve) =>
      child.on("exit", (code, signal) => {
        const c = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 1);
        // let its last lines through first ('close': pipes drained), unless a grandchild holds them
        const t = setTimeout(() => resolve(c), 500);
        child.once("close", () => (clearTimeout(t), resolve(c)));
      }),
    );
    const mine = child;
    void r.exited.then((code) => {
      if (r.child === mine) void this.onExit(r, code);
    });
  }

  /** A service that was ready exited by itself: restart it (and what was built on it) with backoff. */
  private async onExit(r: Running, code: number): Promise<void> {
    if (this.stopping || r.restarting || !this.order.includes(r.spec.name)) return;
    if (Date.now() - r.startedAt > RESET_AFTER_MS) r.failures = 0;
    r.failures++;
    const delay = backoffMs(r.failures);
    this.say(`${r.spec.name} exited with code ${code}; restarting it in ${(delay / 1000).toFixed(1)} s (crash #${r.failures}); the others keep running`);
    if (r.spec.restartWarning) this.say(r.spec.restartWarning);
    await this.restart(r, delay);
  }

  private async restart(r: Running, delay: number): Promise<void> {
    r.restarting = true;
    await sleep(delay);
    try {
      while (!this.stopping) {
        this.launch(r);
        try {
          await this.waitReady(r);
          this.say(`${r.spec.name} is ready again`);
          break;
        } catch (err) {
          if (this.stopping) return;
          await this.halt(r);
          const again = backoffMs(++r.failures);
          this.say(`${r.spec.name}: ${(err as Error).message}; trying again in ${(again / 1000).toFixed(1)} s`);
          await sleep(again);
        }
      }
    } finally {
      r.restarting = false;
    }
    for (const other of this.specs.filter((s) => s.restartWith?.includes(r.spec.name))) {
      const o = this.running.get(other.name);
      if (!o || this.stopping) continue;
      this.say(`restarting ${other.name}, which depends on ${r.spec.name}`);
      await this.halt(o);
      await this.restart(o, 0);
    }
  }

  private async waitReady(r: Running): Promise<void> {
    const deadline = Date.now() + (r.spec.readyTimeoutMs ?? 120_000);
    let exitCode: number | undefined;
    void r.exited!.then((c) => (exitCode = c));
    for (;;) {
      if (this.stopping) throw new Error("stopping");
      if (await r.spec.ready().catch(() => false)) return;
      if (exitCode !== undefined) throw new Error(`exited with code ${exitCode} before it was ready`);
      if (Date.now() > deadline) throw new Error(`not ready within ${(r.spec.readyTimeoutMs ?? 120_000) / 1000} s`);
      await sleep(250);
    }
  }

  private async halt(r: Running): Promise<void> {
    const child = r.child;
    r.child = undefined; // its exit is expected now
    const pid = child?.pid;
    if (pid === undefined || !groupAlive(pid)) return;
    signalGroup(pid, "SIGTERM");
    const deadline = Date.now() + 15_000;
    while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
    if (groupAlive(pid)) {
      this.say(`${r.spec.name} did not stop within 15 s; killing it`);
      signalGroup(pid, "SIGKILL");
    }
  }

  private prefix(name: string, i: number): string {
    const tag = `[${name}]`.padEnd(this.width + 2);
    const color = this.colors.length ? (i < 0 ? 1 : this.colors[i % this.colors.length]) : undefined;
    return color ? `\x1b[${color}m${tag}\x1b[0m` : tag;
  }
}

/** 1 s doubling to 30 s. */
function backoffMs(failures: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, failures - 1));
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}
