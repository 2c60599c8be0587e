/**
 * One host's connection, stage by stage: dns → tcp (every address tried and
 * classified; the first that connected is kept) → [a tunnel step, for an
 * https host's proxy: CONNECT through it] → tls upgrade of that same socket → handed to the
 * HTTP client (dispatcher.ts `handed`), so the stages' timings are the raw
 * stamps of the connection the requests then use.
 */
import type net from 'node:net';
import { remainingMs } from '../net/deadline.js';
import { originKey, type HostOptions } from '../net/dispatcher.js';
import type { ClientCert } from '../net/tls-contexts.js';
import { openConnectTunnel } from '../net/proxy-tunnel.js';
import { proxyDisplay, proxyHost, proxyPort } from '../node-config/proxy-env.js';
import { joinHostPort } from '../shared/host-port.js';
import { dnsStage } from './stages/dns.js';
import { tcpStage } from './stages/tcp.js';
import { tlsStage } from './stages/tls.js';
import { round, toStep, type Failure, type Walk } from './walk-steps.js';

/** OpenSSL's codes for "the first bytes back were not a TLS record" (Go: tls.RecordHeaderError). */
const PLAIN_HTTP_TLS_ERRORS: ReadonlySet<string> = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

/** What the walk's hosts share for one endpoint: pinned addresses and the sockets waiting for the HTTP client. */
export interface Connections {
  /** hostname → addresses the DNS stage found (the dispatcher's only resolver). */
  pinned: Map<string, string[]>;
  /** originKey → the established socket for that origin's first request. */
  handed: Map<string, net.Socket>;
  /** hostname → what the HTTP client needs for it (headers, client certificate, proxy); read by the dispatcher at each request. */
  hosts?: Map<string, HostOptions>;
}

export interface TlsPlan {
  ca: string[];
  skipVerify: boolean;
  httpFallback?: boolean;
  clientCert?: ClientCert;
}

export interface ReachOptions {
  /** Refuse the addresses (realm policy) before any connection. */
  vet?: (addresses: string[]) => Failure | null;
  /** TCP connect timeout for this host (hosts.toml dial_timeout); default from the walk. */
  dialTimeoutMs?: number;
  /**
   * An HTTP proxy for this host: dns and tcp go to the proxy (their steps
   * name it; failing, they are proxy_error). For https, a CONNECT tunnel to
   * host:port follows (a refusal is proxy_error), then the TLS handshake
   * with the host over the tunnel. For plain http there is no tunnel: the
   * connection to the proxy is handed over as the proxy's own origin, and
   * the dispatcher sends this host's requests to the proxy in absolute form.
   */
  proxy?: URL;
}

/**
 * dns → tcp → (tls) for one host; pins its addresses and hands the
 * connection over. With `httpFallback`, a TLS handshake answered in plain
 * HTTP is recorded as an ok tls step noting the fallback, and 'plain-http'
 * is returned (that socket is closed; the client dials the port again).
 */
export async function reachHost(
  w: Walk,
  host: string,
  port: number,
  tls: TlsPlan | null,
  conns: Connections,
  o: ReachOptions = {},
): Promise<Failure | null | 'plain-http'> {
  const { ctx, env, opts } = w;
  const proxy = o.proxy;
  const dialHost = proxy ? proxyHost(proxy) : host;
  const dialPort = proxy ? proxyPort(proxy) : port;
  w.current = { stage: 'dns', host: dialHost };
  const dns = await dnsStage(
    ctx,
    { host: dialHost },
    {
      resolvConf: env.resolvConf,
      ...(env.hosts ? { hosts: env.hosts } : {}),
      ...(opts.dnsPort ? { port: opts.dnsPort } : {}),
    },
  );
  w.steps.push(toStep('dns', dns));
  // What the proxy was to carry: a tunnel for https, the requests themselves for plain http.
  const proxied = tls ? `CONNECT ${joinHostPort(host, port)}` : `http://${joinHostPort(host, port)}`;
  if (!dns.ok) return proxy ? proxyUnreachable(w, proxy, proxied, dns.message) : { outcome: dns, stage: 'dns' };
  const refused = o.vet?.(dns.detail.addresses);
  if (refused) return refused;

  w.current = { stage: 'tcp', host: joinHostPort(dialHost, dialPort) };
  const tcp = await tcpStage(
    ctx,
    { host: dialHost, addresses: dns.detail.addresses, port: dialPort },
    { connectTimeoutMs: dialTimeout(opts, o.dialTimeoutMs), keep: true },
  );
  w.steps.push(toStep('tcp', tcp));
  if (!tcp.ok) return proxy ? proxyUnreachable(w, proxy, proxied, tcp.message) : { outcome: tcp, stage: 'tcp' };
  // Connections the HTTP client dials again for this host go through the same proxy.
  if (proxy && conns.hosts) conns.hosts.set(host.toLowerCase(), { ...conns.hosts.get(host.toLowerCase()), proxy });
  conns.pinned.set(dialHost.toLowerCase(), tcp.detail.connected);
  let socket = tcp.socket;
  if (proxy && socket && tls) {
    w.current = { stage: 'http', host: joinHostPort(dialHost, dialPort) };
    const tunnel = await openConnectTunnel(
      socket,
      proxy,
      { host, port },
      {
        signal: ctx.signal,
        timeoutMs: remainingMs(ctx),
        clock: ctx.clock,
        ...(ctx.timers ? { timers: ctx.timers } : {}),
      },
    );
    if (!tunnel.ok) {
      const outcome = {
        ok: false,
        reason: tunnel.reason,
        message: tunnel.message,
        host: joinHostPort(dialHost, dialPort),
        seconds: tunnel.seconds,
        detail: {
          challenges: [],
          request: `CONNECT ${joinHostPort(host, port)}`,
          ...(tunnel.status !== undefined ? { status: tunnel.status } : {}),
          ...(tunnel.code !== undefined ? { error: tunnel.code } : {}),
        },
      };
      w.steps.push(toStep('http', outcome));
      return { outcome, stage: 'http' };
    }
    socket = tunnel.socket;
  }

  if (!tls) {
    if (socket) hand(conns, proxy ? originKey('http', dialHost, dialPort) : originKey('http', host, port), socket);
    return null;
  }
  w.current = { stage: 'tls', host: `${host}:${port}` };
  const first = tcp.detail.connected[0] ?? '';
  const out = await tlsStage(
    ctx,
    { host, address: first, port, ...(socket ? { socket } : {}) },
    {
      ca: tls.ca,
      handshakeTimeoutMs: remainingMs(ctx),
      skipVerify: tls.skipVerify,
      keep: true,
      ...(tls.clientCert ? { clientCert: tls.clientCert } : {}),
      ...(opts.secureContexts ? { secureContexts: opts.secureContexts } : {}),
    },
  );
  const code = out.ok ? undefined : out.detail.error;
  if (tls.httpFallback && code !== undefined && PLAIN_HTTP_TLS_ERRORS.has(code)) {
    w.steps.push({
      stage: 'tls',
      ok: true,
      seconds: round(out.seconds),
      host: `${host}:${port}`,
      detail: {
        plainHttp: true,
        error: code,
        fallback: 'http',
        note: 'the port answers in plain HTTP; containerd falls back to http for a localhost registry',
      },
    });
    return 'plain-http';
  }
  w.steps.push(toStep('tls', out));
  if (!out.ok) return { outcome: out, stage: 'tls' };
  if (out.socket) hand(conns, originKey('https', host, port), out.socket);
  return null;
}

/** The TCP connect timeout: the host's own (hosts.toml dial_timeout), else the probe's, else 40 % of the probe's deadline (at least 500 ms). */
export function dialTimeout(opts: { connectTimeoutMs?: number; timeoutMs: number }, hostMs: number | undefined): number {
  return hostMs ?? opts.connectTimeoutMs ?? Math.max(500, Math.round(opts.timeoutMs * 0.4));
}

function hand(conns: Connections, origin: string, socket: net.Socket): void {
  conns.handed.get(origin)?.destroy();
  conns.handed.set(origin, socket);
}

/** Close every socket no request took. */
export function closeUnused(conns: Connections): void {
  for (const s of conns.handed.values()) s.destroy();
  conns.handed.clear();
}

/**
 * The proxy itself cannot be reached (its name does not resolve, its port refuses or
 * stays silent): its dns/tcp step is already recorded; the verdict is proxy_error
 * naming the proxy, as containerd reports it (`proxyconnect tcp: dial tcp …`), never a
 * fault of the registry behind it.
 */
function proxyUnreachable(w: Walk, proxy: URL, request: string, why: string | undefined): Failure {
  const outcome = {
    ok: false,
    reason: 'proxy_error' as const,
    message: `proxyconnect: cannot connect to the proxy ${proxyDisplay(proxy)}${why ? `: ${why}` : ''}`,
    host: joinHostPort(proxyHost(proxy), proxyPort(proxy)),
    seconds: 0,
    detail: { challenges: [], request },
  };
  w.steps.push(toStep('http', outcome));
  return { outcome, stage: 'http' };
}
