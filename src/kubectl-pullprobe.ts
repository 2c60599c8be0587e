#!/usr/bin/env node
/**
 * `kubectl pullprobe …`: kubectl finds this program on PATH as
 * `kubectl-pullprobe` and runs it with the arguments after the plugin name.
 * It is the same CLI as `pullprobe`.
 */
import { main } from './cli.js';

main(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: process.stdout.isTTY === true,
  env: process.env,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pullprobe: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
