// Figures and the progress line of bench/pipeline.ts.
import { readdirSync, readFileSync } from "node:fs";

export interface Sample {
  accepted: number;
  acceptedPerS: number;
  confirmed: number;
  confirmedPerS: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Nearest-rank percentile of an ascending list (NaN when empty). */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * A progress bar on stderr, rewritten in place on a terminal; in a log, one line every 2 s.
 * The bar fills with minted entries out of `total` (or out of accepted when open-ended).
 */
export class Progress {
  private readonly tty = process.stderr.isTTY;
  private readonly started = Date.now();
  private lastLine = 0;
  private shown = false;

  constructor(
    private readonly phase: string,
    private readonly total?: number,
  ) {}

  update(c: { sent: number; accepted: number; minted: number; errors: number }): void {
    const of = this.total ?? Math.max(c.accepted, 1);
    const width = 30;
    const filled = Math.min(width, Math.round((c.minted / of) * width));
    const secs = (Date.now() - this.started) / 1_000;
    const line = `${this.phase.padEnd(5)} [${"#".repeat(filled)}${".".repeat(width - filled)}] sent ${c.sent}  accepted ${c.accepted}  minted ${c.minted}${c.errors ? `  errors ${c.errors}` : ""}  ${secs.toFixed(1)} s  (${(c.minted / Math.max(secs, 0.001)).toFixed(0)} minted/s)`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line}`);
      this.shown = true;
    } else if (Date.now() - this.lastLine >= 2_000) {
      process.stderr.write(`${line}\n`);
      this.lastLine = Date.now();
    }
  }

  note(message: string): void {
    if (this.shown) process.stderr.write("\n");
    this.shown = false;
    process.stderr.write(`${this.phase}: ${message}\n`);
  }

  done(): void {
    if (this.shown) process.stderr.write("\n");
    this.shown = false;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from the 3rd on
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime (14th, 15th)
  } catch {
    return 0;
  }
}

/** The pid of the process whose command line contains every one of `parts` (e.g. the hardhat node on its port). */
export function findPid(parts: string[]): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (parts.every((p) => cmd.includes(p))) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux
