/**
 * The user's kubectl, run the way `pullprobe report` runs it: the binary from
 * --kubectl (default `kubectl` on PATH), --context passed through, the
 * environment inherited (so KUBECONFIG is honoured), a timeout. Its answer
 * is data: NotFound and Forbidden are told apart from other failures, so
 * `why` can say "could not check" instead of stopping.
 */
import { execFile } from 'node:child_process';

export type KubectlResult = { ok: true; stdout: string } | { ok: false; kind: 'not-found' | 'forbidden' | 'failed'; message: string };

/** Runs `kubectl ARGS…`; never rejects. */
export type Kubectl = (args: string[]) => Promise<KubectlResult>;

export interface KubectlOptions {
  file?: string;
  context?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const MAX_BUFFER = 256 * 1024 * 1024;

/** The last meaningful stderr line, shortened: kubectl's "Error from server (…): …". */
function lastLine(stderr: string): string {
  const lines = stderr
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return (lines.find((l) => l.startsWith('Error from server')) ?? lines.pop() ?? '').slice(0, 300);
}

export function kubectlRunner(opts: KubectlOptions = {}): Kubectl {
  const file = opts.file ?? 'kubectl';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return (args) => {
    const full = opts.context !== undefined ? [...args, '--context', opts.context] : args;
    return new Promise((resolve) => {
      execFile(
        file,
        full,
        { timeout: timeoutMs, maxBuffer: MAX_BUFFER, encoding: 'utf8', env: opts.env ?? process.env },
        (err, stdout, stderr) => {
          if (!err) {
            resolve({ ok: true, stdout });
            return;
          }
          const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: string | number | null };
          const command = `\`${[file, ...args].join(' ')}\``;
          let message: string;
          if (e.code === 'ENOENT') message = `${file} not found (use --kubectl PATH)`;
          else if (e.code === 'EACCES') message = `${file} is not executable`;
          else if (e.killed) message = `${command} timed out after ${Math.round(timeoutMs / 1000)}s`;
          else message = `${command} failed: ${lastLine(stderr) || `exit ${String(e.code)}`}`;
          const kind = /\(NotFound\)/.test(stderr) ? 'not-found' : /\(Forbidden\)/.test(stderr) ? 'forbidden' : 'failed';
          resolve({ ok: false, kind, message });
        },
      );
    });
  };
}
