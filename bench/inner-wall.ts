/**
 * Runs INSIDE a lab node (via lab.exec): wall time of one-shot commands, each
 * run `n` times in turn (start-up included, output discarded). Prints one
 * JSON line: {"<name>":{"seconds":[…],"codes":[…]}, …}.
 *
 *   node --import tsx bench/inner-wall.ts '{"n":5,"commands":{"node -e 0":["node","-e","0"]}}'
 */
import { spawnSync } from 'node:child_process';

export interface InnerWallArgs {
  n: number;
  commands: Record<string, string[]>;
}

export type InnerWallResult = Record<string, { seconds: number[]; codes: Array<number | null>; stderr: string }>;

function main(): number {
  const a = JSON.parse(process.argv[2] ?? '{}') as InnerWallArgs;
  const out: InnerWallResult = {};
  for (let i = 0; i < a.n; i++) {
    for (const [name, argv] of Object.entries(a.commands)) {
      const [cmd, ...rest] = argv;
      if (!cmd) continue;
      const t = performance.now();
      const r = spawnSync(cmd, rest, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000, encoding: 'utf8' });
      const s = (performance.now() - t) / 1000;
      const slot = (out[name] ??= { seconds: [], codes: [], stderr: '' });
      slot.seconds.push(s);
      slot.codes.push(r.status);
      if (r.status !== 0 && !slot.stderr) slot.stderr = (r.error?.message ?? r.stderr).slice(-300);
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

process.exitCode = main();
