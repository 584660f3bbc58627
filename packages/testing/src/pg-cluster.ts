import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { appendFile, chown, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports.ts";

const run = promisify(execFile);

/** The newest Postgres server binaries on the machine (PG_BIN overrides): /usr/lib/postgresql/<version>/bin. */
export function postgresBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, "bin", "initdb"))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`no Postgres server binaries under ${root} (install postgresql, or set PG_BIN)`);
  return path.join(root, newest, "bin");
}

/**
 * A throwaway Postgres cluster owned by a test, on its own port and data directory, so the test
 * can stop, restart or kill it without touching the machine's shared Postgres on 5432. initdb
 * and pg_ctl refuse to run as root, so under root (CI) they run as the `postgres` user
 * (`runuser -u postgres --`) in a temporary directory owned by it. Trust authentication, user
 * `postgres`; fsync off (throwaway data; a killed server still keeps what it committed, as the OS has it).
 */
export async function startPgCluster() {
  const bin = postgresBinDir();
  const port = await freePort();
  const root = await mkdtemp(path.join(os.tmpdir(), "cashback-pg-"));
  const dataDir = path.join(root, "data");
  const logFile = path.join(root, "postgres.log");
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    await chown(root, uid, gid);
  }
  const pgTool = (tool: string, args: string[]) => {
    const file = path.join(bin, tool);
    const env = { ...process.env, LC_ALL: "C", LANG: "C" };
    return asRoot ? run("runuser", ["-u", "postgres", "--", file, ...args], { env }) : run(file, args, { env });
  };

  await pgTool("initdb", ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
  const settings = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${root}'`, // not /var/run/postgresql, which the shared cluster uses
    "fsync = off",
    "full_page_writes = off",
    "max_connections = 100",
    "shared_buffers = 32MB",
  ];
  await appendFile(path.join(dataDir, "postgresql.conf"), `\n# cashback test cluster\n${settings.join("\n")}\n`);

  const url = (database = "postgres") => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  const postmasterPid = async (): Promise<number | undefined> => {
    try {
      const pid = Number((await readFile(path.join(dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const start = async () => {
    await pgTool("pg_ctl", ["-D", dataDir, "-l", logFile, "-w", "-t", "60", "start"]);
  };
  const stop = async (mode: "fast" | "immediate" = "fast") => {
    if (!(await postmasterPid())) return;
    await pgTool("pg_ctl", ["-D", dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
  };

  const kill = async () => {
    const pid = await postmasterPid();
    if (!pid) return;
    const family = [pid, ...childrenOf(pid)];
    for (const p of family) {
      try {
        process.kill(p, "SIGKILL");
      } catch {
        // already gone
      }
    }
    while (family.some(alive)) await new Promise((r) => setTimeout(r, 20));
    // The dead postmaster may linger as a zombie until init reaps it, and Postgres takes a
    // live PID in its lock files for a running server: remove the stale locks, as after a crash.
    for (const file of [path.join(dataDir, "postmaster.pid"), path.join(root, `.s.PGSQL.${port}.lock`), path.join(root, `.s.PGSQL.${port}`)]) {
      await rm(file, { force: true });
    }
  };

  await start();
  return {
    port,
    dataDir,
    /** Connection URL for a database of this cluster (default `postgres`). */
    url,
    /** Graceful stop (clients are disconnected: SQLSTATE 57P01). */
    stop: () => stop("fast"),
    start,
    async restart() {
      await stop("fast");
      await start();
    },
    /** SIGKILL to the postmaster and its backends, as in a crash; start() then runs crash recovery. */
    kill,
    /** The server's log (startup, shutdown, crash recovery), for failure messages. */
    log: () => readFile(logFile, "utf8").catch(() => ""),
    /** Stops it (killing it if pg_ctl can not) and removes its data: no server outlives the test. */
    async close() {
      await stop("immediate").catch(kill);
      await rm(root, { recursive: true, force: true });
    },
  };
}

export type PgCluster = Awaited<ReturnType<typeof startPgCluster>>;

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/** Running (a zombie left for a parent that does not reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}
