/**
 * `pullprobe report [--json] [--heartbeat 10m] [--kubectl PATH] [--context NAME]`:
 * per-subnet × registry verdicts from the nodes' `pullprobe.dev/status`
 * annotations. Reads `kubectl get nodes -o json` from stdin when stdin is
 * not a TTY and carries data, else runs kubectl itself (60 s timeout).
 * Exit 0 every row ok, 1 any row not ok (stale included), 2 usage or input
 * error (message on stderr, nothing on stdout).
 */
import { execFile } from 'node:child_process';
import { fstatSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatDuration, parseDuration } from '../shared/duration.js';
import { UsageError, type Io } from './io.js';
import { ReportInputError } from '../shared/errors.js';
import { buildReport, nodeItems, type Report, type ReportRow } from '../report/rows.js';

/** Resolves to stdin's text, or null when there is no stdin to read (a TTY, /dev/null, empty). */
export type StdinReader = () => Promise<string | null>;

export interface ReportOptions {
  readStdin?: StdinReader;
  /** Wall clock, epoch ms. */
  now?: () => number;
  /** kubectl timeout (default 60 s). */
  kubectlTimeoutMs?: number;
}

/**
 * The Io the report command accepts: `main` passes its Io through, so an
 * in-process caller (a test) may put the reader and the clock here.
 */
export type ReportIo = Io & ReportOptions;

const SYNOPSIS = 'usage: pullprobe report [--json] [--heartbeat 10m] [--kubectl PATH] [--context NAME]';
const KUBECTL_TIMEOUT_MS = 60_000;
const KUBECTL_MAX_BUFFER = 512 * 1024 * 1024;
const NAMES_IN_TABLE = 3;
const NAMES_IN_NOTE = 20;

export async function runReportCommand(argv: string[], io: ReportIo, opts: ReportOptions = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      heartbeat: { type: 'string', default: '10m' },
      kubectl: { type: 'string', default: 'kubectl' },
      context: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`report: unexpected argument "${positionals[0]}" (${SYNOPSIS})`);
  const heartbeatMs = parseDuration(values.heartbeat);
  if (heartbeatMs === null || heartbeatMs <= 0) {
    throw new UsageError(`report: --heartbeat "${values.heartbeat}" is not a positive duration (e.g. 10m)`);
  }
  if (values.kubectl === '') throw new UsageError('report: --kubectl PATH is empty');
  const readStdin = opts.readStdin ?? io.readStdin ?? readProcessStdin;
  const now = opts.now ?? io.now ?? Date.now;

  let text: string;
  let source: string;
  const piped = await readStdin();
  if (piped !== null && piped.trim() !== '') {
    text = piped;
    source = 'stdin';
  } else {
    const args = ['get', 'nodes', '-o', 'json'];
    if (values.context !== undefined) args.push('--context', values.context);
    text = await runKubectl(values.kubectl, args, opts.kubectlTimeoutMs ?? io.kubectlTimeoutMs ?? KUBECTL_TIMEOUT_MS);
    source = `output of ${[values.kubectl, ...args].join(' ')}`;
  }

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReportInputError(`report: ${source} is not JSON (${(err as Error).message})`);
  }
  const items = nodeItems(json);
  if (!items.ok) throw new ReportInputError(`report: ${source}: ${items.error}`);

  const report = buildReport(json, now(), heartbeatMs);
  if (values.json) {
    io.stdout(JSON.stringify(report.rows, null, 2) + '\n');
    writeNotes(report, (s) => io.stderr(s));
  } else {
    io.stdout(formatReport(report, heartbeatMs));
    for (const e of report.errors) io.stderr(`pullprobe: ${e}\n`);
  }
  return report.rows.every((r) => r.verdict === 'ok') ? 0 : 1;
}

/** `--json` mode: unknown, stale and errors as one-line notes on stderr. */
function writeNotes(report: Report, write: (s: string) => void): void {
  if (report.unknown.length > 0) write(`pullprobe: unknown: ${namesNote(report.unknown)}\n`);
  if (report.stale.length > 0) write(`pullprobe: stale: ${namesNote(report.stale)}\n`);
  for (const e of report.errors) write(`pullprobe: ${e}\n`);
}

function namesNote(names: readonly string[]): string {
  return `${names.length} node${names.length === 1 ? '' : 's'} (${truncateList(names, NAMES_IN_NOTE)})`;
}

export function truncateList(names: readonly string[], max: number): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} +${names.length - max} more`;
}

const HEADERS = ['SUBNET', 'REGISTRY', 'NODES', 'FAILING', 'VERDICT', 'REASON', 'FAILING NODES'] as const;

function rowCells(r: ReportRow): string[] {
  const reason = r.reason !== null ? `${r.stage ?? '?'}/${r.reason}` : r.stage !== null ? r.stage : '-';
  return [
    r.subnet,
    r.registry,
    String(r.nodes),
    String(r.failing),
    r.verdict,
    reason,
    r.failingNodes.length > 0 ? truncateList(r.failingNodes, NAMES_IN_TABLE) : '-',
  ];
}

/** Human output: the table, then the unknown and stale nodes. */
export function formatReport(report: Report, heartbeatMs: number): string {
  let out = '';
  if (report.rows.length === 0) {
    out += 'No pullprobe verdicts found on any node.\n';
  } else {
    const table = [[...HEADERS], ...report.rows.map(rowCells)];
    const widths = HEADERS.map((_, i) => Math.max(...table.map((cells) => (cells[i] ?? '').length)));
    for (const cells of table) {
      out +=
        cells
          .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
          .join('  ')
          .trimEnd() + '\n';
    }
  }
  if (report.unknown.length > 0) out += `\nUnknown (no usable pullprobe annotation): ${namesNote(report.unknown)}\n`;
  if (report.stale.length > 0) {
    out += `${report.unknown.length > 0 ? '' : '\n'}Stale (annotation older than 3 × ${formatDuration(heartbeatMs)}): ${namesNote(report.stale)}\n`;
  }
  return out;
}

/** Production stdin: read it when it is not a TTY and not a character device (e.g. /dev/null). */
export async function readProcessStdin(): Promise<string | null> {
  if (process.stdin.isTTY) return null;
  try {
    if (fstatSync(0).isCharacterDevice()) return null;
  } catch {
    return null;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

function runKubectl(file: string, args: string[], timeoutMs: number): Promise<string> {
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: KUBECTL_MAX_BUFFER, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) {
        resolve(stdout);
        return;
      }
      const e = err; // an ExecFileException: code is the errno name, or the exit code when the process ran
      let why: string;
      if (e.code === 'ENOENT') why = `${file} not found (use --kubectl PATH, or pipe \`kubectl get nodes -o json\` into pullprobe report)`;
      else if (e.code === 'EACCES') why = `${file} is not executable`;
      else if (e.killed && e.signal === 'SIGTERM') why = `timed out after ${formatDuration(timeoutMs)}`;
      else if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') why = 'output too large';
      else {
        const last = stderr.trim().split('\n').pop()?.trim().slice(0, 300) ?? '';
        why = `exited with ${typeof e.code === 'number' ? `code ${e.code}` : `signal ${e.signal ?? '?'}`}${last ? `: ${last}` : ''}`;
      }
      reject(new ReportInputError(`report: \`${command}\` failed: ${why}`));
    });
  });
}
