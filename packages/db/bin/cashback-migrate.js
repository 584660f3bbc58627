#!/usr/bin/env node
// `cashback-migrate <migrationsDir>`: same as `tsx src/cli.ts migrate <migrationsDir>`.
// The package ships TypeScript sources, so register tsx's loader before importing them.
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("../src/runCli.ts");
process.exitCode = await runCli(["migrate", ...process.argv.slice(2)]);
