/**
 * Through an HTTP proxy the way Go's http.Transport goes (and so containerd):
 * dial the proxy, send `CONNECT host:port HTTP/1.1` (Host, User-Agent,
 * Proxy-Authorization from the proxy URL's userinfo), read the proxy's
 * answer; 200 means the socket is now a tunnel to the target, anything else
 * fails the request. containerd then reports only the status text after the
 * URL (`failed to do request: Head "…": Forbidden`), which `statusText`
 * keeps as Go prints it.
 *
 * Every failure is `proxy_error` with the proxy named in display form:
 * credentials never appear in a message. A dead proxy is a failure, never a
 * reason to go direct (as containerd).
 */
import net from 'node:net';
import { proxyAuthorization, proxyDisplay, proxyHost, proxyPort } from '../node-config/proxy-env.js';
import { escapeControl } from '../shared/visible-text.js';
import { unrefTimers, type Timers } from '../shared/timers.js';
import { joinHostPort } from '../shared/host-port.js';
import { realClock, type Clock } from '../model/types.js';

/** The proxy's answer to CONNECT may not exceed this many bytes of status line and headers. */
export const MAX_CONNECT_HEADER_BYTES = 64 * 1024;

export interface ProxyFailure {
  ok: false;
  reason: 'proxy_error';
  /** Plain words naming the proxy (no credentials) and what it did. */
  message: string;
  /** The proxy's status code when it answered the CONNECT with one. */
  status?: number;
  /** What containerd prints for that answer: the status text ("Access violation"), or "unknown status code". */
  statusText?: string;
  /** The OS error code when the connection to the proxy failed (ECONNREFUSED, ENOTFOUND, …). */
  code?: string;
  seconds: number;
}

export type TunnelResult = { ok: true; socket: net.Socket; seconds: number } | ProxyFailure;

export interface TunnelOptions {
  signal: AbortSignal;
  timeoutMs: number;
  timers?: Timers;
  clock?: Clock;
  /** Sent as User-Agent on the CONNECT (Go sends "Go-http-client/1.1"). */
  userAgent?: string;
  maxHeaderBytes?: number;
}

const seconds = (clock: Clock, start: number): number => Math.max(0, (clock.now() - start) / 1000);

function fail(message: string, start: number, clock: Clock, extra: Partial<ProxyFailure> = {}): ProxyFailure {
  return { ok: false, reason: 'proxy_error', message, ...extra, seconds: seconds(clock, start) };
}

/** The CONNECT request for a target, with the proxy's credentials when its URL has them. */
export function connectRequest(proxy: URL, target: { host: string; port: number }, userAgent = 'pullprobe'): string {
  const authority = joinHostPort(target.host, target.port);
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`, `User-Agent: ${userAgent}`];
  const auth = proxyAuthorization(proxy);
  if (auth !== null) lines.push(`Proxy-Authorization: ${auth}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export type ConnectAnswer = { ok: true; status: number; text: string } | { ok: false; malformed: string };

/**
 * The status of a proxy's answer (its status line), as Go's ReadResponse and
 * Transport read it: "HTTP/1.1 403 Forbidden" → 403, "Forbidden";
 * "HTTP/1.1 403" → 403, "unknown status code".
 */
export function parseConnectStatus(line: string): ConnectAnswer {
  const m = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(line);
  if (!m?.[1]) return { ok: false, malformed: line };
  return { ok: true, status: Number(m[1]), text: m[2] === undefined ? 'unknown status code' : m[2] };
}

/** Readable, bounded, control characters escaped: a proxy's text put into a message. */
function shown(s: string): string {
  const t = escapeControl(s);
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

function refusal(proxy: URL, authority: string, status: number, text: string): string {
  const base = `proxy ${proxyDisplay(proxy)} refused to connect to ${authority}: ${status} ${shown(text)}`;
  // 407 asks for credentials; tinyproxy answers wrong ones with 401
  if (status !== 407 && status !== 401) return base;
  return proxyAuthorization(proxy) === null
    ? `${base} (it wants credentials and the proxy URL has none)`
    : `${base} (it refused the credentials in the proxy URL)`;
}

/** End of the header block (index after the empty line), or -1. Lines end in \n, a \r before it is optional (as Go reads them). */
function headerEnd(text: string): number {
  const m = /\r?\n\r?\n/.exec(text);
  return m ? m.index + m[0].length : -1;
}

/**
 * Ask the proxy at the other end of `socket` for a tunnel to target. On
 * success the same socket comes back, paused, with any bytes the proxy sent
 * after its answer put back (unshift) for the TLS handshake to read. On
 * failure the socket is destroyed.
 */
export function openConnectTunnel(
  socket: net.Socket,
  proxy: URL,
  target: { host: string; port: number },
  o: TunnelOptions,
): Promise<TunnelResult> {
  const clock = o.clock ?? realClock;
  const timers = o.timers ?? unrefTimers;
  const limit = o.maxHeaderBytes ?? MAX_CONNECT_HEADER_BYTES;
  const start = clock.now();
  const authority = joinHostPort(target.host, target.port);
  const who = `proxy ${proxyDisplay(proxy)}`;
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    let done = false;
    const finish = (r: TunnelResult, rest?: Buffer): void => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if (r.ok) {
        if (rest && rest.length > 0) socket.unshift(rest);
      } else {
        socket.on('error', () => undefined);
        socket.destroy();
      }
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const text = buffered.toString('latin1');
      const end = headerEnd(text);
      if (end < 0) {
        if (buffered.length > limit)
          finish(fail(`${who} sent more than ${limit / 1024} KiB without ending its answer to the CONNECT to ${authority}`, start, clock));
        return;
      }
      if (end > limit) {
        finish(fail(`${who} sent more than ${limit / 1024} KiB without ending its answer to the CONNECT to ${authority}`, start, clock));
        return;
      }
      const statusLine = (text.split('\n', 1)[0] ?? '').replace(/\r$/, '');
      const answer = parseConnectStatus(statusLine);
      if (!answer.ok) {
        finish(fail(`${who} did not answer the CONNECT to ${authority} with HTTP: "${shown(answer.malformed)}"`, start, clock));
        return;
      }
      if (answer.status !== 200) {
        finish(
          fail(refusal(proxy, authority, answer.status, answer.text), start, clock, { status: answer.status, statusText: answer.text }),
        );
        return;
      }
      finish({ ok: true, socket, seconds: seconds(clock, start) }, buffered.subarray(end));
    };
    const onEnd = (): void => finish(fail(`${who} closed the connection before answering the CONNECT to ${authority}`, start, clock));
    const onError = (err: Error): void => {
      const code = (err as { code?: unknown }).code;
      const c = typeof code === 'string' ? code : 'error';
      finish(fail(`the connection to ${who} failed during the CONNECT to ${authority} (${c})`, start, clock, { code: c }));
    };
    const onAbort = (): void =>
      finish(fail(`${who} had not answered the CONNECT to ${authority} when the probe's deadline came`, start, clock));
    const timer = timers.setTimeout(
      () => finish(fail(`${who} did not answer the CONNECT to ${authority} within ${o.timeoutMs / 1000} s`, start, clock)),
      Math.max(0, o.timeoutMs),
    );
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    if (o.signal.aborted) {
      onAbort();
      return;
    }
    o.signal.addEventListener('abort', onAbort, { once: true });
    socket.write(connectRequest(proxy, target, o.userAgent));
    socket.resume();
  });
}

const DIAL_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: "the proxy's name does not resolve",
  EAI_AGAIN: "the proxy's name could not be resolved (no answer from the resolver)",
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ECONNRESET: 'connection reset',
};

export interface DialOptions {
  signal: AbortSignal;
  timeoutMs: number;
  timers?: Timers;
  clock?: Clock;
  /** Dial this address instead of the proxy's host name (when the caller resolved it). */
  address?: string;
  connect?: (o: net.NetConnectOpts) => net.Socket;
}

export type DialResult = { ok: true; socket: net.Socket; seconds: number } | ProxyFailure;

/** Connect to the proxy itself (Go: proxyconnect tcp). A failure names the proxy and is proxy_error. */
export function dialProxy(proxy: URL, o: DialOptions): Promise<DialResult> {
  const clock = o.clock ?? realClock;
  const timers = o.timers ?? unrefTimers;
  const start = clock.now();
  const who = `proxy ${proxyDisplay(proxy)}`;
  const connect = o.connect ?? ((opts: net.NetConnectOpts) => net.connect(opts));
  return new Promise((resolve) => {
    if (o.signal.aborted) {
      resolve(fail(`cannot connect to ${who}: the probe's deadline came first`, start, clock));
      return;
    }
    const socket = connect({ host: o.address ?? proxyHost(proxy), port: proxyPort(proxy) });
    let done = false;
    const finish = (r: DialResult): void => {
      if (done) return;
      done = true;
      timers.clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (!r.ok) {
        socket.on('error', () => undefined);
        socket.destroy();
      }
      resolve(r);
    };
    const onConnect = (): void => finish({ ok: true, socket, seconds: seconds(clock, start) });
    const onError = (err: Error): void => {
      const raw = (err as { code?: unknown }).code;
      const code = typeof raw === 'string' ? raw : 'error';
      finish(fail(`cannot connect to ${who}: ${DIAL_WORDS[code] ?? code} (${code})`, start, clock, { code }));
    };
    const onAbort = (): void => finish(fail(`cannot connect to ${who}: the probe's deadline came first`, start, clock));
    const timer = timers.setTimeout(
      () => finish(fail(`cannot connect to ${who}: no answer within ${o.timeoutMs / 1000} s`, start, clock, { code: 'ETIMEDOUT' })),
      Math.max(0, o.timeoutMs),
    );
    o.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', onConnect);
    socket.on('error', onError);
  });
}

/** Dial the proxy, then CONNECT through it: one call for the walk. `seconds` covers both. */
export async function connectThroughProxy(
  proxy: URL,
  target: { host: string; port: number },
  o: DialOptions & TunnelOptions,
): Promise<TunnelResult> {
  const clock = o.clock ?? realClock;
  const start = clock.now();
  const dialled = await dialProxy(proxy, o);
  if (!dialled.ok) return dialled;
  const tunnel = await openConnectTunnel(dialled.socket, proxy, target, o);
  return { ...tunnel, seconds: seconds(clock, start) };
}

/**
 * For a plain http:// target through the proxy (no tunnel): the request goes
 * to the proxy with the absolute URL as its target, and the proxy's
 * credentials in Proxy-Authorization.
 */
export function plainProxyRequest(proxy: URL, url: URL): { path: string; headers: Record<string, string> } {
  const auth = proxyAuthorization(proxy);
  return { path: url.href, headers: auth === null ? {} : { 'proxy-authorization': auth } };
}
