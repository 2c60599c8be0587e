/**
 * `pullprobe explain [--json] "MESSAGE" | -`: classify a pasted kubelet /
 * containerd error (or `kubectl describe pod` text, or `kubectl get events
 * -o json`) into reason, cause and fix. The text comes from the arguments,
 * or from stdin with `-`, or with no argument when stdin is a pipe or a file
 * (`kubectl describe pod POD | pullprobe explain`). Stdin is read up to
 * MAX_INPUT_BYTES. Exit 0 a reason was found, 1 none, 2 usage or input error
 * (message on stderr, nothing on stdout).
 */
import { fstatSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { explainText } from '../diagnosis/explain.js';
import { causeText } from '../output/format-human.js';
import { UsageError, type Io } from './io.js';

/** The most of the input `explain` reads (1 MiB): far beyond any pasted event list. */
export const MAX_INPUT_BYTES = 1024 * 1024;

/**
 * What stdin is. Only a pipe or a file is read without `-`: an inherited
 * stdin that nobody writes to (a socket from a process manager or a test
 * runner, a terminal) would otherwise leave explain waiting forever.
 */
export type StdinKind = 'tty' | 'pipe' | 'file' | 'other';

export interface StdinText {
  text: string;
  /** More than the limit was there; `text` holds the first part. */
  truncated: boolean;
}

export interface StdinSource {
  kind(): StdinKind;
  /** Reads to end of input or to maxBytes, whichever comes first. */
  read(maxBytes: number): Promise<StdinText>;
}

/** The Io explain accepts: `main` passes its Io through, so a test may put a stdin here. */
export type ExplainIo = Io & { stdinSource?: StdinSource };

const NO_MESSAGE =
  'explain: no MESSAGE given (quote the whole error text, or pipe it in: `kubectl describe pod POD | pullprobe explain`, or `pullprobe explain -`)';

/**
 * Usage errors are thrown synchronously (so `main` prints them with the
 * usage text); once the text is to come from stdin the rest is a promise
 * that reports its own input errors on stderr and resolves to exit code 2.
 */
export function runExplainCommand(argv: string[], io: ExplainIo): number | Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { json: { type: 'boolean', default: false } },
  });
  const json = values.json;
  const stdin = io.stdinSource ?? processStdin;
  if (positionals.length === 1 && positionals[0] === '-') return explainStdin(stdin, io, json);
  if (positionals.includes('-')) throw new UsageError('explain: give the MESSAGE or `-` (read stdin), not both');
  if (positionals.length === 0) {
    const kind = stdin.kind();
    if (kind !== 'pipe' && kind !== 'file') throw new UsageError(NO_MESSAGE, true);
    return explainStdin(stdin, io, json);
  }
  const text = positionals.join(' ');
  if (text.trim() === '') throw new UsageError(`${NO_MESSAGE}: the MESSAGE is empty`);
  const truncated = text.length > MAX_INPUT_BYTES;
  return explainInput({ text: truncated ? text.slice(0, MAX_INPUT_BYTES) : text, truncated }, io, json);
}

async function explainStdin(stdin: StdinSource, io: Io, json: boolean): Promise<number> {
  if (stdin.kind() === 'tty') io.stderr('pullprobe: explain: reading the message from the terminal; end it with Ctrl-D\n');
  let input: StdinText;
  try {
    input = await stdin.read(MAX_INPUT_BYTES);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    io.stderr(
      `pullprobe: explain: cannot read stdin: ${typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)}\n`,
    );
    return 2;
  }
  if (input.text.trim() === '') {
    io.stderr(`pullprobe: ${NO_MESSAGE}: stdin is empty\n`);
    return 2;
  }
  return explainInput(input, io, json);
}

function explainInput(input: StdinText, io: Io, json: boolean): number {
  if (input.truncated) io.stderr('pullprobe: explain: the input is longer than 1 MiB; only its first 1 MiB was read\n');
  const e = explainText(input.text);
  if (json) {
    // The contract's five keys; message is the user's own line when one decided.
    const message = e.excerpt ?? e.message;
    io.stdout(JSON.stringify({ stage: e.stage, reason: e.reason, cause: e.cause, message, hint: e.hint }) + '\n');
  } else if (e.reason !== null) {
    io.stdout(
      `Reason: ${e.stage ?? 'none'}/${e.reason}\nCause:  ${e.cause ? causeText(e.cause) : ''}\nError:  ${e.excerpt ?? e.message ?? ''}\nFix:    ${e.hint ?? ''}\n`,
    );
  } else if (e.hint !== null) {
    io.stdout(
      `No failure reason in that text: it only says that the kubelet failed to pull and waits to retry.\nError:  ${e.excerpt ?? ''}\nFix:    ${e.hint}\n`,
    );
  } else {
    io.stdout(
      'No known image-pull failure recognised in that message.\nRun `pullprobe probe IMAGE` on the affected node to walk the pull path.\n',
    );
  }
  return e.reason === null ? 1 : 0;
}

export const processStdin: StdinSource = {
  kind(): StdinKind {
    if (process.stdin.isTTY) return 'tty';
    try {
      const st = fstatSync(0);
      if (st.isFIFO()) return 'pipe';
      if (st.isFile()) return 'file';
      return 'other';
    } catch {
      return 'other';
    }
  },
  async read(maxBytes: number): Promise<StdinText> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of process.stdin) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      if (total + b.length > maxBytes) {
        chunks.push(b.subarray(0, maxBytes - total));
        return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
      }
      chunks.push(b);
      total += b.length;
    }
    return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
  },
};
