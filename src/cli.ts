#!/usr/bin/env node
/**
 * pullprobe CLI. Exit codes: 0 all targets ok, 1 at least one failed,
 * 2 usage or configuration error (message on stderr, nothing on stdout).
 */
import { mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
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
 * A one-shot run keeps undici's HTTP parser (WebAssembly) on V8's baseline
 * compiler: with the default tiering budget, the parser's hot functions are
 * compiled again by the optimising tier on background threads, and
 * `process.exit` waits for that compile (~0.1 s of a probe's wall time on
 * Node 24, ~0.2 s on Node 20; issue 10). An unreachable budget stops the
 * tier-up on both. `--liftoff-only` would too, but Node 24 ignores it when it
 * is set at run time. The agent keeps the default: it runs long enough for
 * the optimised parser to pay off.
 */
function oneShotCompiler(): void {
  setFlagsFromString('--wasm-tiering-budget=2000000000');
  // @types/node follows Node 20, which has no enableCompileCache.
  startCompileCache(nodeModule as CompileCacheApi, process.env, homedir);
}

/**
 * Where a one-shot run keeps V8's compiled code for the next run: the user's
 * own cache directory (XDG_CACHE_HOME, else ~/.cache), never a shared /tmp
 * that another user of the node could write to. Undefined when neither is
 * known.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv, home: string): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'pullprobe');
  return isAbsolute(home) ? join(home, '.cache', 'pullprobe') : undefined;
}

type CompileCacheApi = { enableCompileCache?: (dir?: string) => unknown };

/**
 * Node 22.1 and later reuse the code V8 compiled for the bundle on an
 * earlier run (~25 ms of a probe's start-up on Node 24, issue 10). Node 20
 * has no compile cache; a home directory Node cannot tell, or a cache
 * directory that cannot be made, only costs the saving. NODE_COMPILE_CACHE
 * and NODE_DISABLE_COMPILE_CACHE keep their meaning: Node applies them at
 * start, and no directory is made here then.
 *
 * The two directories are made here, one level at a time, before Node is
 * given the path: Node's own recursive mkdir (the compile cache's and
 * `fs.mkdirSync(..., { recursive: true })`) loops for ever on a path where
 * mkdir answers ENOENT under an existing parent, as in /proc or /sys (Node
 * 20 and 24): an odd XDG_CACHE_HOME would hang the CLI.
 */
export function startCompileCache(api: CompileCacheApi, env: NodeJS.ProcessEnv, home: () => string): void {
  if (typeof api.enableCompileCache !== 'function') return;
  // Turned off, or already on in the user's own directory: nothing to make.
  if (env.NODE_DISABLE_COMPILE_CACHE !== undefined || env.NODE_COMPILE_CACHE !== undefined) return;
  try {
    const dir = compileCacheDir(env, home());
    if (dir === undefined) return;
    for (const d of [dirname(dir), dir]) {
      try {
        mkdirSync(d, 0o700);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return;
      }
    }
    if (!statSync(dir).isDirectory()) return;
    api.enableCompileCache(dir);
  } catch {
    /* a cache is an optimisation: run without it */
  }
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
