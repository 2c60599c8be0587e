#!/usr/bin/env node
/**
 * pullprobe CLI. Exit codes: 0 all targets ok, 1 at least one failed,
 * 2 usage or configuration error (message on stderr, nothing on stdout).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { stdoutIsTTY, type Io } from './commands/io.js';
import { COMMAND_HELP, USAGE, isCommandName, wantsHelp } from './commands/help.js';
import { UsageError, isUserError } from './shared/errors.js';

/** package.json's version: ../package.json from both src/cli.ts and dist/cli.js. */
export function packageVersion(read: (url: URL) => string = (url) => readFileSync(url, 'utf8')): string {
  const pkg = JSON.parse(read(new URL('../package.json', import.meta.url))) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/**
 * A one-shot run compiles undici's HTTP parser (WebAssembly) with V8's
 * baseline compiler only: the optimising tier would compile it again on
 * background threads, and the process waits for that before it exits (~0.15 s
 * of a probe's wall time on Node 20, issue 10). Node 24 ignores the flag set
 * at run time (given on its command line, `node --liftoff-only`, it saves as
 * much there). The agent keeps the default.
 */
function oneShotCompiler(): void {
  setFlagsFromString('--liftoff-only');
}

/**
 * Each command's module is imported only when that command runs, so help,
 * version and `explain` never load the network stack (undici, tls, dns).
 */
async function runCommand(command: string, rest: string[], io: Io): Promise<number> {
  if (command === 'probe' || command === 'why' || command === 'report') oneShotCompiler();
  switch (command) {
    case 'probe': {
      const { runProbeCommand } = await import('./commands/probe-command.js');
      return runProbeCommand(rest, io);
    }
    case 'explain': {
      const { runExplainCommand } = await import('./commands/explain-command.js');
      return runExplainCommand(rest, io);
    }
    case 'agent': {
      const { runAgentCommand } = await import('./commands/agent-command.js');
      return runAgentCommand(rest, io);
    }
    case 'report': {
      const { runReportCommand } = await import('./commands/report-command.js');
      return runReportCommand(rest, io);
    }
    case 'why': {
      const { runWhyCommand } = await import('./commands/why-command.js');
      return runWhyCommand(rest, io);
    }
    case 'version':
      if (rest.length > 0) throw new UsageError(`version: unexpected argument "${rest[0] ?? ''}"`, true);
      io.stdout(`${packageVersion()}\n`);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}" (run \`pullprobe --help\`)`);
  }
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    io.stderr(USAGE);
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = rest[0];
    if (command === 'help' && topic !== undefined) {
      if (!isCommandName(topic)) {
        io.stderr(`pullprobe: help: unknown command "${topic}"\n\n${USAGE}`);
        return 2;
      }
      io.stdout(COMMAND_HELP[topic]);
      return 0;
    }
    io.stdout(USAGE);
    return 0;
  }
  if (command === '--version' || command === '-V') return runCommand('version', rest, io);
  if (isCommandName(command) && wantsHelp(rest)) {
    io.stdout(COMMAND_HELP[command]);
    return 0;
  }
  try {
    return await runCommand(command, rest, io);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (isUserError(err) || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      io.stderr(`pullprobe: ${(err as Error).message}\n`);
      if (err instanceof UsageError && err.showUsage) io.stderr(`\n${isCommandName(command) ? COMMAND_HELP[command] : USAGE}`);
      return 2;
    }
    throw err;
  }
}

/** True when run as a program — also through npm's `bin` symlink (argv[1] is the link). */
function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/**
 * Exit once stdout and stderr have taken what was written. The command's work
 * is done; waiting for the event loop to drain would also wait for V8's
 * background compilation (the optimised HTTP parser of a probe: ~0.2 s of a
 * one-shot run, issue 10) and for sockets a server keeps half-open.
 */
function exitWhenWritten(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

if (isMain()) {
  main(process.argv.slice(2), {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    isTTY: stdoutIsTTY(),
    env: process.env,
  }).then(
    (code) => exitWhenWritten(code),
    (err: unknown) => {
      process.stderr.write(`pullprobe: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
      exitWhenWritten(2);
    },
  );
}
