#!/usr/bin/env node
/**
 * pullprobe CLI. Exit codes: 0 all targets ok, 1 at least one failed,
 * 2 usage or configuration error (message on stderr, nothing on stdout).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runProbeCommand } from './commands/probe-command.js';
import { runExplainCommand } from './commands/explain-command.js';
import { UsageError, type Io } from './commands/io.js';

const USAGE = `Usage:
  pullprobe probe [flags] TARGET...    probe images (registry/repo:tag, repo@sha256:…, nginx)
                                       or bare registries (registry.example.com[:port])
  pullprobe agent --config FILE        run the node agent (DaemonSet process)
  pullprobe explain [--json] "MESSAGE" classify a kubelet/containerd pull error message
  pullprobe report [--json] [flags]    per-subnet × registry verdicts from node annotations

probe flags:
  --json                         print the array of results as JSON
  --timeout DURATION             whole-probe deadline per target (default 10s)
  --resolv-conf FILE             resolver configuration (default /etc/resolv.conf)
  --hosts FILE                   hosts file (default /etc/hosts)
  --ca-file FILE                 extra trusted CA (PEM); may repeat
  --docker-config FILE           docker config.json / .dockerconfigjson with credentials
  --containerd-config-path DIRS  containerd certs.d directories, ':'-separated
  --platform OS/ARCH[/VARIANT]   platform to look for in image indexes (default: this host)
  --concurrency N                targets probed at once (default 4)
`;

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'probe':
        return await runProbeCommand(rest, io);
      case 'explain':
        return runExplainCommand(rest, io);
      case 'agent': {
        const { runAgentCommand } = await import('./commands/agent-command.js');
        return await runAgentCommand(rest, io);
      }
      case 'report': {
        const { runReportCommand } = await import('./commands/report-command.js');
        return await runReportCommand(rest, io);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code === 'PULLPROBE_CONFIG' || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`pullprobe: ${(err as Error).message}\n`);
      if (err instanceof UsageError && err.showUsage) io.stderr(`\n${USAGE}`);
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

if (isMain()) {
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
}
