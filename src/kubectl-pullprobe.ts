#!/usr/bin/env node
/**
 * `kubectl pullprobe …`: kubectl finds this program on PATH as
 * `kubectl-pullprobe` and runs it with the arguments after the plugin name.
 * It is the same CLI as `pullprobe`.
 */
import { main } from './cli.js';
import { stdoutIsTTY } from './commands/io.js';

main(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: stdoutIsTTY(),
  env: process.env,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pullprobe: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
