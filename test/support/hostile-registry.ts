/**
 * A loopback server that misbehaves on purpose, for the hostile-server tests
 * (issue 6): every answer is written byte by byte on the raw socket (plain or
 * TLS), so a case can stall headers or bodies, send megabytes of headers,
 * garbage after the TLS handshake, redirect loops, or echo the request's
 * Authorization header into an error. It listens on 127.0.0.1 port 0 only,
 * counts accepted connections (a realm that must never be contacted), and
 * records each request's method, path and Authorization.
 */
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { within } from './within.js';

export interface RawRequest {
  method: string;
  /** Path with query ("/v2/a/manifests/v1", "/token?scope=…"). */
  target: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
}

/** Writes the answer (or not: a stall is an answer too). End the socket (`sock.end()`) to close the connection after it. */
export type Handler = (req: RawRequest, sock: Socket, server: HostileServer) => void;

export interface HostileOptions {
  /** Serve TLS with this certificate; plain TCP when absent. */
  tls?: { cert: string; key: string };
  handler?: Handler;
  /** Called for each accepted connection before any request is read (e.g. write garbage at once). */
  onConnection?: (sock: Socket) => void;
}

export const REGISTRY_HEADERS = { 'docker-distribution-api-version': 'registry/2.0' };
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** Write a whole HTTP/1.1 answer; HEAD answers carry the length but no body. */
export function respond(sock: Socket, req: RawRequest, status: number, headers: Record<string, string>, body: string | Buffer = ''): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const head = [`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Status'}`];
  const all: Record<string, string> = { 'content-length': String(bytes.length), ...headers };
  for (const [k, v] of Object.entries(all)) head.push(`${k}: ${v}`);
  sock.write(`${head.join('\r\n')}\r\n\r\n`);
  if (req.method !== 'HEAD' && bytes.length) sock.write(bytes);
}

export function respondJson(sock: Socket, req: RawRequest, status: number, value: unknown, headers: Record<string, string> = {}): void {
  respond(sock, req, status, { 'content-type': 'application/json', ...REGISTRY_HEADERS, ...headers }, JSON.stringify(value));
}

export const errorBody = (code: string, message: string): unknown => ({ errors: [{ code, message, detail: null }] });

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

const MAX_HEAD = 64 * 1024;

export class HostileServer {
  readonly server: Server;
  readonly requests: { method: string; path: string; authorization?: string }[] = [];
  /** TCP connections accepted (counted before any TLS handshake). */
  accepts = 0;
  #port = 0;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #opts: HostileOptions;

  private constructor(opts: HostileOptions) {
    this.#opts = opts;
    const onSocket = (sock: Socket): void => this.#serve(sock);
    if (opts.tls) {
      const s = createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, onSocket);
      s.on('connection', (raw: Socket) => this.#track(raw));
      s.on('tlsClientError', () => {
        /* clients that give up mid-handshake */
      });
      this.server = s;
    } else {
      this.server = createNetServer((sock) => {
        this.#track(sock);
        onSocket(sock);
      });
    }
  }

  static async start(opts: HostileOptions): Promise<HostileServer> {
    const h = new HostileServer(opts);
    await within(new Promise<void>((resolve) => h.server.listen(0, '127.0.0.1', resolve)), 5000, 'the server to listen');
    h.#port = (h.server.address() as AddressInfo).port;
    return h;
  }

  get port(): number {
    return this.#port;
  }

  count(method: string, path: string | RegExp): number {
    return this.requests.filter((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path))).length;
  }

  /** A timer cleared on close (for trickling bytes). */
  every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    this.#timers.add(t);
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    for (const s of this.#sockets) s.destroy();
    await within(new Promise<void>((resolve) => this.server.close(() => resolve())), 5000, 'the server to close');
  }

  #track(sock: Socket): void {
    this.accepts++;
    this.#sockets.add(sock);
    sock.on('close', () => this.#sockets.delete(sock));
    sock.on('error', () => {
      /* peers that hang up */
    });
  }

  #serve(sock: Socket): void {
    this.#sockets.add(sock);
    sock.on('close', () => this.#sockets.delete(sock));
    sock.on('error', () => {
      /* peers that hang up */
    });
    this.#opts.onConnection?.(sock);
    let buf = Buffer.alloc(0);
    let stalled = false;
    sock.on('data', (chunk: Buffer) => {
      if (stalled) return;
      buf = Buffer.concat([buf, chunk]);
      if (!/^[A-Z]*$/.test(buf.subarray(0, 8).toString('latin1').split(' ')[0] ?? '')) {
        // Not HTTP (e.g. a TLS ClientHello on a plain port): answer as Go's and Node's HTTP servers do.
        sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        stalled = true;
        return;
      }
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) {
          if (buf.length > MAX_HEAD) sock.destroy();
          return;
        }
        const head = buf.subarray(0, end).toString('latin1');
        const req = parseHead(head);
        if (!req) {
          sock.destroy();
          return;
        }
        // A request body (the OAuth POST) is skipped, so the next request on a kept-alive connection parses.
        const bodyLength = Number(req.headers['content-length'] ?? 0) || 0;
        if (buf.length < end + 4 + bodyLength) return; // wait for the rest of the body
        buf = buf.subarray(end + 4 + bodyLength);
        const entry: { method: string; path: string; authorization?: string } = { method: req.method, path: req.path };
        if (req.headers['authorization'] !== undefined) entry.authorization = req.headers['authorization'];
        this.requests.push(entry);
        const handler = this.#opts.handler;
        if (!handler) {
          stalled = true;
          return;
        }
        handler(req, sock, this);
        if (sock.writableEnded || sock.destroyed) {
          stalled = true;
          return;
        }
      }
    });
  }
}

function parseHead(head: string): RawRequest | undefined {
  const [line, ...rest] = head.split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line ?? '');
  if (!m?.[1] || !m[2]) return undefined;
  const headers: Record<string, string> = {};
  for (const h of rest) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  const url = new URL(m[2], 'http://hostile');
  return { method: m[1], target: m[2], path: url.pathname, query: url.searchParams, headers };
}
