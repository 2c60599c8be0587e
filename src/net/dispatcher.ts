/**
 * The undici dispatcher every registry request goes through, plus the small
 * transport helpers the http/auth/manifest stages share.
 *
 * Host names are never resolved here: the chain's DNS stage resolves each
 * host with the node's resolv.conf and pins the answers in `pinned` (a live
 * Map: the token service host is added once the chain has reached it). A host that was
 * not pinned fails with ENOTFOUND instead of silently using another resolver.
 *
 * One connection per host and probe: the chain's TCP/TLS stages hand over
 * the socket they verified (`handed`, by origin), and the first request to
 * that origin runs on it; later ones reuse it (keep-alive, one Client per
 * origin), a HEAD's included. When the socket is gone (a server may close
 * an idle one, or answer with Connection: close), the next request dials again
 * through the pinned lookup, and `onDial` counts it.
 */
import { isIP, type LookupFunction, type Socket } from 'node:net';
import { Agent, buildConnector, request, type Dispatcher } from './undici-parts.js';
// Namespaced types only (erased): the code itself loads just the parts of undici in use.
import type { Agent as AgentTypes, buildConnector as ConnectorTypes } from 'undici';
import { connect as tlsConnect } from 'node:tls';
import { secureContextFor, type ClientCert } from './tls-contexts.js';
import { connectThroughProxy, plainProxyRequest } from './proxy-tunnel.js';
import { proxyHost, proxyPort } from '../node-config/proxy-env.js';
import { joinHostPort } from '../shared/host-port.js';
import type { Reason } from '../diagnosis/catalog.js';
import { SecureContextCache } from '../node-config/trust.js';
import { errorCode, tcpReasonForCode, tlsReasonForCode } from './error-codes.js';
import type { HeaderMap } from './registry-errors.js';

export interface DispatcherOptions {
  /** hostname (lowercase, no port, no brackets) → addresses from the DNS stage. Live: read at connect time. */
  pinned: Map<string, string[]>;
  /** Extra trusted CAs (PEM), added to Node's bundled roots. */
  ca: string[];
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Hostnames whose certificate is not verified (hosts.toml skip_verify). */
  skipVerify?: Set<string>;
  /** Where the SecureContext for `ca` is kept (the probe's caches); default: built for this dispatcher only. */
  secureContexts?: SecureContextCache;
  /** Established sockets by origin (originKey), each used once for that origin's first connection. Live. */
  handed?: Map<string, Socket>;
  /** Per hostname: a client certificate for the handshake, headers for every request (hosts.toml). */
  hosts?: ReadonlyMap<string, HostOptions>;
  /** Called for every connection dialled here (not handed over), with its origin key. */
  onDial?: (origin: string) => void;
}

export interface HostOptions {
  clientCert?: ClientCert;
  /** Sent on every request to this host (hosts.toml `header`). */
  headers?: Record<string, string[]>;
  /**
   * This host's HTTP proxy; the proxy's host must be pinned. https goes through a CONNECT
   * tunnel; plain http requests go to the proxy itself, in absolute form (Go's transport).
   */
  proxy?: URL;
}

/** "https://host:443": the key of `handed` (lowercase host, no brackets, explicit port). */
export function originKey(protocol: 'https' | 'http' | 'https:' | 'http:', hostname: string, port: number | string | undefined): string {
  const scheme = protocol.replace(/:$/, '');
  const p = port === undefined || port === '' ? (scheme === 'http' ? 80 : 443) : Number(port);
  return `${scheme}://${normaliseHost(hostname)}:${p}`;
}

function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/** A net/tls `lookup` that answers only from the pinned map. */
export function pinnedLookup(pinned: Map<string, string[]>): LookupFunction {
  return (hostname, options, callback) => {
    const all = pinned.get(normaliseHost(hostname)) ?? [];
    const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    const list = all
      .map((address) => ({ address, family: isIP(address) }))
      .filter((a) => a.family !== 0 && (family === 0 || a.family === family));
    const first = list[0];
    if (!first) {
      const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname} (not resolved by the probe's DNS stage)`), {
        code: 'ENOTFOUND',
        hostname,
      });
      process.nextTick(() => callback(err, ''));
      return;
    }
    if (options.all) process.nextTick(() => callback(null, list));
    else process.nextTick(() => callback(null, first.address, first.family));
  };
}

/** Response header limit, as Go's http.DefaultMaxHeaderBytes (1 MB) rounded up. */
export const MAX_RESPONSE_HEADER_BYTES = 1 << 20;

/** What release() closes the agent with: one error for every probe, as nothing waits on it. */
const RELEASED = Object.assign(new Error('the probe is over'), { code: 'PULLPROBE_RELEASED' });

/**
 * The Agent, adding each host's configured headers to the requests sent to it, and
 * sending a plain-http host's requests to its proxy: the proxy's origin (one
 * connection for every host behind it, as Go keys it), the absolute URL as the
 * request target, the host's own Host header, and the proxy's credentials.
 */
export class ProbeAgent extends Agent {
  readonly #hosts: ReadonlyMap<string, HostOptions> | undefined;
  readonly #sockets: Set<Socket>;
  readonly #byOrigin: ReadonlyMap<string, Socket>;

  constructor(
    options: AgentTypes.Options,
    hosts: ReadonlyMap<string, HostOptions> | undefined,
    sockets: Set<Socket>,
    byOrigin: ReadonlyMap<string, Socket> = new Map(),
  ) {
    super(options);
    this.#hosts = hosts;
    this.#sockets = sockets;
    this.#byOrigin = byOrigin;
  }

  /**
   * A request to `url` now would go on a connection that is already open (one that has
   * carried a request): the connection of the URL's origin, or of its plain-http proxy.
   */
  hasOpenConnection(url: URL): boolean {
    const proxy = url.protocol === 'http:' ? this.#hosts?.get(normaliseHost(url.hostname))?.proxy : undefined;
    const key = proxy
      ? originKey('http', proxyHost(proxy), proxyPort(proxy))
      : originKey(url.protocol === 'http:' ? 'http' : 'https', url.hostname, url.port);
    const socket = this.#byOrigin.get(key);
    return socket !== undefined && !socket.destroyed;
  }

  /**
   * The probe is over: close its connections, then the agent. undici's destroy() closes a
   * connection with an error, which Node turns into a formatted stack trace on every probe (a
   * measurable share of the agent's CPU, issue 10); a socket already closed here is left alone.
   */
  async release(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    // With no error given, undici makes one per client (a stack trace captured each time); no request is pending here.
    await this.destroy(RELEASED).catch(() => undefined);
  }

  override dispatch(options: AgentTypes.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = options.origin !== undefined && this.#hosts ? urlOf(options.origin) : null;
    const host = origin ? this.#hosts?.get(normaliseHost(origin.hostname)) : undefined;
    const extra = host?.headers;
    const proxy = origin?.protocol === 'http:' ? host?.proxy : undefined;
    if ((!extra || Object.keys(extra).length === 0) && !proxy) return super.dispatch(options, handler);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(extra ?? {})) headers[k.toLowerCase()] = v;
    // The request's own headers (Accept, Authorization) win over configured ones of the same name.
    if (options.headers && typeof options.headers === 'object' && !Array.isArray(options.headers)) {
      for (const [k, v] of Object.entries(options.headers as Record<string, string | string[] | undefined>)) {
        if (v !== undefined) headers[k.toLowerCase()] = v;
      }
    }
    if (!proxy || !origin) return super.dispatch({ ...options, headers }, handler);
    const forward = plainProxyRequest(proxy, new URL(`${origin.origin}${options.path}`));
    return super.dispatch(
      {
        ...options,
        origin: `http://${joinHostPort(proxyHost(proxy), proxyPort(proxy))}`,
        path: forward.path,
        headers: { ...headers, ...forward.headers, host: origin.host },
      },
      handler,
    );
  }
}

function urlOf(origin: string | URL): URL | null {
  try {
    return typeof origin === 'string' ? new URL(origin) : origin;
  } catch {
    return null;
  }
}

export function createDispatcher(opts: DispatcherOptions): ProbeAgent {
  const lookup = pinnedLookup(opts.pinned);
  const sockets = new Set<Socket>();
  const byOrigin = new Map<string, Socket>();
  // opts.ca already holds the system roots (loadTrust); one shared context per trust set.
  const connectors = new Map<string, ConnectorTypes.connector>();
  const connectorFor = (hostname: string): ConnectorTypes.connector => {
    const skip = opts.skipVerify?.has(hostname) === true;
    const clientCert = opts.hosts?.get(hostname)?.clientCert;
    const key = `${skip ? 'unverified' : 'verified'}${clientCert ? `:${hostname}` : ''}`;
    let c = connectors.get(key);
    if (!c) {
      const secureContext =
        opts.ca.length > 0 || clientCert ? { secureContext: secureContextFor(opts.secureContexts, opts.ca, clientCert) } : {};
      c = buildConnector({ lookup, timeout: opts.connectTimeoutMs, ...secureContext, rejectUnauthorized: !skip });
      connectors.set(key, c);
    }
    return c;
  };
  const handed = opts.handed;
  return new ProbeAgent(
    {
      // servername (SNI) defaults to the URL's hostname in undici's connector.
      connect: (o, done) => {
        const origin = originKey(o.protocol === 'http:' ? 'http' : 'https', o.hostname, o.port);
        const cb: ConnectorTypes.Callback = (...args) => {
          if (args[1]) {
            sockets.add(args[1]);
            byOrigin.set(origin, args[1]);
          }
          done(...args);
        };
        const socket = handed?.get(origin);
        if (socket) {
          handed?.delete(origin);
          if (!socket.destroyed && socket.readyState === 'open') {
            // Asynchronously, as a real dial: undici's connect loop is not re-entrant.
            process.nextTick(() => cb(null, socket));
            return;
          }
          socket.destroy();
        }
        opts.onDial?.(origin);
        const hostname = normaliseHost(o.hostname);
        const proxy = o.protocol === 'https:' ? opts.hosts?.get(hostname)?.proxy : undefined;
        if (proxy) {
          dialThroughProxy(proxy, hostname, Number(o.port || 443), opts, cb);
          return;
        }
        connectorFor(hostname)(o, cb);
      },
      // One connection per origin, kept alive across the probe's requests.
      connections: 1,
      headersTimeout: opts.headersTimeoutMs,
      bodyTimeout: opts.bodyTimeoutMs,
      // Node's default is 16 KiB; Go's net/http (containerd) accepts ~1 MB of
      // response headers, so a registry with big headers is not a network fault.
      maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
    },
    opts.hosts,
    sockets,
    byOrigin,
  );
}

/** A new connection to a proxied https host: dial the pinned proxy, CONNECT, TLS with the host over the tunnel. */
function dialThroughProxy(proxy: URL, hostname: string, port: number, opts: DispatcherOptions, cb: ConnectorTypes.Callback): void {
  const address = opts.pinned.get(proxyHost(proxy).toLowerCase())?.[0];
  const o = { signal: new AbortController().signal, timeoutMs: opts.connectTimeoutMs, ...(address ? { address } : {}) };
  connectThroughProxy(proxy, { host: hostname, port }, o).then(
    (t) => {
      if (!t.ok) {
        cb(Object.assign(new Error(t.message), { code: 'UND_ERR_PROXY' }), null);
        return;
      }
      const clientCert = opts.hosts?.get(hostname)?.clientCert;
      const socket = tlsConnect({
        socket: t.socket,
        host: hostname, // the name the certificate is checked against
        ...(isIP(hostname) ? {} : { servername: hostname }),
        secureContext: secureContextFor(opts.secureContexts, opts.ca, clientCert),
        rejectUnauthorized: opts.skipVerify?.has(hostname) !== true,
      });
      const onError = (err: Error): void => cb(err, null);
      socket.once('error', onError);
      socket.once('secureConnect', () => {
        socket.off('error', onError);
        cb(null, socket);
      });
    },
    (err: unknown) => cb(err instanceof Error ? err : new Error(String(err)), null),
  );
}

let cacheOnly: Agent | undefined;

/**
 * A dispatcher that never connects: every request fails with
 * PULLPROBE_CACHE_ONLY. For asking a stage what it can answer from its
 * caches alone (the auth stage's cached token), without any traffic.
 */
export function cacheOnlyDispatcher(): Agent {
  cacheOnly ??= new Agent({
    connect: (_o, cb) => {
      cb(Object.assign(new Error('no connection: answered from the caches only'), { code: 'PULLPROBE_CACHE_ONLY' }), null);
    },
  });
  return cacheOnly;
}

// ---- transport helpers shared by the registry stages ----

export interface SendOptions {
  method: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  /** POST: the request body. */
  body?: string;
  dispatcher: Dispatcher;
  signal: AbortSignal;
  /** Read at most this many bytes of the body (the rest is discarded). 0 = discard. */
  maxBody: number;
}

export interface SendResult {
  status: number;
  headers: HeaderMap;
  body: string;
}

/** A connection closed under a request before any answer (undici's "other side closed", a reset, a broken pipe). */
const CLOSED_BEFORE_ANSWER = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/**
 * One request; the body is always consumed or destroyed. Throws transport errors.
 *
 * A GET or HEAD sent on a connection that had already carried a request, which the
 * server (or a proxy: tinyproxy closes after every answer without saying so) closed
 * before answering, is sent once more on a new connection, as Go's transport
 * (containerd's) retries a replayable request on a reused connection. On a connection's
 * first request the error stands.
 */
export async function send(url: string, o: SendOptions): Promise<SendResult> {
  const ask = (): ReturnType<typeof request> =>
    request(url, {
      method: o.method,
      headers: { 'user-agent': 'pullprobe', ...o.headers },
      ...(o.body !== undefined ? { body: o.body } : {}),
      // undici closes a connection after every HEAD (for servers that answer HEAD with a body);
      // Go's client, containerd's, keeps it: the probe's next request (the index GET, the HEAD
      // again with a token) goes on the same connection, as containerd's does.
      ...(o.method === 'HEAD' ? { reset: false } : {}),
      dispatcher: o.dispatcher,
      signal: o.signal,
    });
  const replayable = o.method !== 'POST' && o.dispatcher instanceof ProbeAgent && o.dispatcher.hasOpenConnection(new URL(url));
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await ask();
  } catch (err) {
    const code = errorCode(err);
    if (!replayable || code === undefined || !CLOSED_BEFORE_ANSWER.has(code) || o.signal.aborted) throw err;
    res = await ask();
  }
  let body = '';
  if (o.maxBody <= 0 || o.method === 'HEAD') {
    await res.body.dump();
  } else {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      chunks.push(b);
      n += b.length;
      if (n >= o.maxBody) break; // leaving the loop destroys the stream
    }
    body = Buffer.concat(chunks).subarray(0, o.maxBody).toString('utf8');
  }
  return { status: res.statusCode, headers: res.headers, body };
}

export interface TransportFailure {
  reason: Reason;
  message: string;
  code?: string;
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'ABORT_ERR', 'PULLPROBE_DEADLINE']);

/**
 * Classify an error thrown by `send`. `what` names the request for the message
 * ("GET /v2/"). Decision for errors after the connection was up: by the time
 * the http/auth/manifest stages run, the chain's TCP and TLS stages have
 * already succeeded against the same addresses, so a reset or close in the
 * middle of the exchange (ECONNRESET, EPIPE, "other side closed") means the
 * endpoint accepted the connection but never delivered an answer. That is
 * reported as http_timeout (cause network: registry/LB/proxy on the path),
 * with the code in the message. Errors of a fresh connect (refused, no route,
 * certificate) keep the TCP/TLS reason they would have had in those stages.
 */
export function classifyTransportError(err: unknown, timedOut: boolean, what: string): TransportFailure {
  const code = errorCode(err);
  const withCode = (r: Reason, message: string): TransportFailure => (code ? { reason: r, message, code } : { reason: r, message });
  if (timedOut || (code !== undefined && TIMEOUT_CODES.has(code))) {
    return withCode('http_timeout', `${what}: context deadline exceeded`);
  }
  if (code === 'UND_ERR_HEADERS_OVERFLOW') {
    return withCode('http_status', `${what}: the response headers are larger than ${MAX_RESPONSE_HEADER_BYTES >> 20} MiB`);
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return withCode('tcp_timeout', `${what}: dial tcp: i/o timeout`);
  // The connection was up and the peer answered bytes that are not HTTP: it is not a registry.
  if (code?.startsWith('HPE_') || (err instanceof Error && err.name === 'HTTPParserError')) {
    return withCode('not_a_registry', `${what}: the server answered with something that is not HTTP${code ? ` (${code})` : ''}`);
  }
  if (code === 'ENOTFOUND') return withCode('dns_nxdomain', `${what}: no such host`);
  if (code === 'UND_ERR_PRX_TLS' || code === 'UND_ERR_PROXY') return withCode('proxy_error', `${what}: proxy error (${code})`);
  if (code !== undefined && code !== 'ECONNRESET') {
    const tcp = tcpReasonForCode(code);
    if (tcp) return withCode(tcp, `${what}: ${code}`);
    if (isTlsCode(code)) return withCode(tlsReasonForCode(code), `${what}: tls: ${code}`);
  }
  return withCode('http_timeout', `${what}: connection closed before a response${code ? ` (${code})` : ''}`);
}

function isTlsCode(code: string): boolean {
  return tlsReasonForCode(code) !== 'tls_handshake' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO';
}
