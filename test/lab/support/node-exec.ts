/**
 * Run a command inside a lab node namespace. `ip netns exec` creates a private
 * (slave) mount namespace for the command; inside it the node's own
 * resolv.conf and hosts files are bind-mounted over /etc/resolv.conf and
 * /etc/hosts, so glibc tools (curl, Node's dns.lookup) use the lab resolvers.
 * Nothing on the host's /etc changes.
 */
import { spawn } from 'node:child_process';

export interface ExecOptions {
  /** Kill the whole process group after this long (default 30 s). */
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed. */
  input?: string;
  /** Extra environment; proxy variables of the test process are NOT passed on unless given here. */
  env?: Record<string, string>;
  /** Working directory (default: the repository root, so `node dist/cli.js` works). */
  cwd?: string;
  /** Bind-mount the node's resolv.conf/hosts over /etc (default true). */
  bindEtc?: boolean;
  /** Called with the child (its pid is the command's own, after exec) — to signal long runners. */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
}

export interface ExecResult {
  /** Exit code; null when killed by a signal (timeout). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  seconds: number;
}

const BIND = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"';

export function execInNs(
  ns: string,
  argv: string[],
  etc: { resolvConf: string; hosts: string },
  cwd: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/_proxy$/i.test(k)) env[k] = v;
  Object.assign(env, opts.env ?? {});
  const full =
    opts.bindEtc === false
      ? ['netns', 'exec', ns, ...argv]
      : ['netns', 'exec', ns, '/bin/sh', '-c', BIND, 'sh', etc.resolvConf, etc.hosts, ...argv];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('ip', full, { cwd: opts.cwd ?? cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    opts.onSpawn?.(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        seconds: (performance.now() - started) / 1000,
      });
    });
    child.stdin.on('error', () => {
      /* command may not read stdin */
    });
    child.stdin.end(opts.input ?? '');
  });
}
