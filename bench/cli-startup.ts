/**
 * CLI start-up figures (issue 10): the built CLI (`node dist/cli.js`) run as
 * a whole process for --version, --help, explain and a probe of a loopback
 * port nothing listens on, next to `node -e 0`, each measured with
 * /usr/bin/time (wall, user+sys CPU, peak RSS) over several runs after a
 * warm-up; medians printed, nothing asserted. No network beyond loopback.
 *
 *   node --import tsx bench/cli-startup.ts [--runs 7]
 *
 * cliStartup() returns the rows for bench/run.ts's table.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = new URL('../', import.meta.url).pathname;

export interface StartupRow {
  name: string;
  argv: string[];
  /** Medians over the counted runs. */
  wallMs: number;
  cpuMs: number;
  peakMiB: number;
  runs: number;
}

/** The commands measured: argv after `node`. */
export function startupCases(cli = join(REPO, 'dist', 'cli.js')): Array<{ name: string; argv: string[] }> {
  return [
    { name: 'node -e 0', argv: ['-e', '0'] },
    { name: 'pullprobe --version', argv: [cli, '--version'] },
    { name: 'pullprobe --help', argv: [cli, '--help'] },
    { name: 'pullprobe explain', argv: [cli, 'explain', 'dial tcp 10.0.0.5:443: i/o timeout'] },
    // Port 1 on loopback: refused at once, so the figure is start-up plus one failed connect.
    { name: 'pullprobe probe (refused)', argv: [cli, 'probe', '--timeout', '1s', '--hosts', '/dev/null', '127.0.0.1:1/x:y'] },
  ];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] ?? NaN);
};

/** One run under /usr/bin/time: wall s, user s, sys s, max RSS KiB. */
function timed(argv: string[], out: string): { wallMs: number; cpuMs: number; peakKiB: number } | null {
  const r = spawnSync('/usr/bin/time', ['-o', out, '-f', '%e %U %S %M', process.execPath, ...argv], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  if (r.error) return null;
  const [wall, user, sys, rss] = readFileSync(out, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
  if (wall === undefined || user === undefined || sys === undefined || rss === undefined) return null;
  return { wallMs: wall * 1000, cpuMs: (user + sys) * 1000, peakKiB: rss };
}

export function cliStartup(opts: { runs?: number; cli?: string } = {}): StartupRow[] {
  const runs = Math.max(1, opts.runs ?? 7);
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-startup-bench-'));
  try {
    return startupCases(opts.cli).map(({ name, argv }) => {
      timed(argv, join(dir, 'warm'));
      const got = Array.from({ length: runs }, (_, i) => timed(argv, join(dir, `t${String(i)}`))).filter((x) => x !== null);
      return {
        name,
        argv,
        wallMs: median(got.map((g) => g.wallMs)),
        cpuMs: median(got.map((g) => g.cpuMs)),
        peakMiB: median(got.map((g) => g.peakKiB)) / 1024,
        runs: got.length,
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatStartup(rows: StartupRow[]): string {
  const lines = ['CLI start-up (median of each; /usr/bin/time resolution is 10 ms)', ''];
  lines.push(`${'command'.padEnd(28)}${'wall ms'.padStart(9)}${'cpu ms'.padStart(9)}${'peak MiB'.padStart(10)}`);
  for (const r of rows) {
    lines.push(
      `${r.name.padEnd(28)}${r.wallMs.toFixed(0).padStart(9)}${r.cpuMs.toFixed(0).padStart(9)}${r.peakMiB.toFixed(1).padStart(10)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--runs');
  const runs = i >= 0 ? Number(process.argv[i + 1]) : 7;
  process.stdout.write(formatStartup(cliStartup({ runs: Number.isFinite(runs) ? runs : 7 })));
}
