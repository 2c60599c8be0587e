/**
 * What `explain` reads out of a paste, and how it shows a line of it back.
 * Pure and linear in the size of the input: the text is cut into lines
 * (kubelet messages are one line each), JSON (`kubectl get events -o json`,
 * `kubectl get pod -o json`) is decoded first so that escaped quotes inside
 * message strings read as the kubelet wrote them.
 */
import { escapeControl } from '../shared/visible-text.js';

/** Longest excerpt of the user's text that `explain` shows. */
export const EXCERPT_MAX = 400;

/**
 * The lines to classify. JSON input: every string value in it (messages,
 * reasons), each cut into lines. Anything else: the text's lines, and a
 * line holding JSON-escaped quotes (`\"`, a fragment of JSON output) also
 * unescaped.
 */
export function candidateLines(text: string): string[] {
  const json = decodeJson(text);
  const sources = json ?? [text];
  const lines: string[] = [];
  for (const s of sources) {
    for (const line of s.split(/\r\n|\n|\r/)) {
      if (line.trim() === '') continue;
      lines.push(line);
      if (json === null && line.includes('\\"')) lines.push(line.replace(/\\(["\\/])/g, '$1'));
    }
  }
  return lines;
}

/** The string values of a JSON document, in document order; null when the text is not JSON. */
function decodeJson(text: string): string[] | null {
  const t = text.trimStart();
  if (!t.startsWith('{') && !t.startsWith('[') && !t.startsWith('"')) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  // Iterative walk: a deeply nested document cannot overflow the stack.
  const out: string[] = [];
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    else if (v !== null && typeof v === 'object') {
      const values = Object.values(v);
      for (let i = values.length - 1; i >= 0; i--) stack.push(values[i]);
    }
  }
  return out;
}

/**
 * A line of the user's text fit to print: the message column of a
 * `kubectl describe` event row, trimmed, at most EXCERPT_MAX characters
 * around [start, end) (the part that decided), credentials masked, control
 * characters escaped.
 */
export function excerpt(line: string, start: number, end: number): string {
  let s = line;
  let from = 0;
  const cut = describeMessageColumn(line);
  if (cut <= start) from = cut;
  s = s.slice(from).trim();
  const lead = line.slice(from).length - line.slice(from).trimStart().length;
  const a = Math.max(0, start - from - lead);
  const b = Math.max(a, end - from - lead);
  if (s.length > EXCERPT_MAX) {
    let ws = Math.max(0, Math.min(a - 80, s.length - EXCERPT_MAX));
    if (b - ws > EXCERPT_MAX) ws = b - EXCERPT_MAX;
    s = `${ws > 0 ? '…' : ''}${s.slice(ws, ws + EXCERPT_MAX)}${ws + EXCERPT_MAX < s.length ? '…' : ''}`;
  }
  return escapeControl(maskCredentials(s));
}

/**
 * Offset of the Message column in a `kubectl describe` Events row
 * ("  Warning  Failed  12s (x2 over 30s)  kubelet  Failed to pull image …"):
 * columns are padded with at least two spaces. 0 when the line is not such a row.
 */
function describeMessageColumn(line: string): number {
  const m = /^\s*(?:Normal|Warning)  +/.exec(line);
  if (!m) return 0;
  let pos = m[0].length;
  // Reason, Age, From: three more columns, each ended by a run of 2+ spaces.
  for (let col = 0; col < 3; col++) {
    const gap = line.indexOf('  ', pos);
    if (gap < 0) return 0;
    pos = gap;
    while (line[pos] === ' ') pos++;
  }
  return pos;
}

/** Basic/Bearer credentials and URL userinfo, replaced by a marker. */
export function maskCredentials(s: string): string {
  return s.replace(/\b(Basic|Bearer) +[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]').replace(/\/\/[^/\s@:]+:[^/\s@]+@/g, '//[redacted]@');
}

/**
 * Control, C1 and bidi-override characters as visible escapes (`\u001b`),
 * in the same form as the CLI's other output of foreign text.
 */
export { escapeControl };
