// `npm run dlq -- list | replay <seq> | replay --all`: the operator's view of CASHBACK_DLQ.
// Connects to NATS_URL (default nats://127.0.0.1:4222); see docs/mint-consumer.md.
import { connect } from "@nats-io/transport-node";
import { ConfigError, url } from "@cashback/runtime";
import { listDeadLetters, replayAllDeadLetters, replayDeadLetter } from "./dead-letter-queue.ts";

const USAGE = `usage: npm run dlq -- list                 show the dead letters (oldest first)
       npm run dlq -- replay <seq>         re-publish one to its original subject, then remove it
       npm run dlq -- replay --all         the same for every dead letter there is now
env:   NATS_URL (default nats://127.0.0.1:4222)`;

async function main(argv: string[]): Promise<number> {
  const [command, arg, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (rest.length > 0 || (command === "list" && arg !== undefined) || (command === "replay" && arg === undefined) || !["list", "replay"].includes(command)) {
    console.error(USAGE);
    return 2;
  }
  if (command === "replay" && arg !== "--all" && !/^[1-9][0-9]*$/.test(arg!)) {
    console.error(`replay takes a dead-letter sequence number (see list) or --all, got "${arg}"`);
    return 2;
  }

  let natsUrl: string;
  try {
    natsUrl = url(process.env, "NATS_URL", "nats://127.0.0.1:4222");
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : String(err));
    return 2;
  }
  const u = new URL(natsUrl);
  const nc = await connect({
    servers: `${u.protocol}//${u.host}`,
    ...(u.username && u.password ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : u.username ? { token: decodeURIComponent(u.username) } : {}),
    name: "dlq-cli",
    timeout: 5_000,
  });
  try {
    if (command === "list") {
      const letters = await listDeadLetters(nc);
      if (letters.length === 0) {
        console.log("CASHBACK_DLQ is empty");
        return 0;
      }
      const rows = letters.map((l) => [String(l.seq), l.time.toISOString(), l.originalSubject, l.subjectId ?? "-", l.eventId ?? "-", l.deliveries || "-", l.reason]);
      printTable(["seq", "dead-lettered at", "subject", "entry/refund", "event id", "deliveries", "reason"], rows);
      console.log(`${letters.length} dead letter(s); replay one with: npm run dlq -- replay <seq>`);
      return 0;
    }
    if (arg === "--all") {
      const { replayed, failed } = await replayAllDeadLetters(nc);
      for (const r of replayed) console.log(`replayed ${r.seq} -> ${r.subject} (stream seq ${r.streamSeq})`);
      for (const f of failed) console.error(`could not replay ${f.seq}: ${f.error}`);
      console.log(`${replayed.length} replayed, ${failed.length} failed`);
      return failed.length ? 1 : 0;
    }
    const r = await replayDeadLetter(nc, Number(arg));
    console.log(`replayed ${r.seq} -> ${r.subject} (stream seq ${r.streamSeq})`);
    return 0;
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  } finally {
    await nc.close();
  }
}

function printTable(header: string[], rows: string[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

process.exitCode = await main(process.argv.slice(2));
