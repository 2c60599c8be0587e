/**
 * Counting the HTTP requests the lab's servers received, from their logs:
 * docker-registry's access log (combined format, one line per request:
 * `10.231.1.10 - - [date] "HEAD /v2/lab/probe/manifests/v1 HTTP/1.1" 200 …`)
 * and the token service's one line per token request (`GET /token user=… → 200`).
 * A LogMark remembers each file's size; `since(mark)` counts what was
 * appended after it. Pure parsing plus plain file reads (no network).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Request class: "GET /v2/", "HEAD manifest:tag", "GET manifest:digest", "GET /token", "GET tags/list", or "METHOD /path". */
export type RequestClass = string;

export interface RequestCount {
  /** Log file base name without .log, e.g. "registry-token", "token-server". */
  server: string;
  cls: RequestClass;
  /** The exact method + path (for per-target counts). */
  path: string;
  count: number;
}

const ACCESS = /^(\S+) \S+ \S+ \[[^\]]*\] "([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) /;
const TOKEN = /^([A-Z]+) \/token user=\S+ .*→ (\d{3})$/;
/** docker-registry's own per-request line carries the client's address:port (one port = one connection). */
const COMPLETED = /msg="response completed".* http\.request\.remoteaddr="?([^" ]+)"?/;

/** Distinct client connections (address:port) seen in registry log text, from `client` only. */
export function connections(text: string, client?: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = COMPLETED.exec(line);
    const addr = m?.[1];
    if (addr && (client === undefined || addr.startsWith(`${client}:`))) out.add(addr);
  }
  return out;
}

/** Classify a registry request path (tags vs digests; the repository is dropped). */
export function classify(method: string, path: string): RequestClass {
  const p = path.split('?')[0] ?? path;
  if (p === '/v2/' || p === '/v2') return `${method} /v2/`;
  const m = /^\/v2\/.+\/(manifests|blobs)\/([^/]+)$/.exec(p);
  if (m) return `${method} ${m[1] === 'manifests' ? 'manifest' : 'blob'}:${(m[2] ?? '').includes(':') ? 'digest' : 'tag'}`;
  const rest = /^\/v2\/.+?\/((?:tags|referrers|blobs)\/.*)$/.exec(p)?.[1];
  return `${method} ${rest ?? p}`;
}

/** One log line → [class, method+path], or null when it is not a request line (or not from `client`). */
export function parseRequestLine(server: string, line: string, client?: string): [RequestClass, string] | null {
  if (server === 'token-server') {
    const t = TOKEN.exec(line);
    return t ? [`${t[1]} /token`, `${t[1]} /token`] : null;
  }
  const a = ACCESS.exec(line);
  if (!a) return null;
  if (client !== undefined && a[1] !== client) return null;
  const method = a[2] ?? '';
  const path = a[3] ?? '';
  return [classify(method, path), `${method} ${path}`];
}

/** Tally parsed lines into counts (pure). */
export function countLines(server: string, text: string, client?: string): RequestCount[] {
  const byKey = new Map<string, RequestCount>();
  for (const line of text.split('\n')) {
    const p = parseRequestLine(server, line, client);
    if (!p) continue;
    const key = `${p[0]}\n${p[1]}`;
    const c = byKey.get(key);
    if (c) c.count++;
    else byKey.set(key, { server, cls: p[0], path: p[1], count: 1 });
  }
  return [...byKey.values()];
}

export type LogMark = Map<string, number>;

/** The registry and token-service logs in the lab's log dir. */
export function requestLogs(logDir: string): string[] {
  if (!existsSync(logDir)) return [];
  return readdirSync(logDir)
    .filter((f) => /^registry-.*\.log$/.test(f) || f === 'token-server.log')
    .map((f) => join(logDir, f));
}

export function mark(logDir: string): LogMark {
  const m: LogMark = new Map();
  for (const f of requestLogs(logDir)) m.set(f, statSync(f).size);
  return m;
}

/**
 * Requests appended to the logs since `from` (registries: only from `client`).
 * `next` marks the end of the whole lines read; a line still being written
 * is counted by the next call.
 */
export function since(logDir: string, from: LogMark, client?: string): { counts: RequestCount[]; connections: number; next: LogMark } {
  const counts: RequestCount[] = [];
  let conns = 0;
  const next: LogMark = new Map(from);
  for (const f of requestLogs(logDir)) {
    const start = from.get(f) ?? 0;
    const buf = readFileSync(f);
    if (buf.length <= start) continue;
    const end = buf.lastIndexOf(0x0a) + 1;
    if (end <= start) continue;
    const server = (f.split('/').pop() ?? f).replace(/\.log$/, '');
    const text = buf.subarray(start, end).toString('utf8');
    counts.push(...countLines(server, text, client));
    if (server !== 'token-server') conns += connections(text, client).size;
    next.set(f, end);
  }
  return { counts, connections: conns, next };
}

/** Sum counts by a key function. */
export function tally(counts: readonly RequestCount[], key: (c: RequestCount) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of counts) m.set(key(c), (m.get(key(c)) ?? 0) + c.count);
  return m;
}

export function total(counts: readonly RequestCount[]): number {
  return counts.reduce((s, c) => s + c.count, 0);
}
