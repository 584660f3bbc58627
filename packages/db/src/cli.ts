// Entry point: `tsx node_modules/@cashback/db/src/cli.ts migrate <migrationsDir>`.
import { runCli } from "./runCli.ts";

process.exitCode = await runCli(process.argv.slice(2));
