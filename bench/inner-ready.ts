/**
 * Runs INSIDE a lab node (via lab.exec): starts a command and polls a URL
 * every 5 ms until it answers 200, then stops the command. Prints one JSON
 * line: {"seconds":0.41,"status":200} (seconds from spawn to the first 200;
 * null when it never answered within the timeout).
 *
 *   node --import tsx bench/inner-ready.ts '{"argv":[…],"url":"http://127.0.0.1:9809/readyz","timeoutMs":30000}'
 */
import { spawn } from 'node:child_process';
import http from 'node:http';

export interface InnerReadyArgs {
  argv: string[];
  url: string;
  timeoutMs: number;
  env?: Record<string, string>;
}

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function main(): Promise<number> {
  const a = JSON.parse(process.argv[2] ?? '{}') as InnerReadyArgs;
  const [cmd, ...rest] = a.argv;
  if (!cmd) throw new Error('no command');
  const t0 = performance.now();
  const child = spawn(cmd, rest, { stdio: 'ignore', detached: true, env: { ...process.env, ...a.env } });
  let seconds: number | null = null;
  let last = 0;
  while (performance.now() - t0 < a.timeoutMs && child.exitCode === null) {
    last = await status(a.url);
    if (last === 200) {
      seconds = (performance.now() - t0) / 1000;
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  process.stdout.write(JSON.stringify({ seconds, status: last, exit: child.exitCode }) + '\n');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`inner-ready: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
