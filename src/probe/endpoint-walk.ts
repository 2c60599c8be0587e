/**
 * One endpoint's pull path: dns → tcp → tls → http(/v2/) → auth → manifest,
 * as the runtime walks it against one host (the registry, or a mirror from
 * hosts.toml). The token service is reached as its own dns/tcp/tls hop.
 */
import { REASONS, stageOf, type Stage } from '../diagnosis/catalog.js';
import type { ProbeContext, StageOutcome, StepDetails, StepOf, StepResult } from '../model/types.js';
import { remainingMs } from '../net/deadline.js';
import type { Target } from '../model/reference.js';
import { dnsStage } from './stages/dns.js';
import { tcpStage } from './stages/tcp.js';
import { tlsStage } from './stages/tls.js';
import { createDispatcher } from '../net/dispatcher.js';
import { httpStage } from './stages/http.js';
import { authStage } from './stages/auth.js';
import { checkRealm, forbiddenRealmAddresses, isLinkLocalOrMetadata, refuseResolvedRealm } from './realm-policy.js';
import type { Secrets } from './scrub.js';
import { manifestStage } from './stages/manifest.js';
import type { TokenCache } from './token-cache.js';
import type { IndexCache } from './index-cache.js';
import type { SecureContextCache } from '../node-config/trust.js';
import type { Credential } from '../model/types.js';
import type { ProbeEnvironment } from '../node-config/environment.js';

/** Where to send the requests: host[:port], scheme, trust. */
export interface Endpoint {
  /** host or host:port as used in URLs ("registry.lab.test", "mirror:5000"). */
  endpoint: string;
  scheme: 'https' | 'http';
  /** Trusted CAs for this endpoint (system + --ca-file + hosts.toml `ca`). */
  ca: string[];
  skipVerify: boolean;
  /**
   * containerd 1.7.8+ for localhost:PORT: try https, and when the port
   * answers the TLS handshake with plain HTTP, go on in http on the same
   * port. That is its normal path for a plain-HTTP local registry: the
   * result is not degraded by it.
   */
  httpFallback?: boolean;
}

/** OpenSSL's codes for "the first bytes back were not a TLS record" (Go: tls.RecordHeaderError). */
const PLAIN_HTTP_TLS_ERRORS: ReadonlySet<string> = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

export interface WalkOptions {
  timeoutMs: number;
  connectTimeoutMs?: number;
  dnsPort?: number;
  checkPlatform: boolean;
  tokenCache: TokenCache;
  /** Index summaries remembered between probes; absent: none. */
  indexCache?: IndexCache;
  /** TLS contexts by trust set; absent: built per connection. */
  secureContexts?: SecureContextCache;
  credential?: Credential;
  /** Every credential and token sent during this probe, for scrubbing the result. */
  secrets?: Secrets;
}

export interface Walk {
  ctx: ProbeContext;
  env: ProbeEnvironment;
  opts: WalkOptions;
  steps: StepResult[];
  /** The stage in progress, for the deadline safety net. */
  current: { stage: Stage; host?: string };
}

export interface Failure {
  outcome: StageOutcome<object>;
  stage: Stage;
}

export function round(s: number): number {
  return Math.round(s * 1e6) / 1e6;
}

/**
 * The step for a stage's outcome, filed under the reason's stage (a manifest
 * request that timed out is an http step). StepDetails admits the producing
 * stage's detail under every stage its reasons belong to.
 */
export function toStep<S extends Stage>(stage: S, o: StageOutcome<StepDetails[S]>): StepResult {
  const step: { -readonly [K in keyof StepOf<Stage>]: StepOf<Stage>[K] } = {
    stage: o.ok || !o.reason ? stage : (stageOf(o.reason) ?? stage),
    ok: o.ok,
    seconds: round(o.seconds),
  };
  if (o.host !== undefined) step.host = o.host;
  if (!o.ok && o.reason) {
    step.reason = o.reason;
    step.message = o.message ?? REASONS[o.reason].message;
  }
  if (o.degraded) step.degraded = true;
  step.detail = roundSeconds(o.detail);
  return step as StepResult;
}

/** Round every `seconds` field in a detail tree to microseconds (clock subtraction leaves float noise). */
function roundSeconds<T>(v: T): T {
  return roundTree(v) as T;
}

function roundTree(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(roundTree);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = k === 'seconds' && typeof x === 'number' ? round(x) : roundTree(x);
  return out;
}

/** Split "host:port" / "[v6]:port" into parts. */
export function splitHostPort(endpoint: string, defaultPort = 443): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(endpoint);
  if (v6) return { host: v6[1] ?? '', port: v6[2] ? Number(v6[2]) : defaultPort };
  const i = endpoint.lastIndexOf(':');
  if (i > 0 && /^\d+$/.test(endpoint.slice(i + 1))) {
    return { host: endpoint.slice(0, i), port: Number(endpoint.slice(i + 1)) };
  }
  return { host: endpoint, port: defaultPort };
}

/**
 * dns → tcp → (tls) for one host; pins its working addresses for the HTTP
 * client. With `httpFallback`, a TLS handshake answered in plain HTTP is
 * recorded as an ok tls step noting the fallback, and 'plain-http' is returned.
 */
async function reachHost(
  w: Walk,
  host: string,
  port: number,
  tls: { ca: string[]; skipVerify: boolean; httpFallback?: boolean } | null,
  pinned: Map<string, string[]>,
  vet?: (addresses: string[]) => Failure | null,
): Promise<Failure | null | 'plain-http'> {
  const { ctx, env, opts } = w;
  w.current = { stage: 'dns', host };
  const dns = await dnsStage(
    ctx,
    { host },
    {
      resolvConf: env.resolvConf,
      ...(env.hosts ? { hosts: env.hosts } : {}),
      ...(opts.dnsPort ? { port: opts.dnsPort } : {}),
    },
  );
  w.steps.push(toStep('dns', dns));
  if (!dns.ok) return { outcome: dns, stage: 'dns' };
  const refused = vet?.(dns.detail.addresses);
  if (refused) return refused;

  w.current = { stage: 'tcp', host: `${host}:${port}` };
  const tcp = await tcpStage(
    ctx,
    { host, addresses: dns.detail.addresses, port },
    {
      connectTimeoutMs: opts.connectTimeoutMs ?? Math.max(500, Math.round(opts.timeoutMs * 0.4)),
    },
  );
  w.steps.push(toStep('tcp', tcp));
  if (!tcp.ok) return { outcome: tcp, stage: 'tcp' };

  if (tls) {
    w.current = { stage: 'tls', host: `${host}:${port}` };
    const first = tcp.detail.connected[0] ?? '';
    const out = await tlsStage(
      ctx,
      { host, address: first, port },
      {
        ca: tls.ca,
        handshakeTimeoutMs: remainingMs(ctx),
        skipVerify: tls.skipVerify,
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
      pinned.set(host, tcp.detail.connected);
      return 'plain-http';
    }
    w.steps.push(toStep('tls', out));
    if (!out.ok) return { outcome: out, stage: 'tls' };
  }
  pinned.set(host, tcp.detail.connected);
  return null;
}

/** Walk one endpoint. Returns the first failure, or null when the image (or registry) is reachable. */
export async function walkEndpoint(w: Walk, target: Target, endpoint: Endpoint): Promise<Failure | null> {
  let ep = endpoint;
  const { host, port } = splitHostPort(ep.endpoint, ep.scheme === 'http' ? 80 : 443);
  const pinned = new Map<string, string[]>();
  const skip = new Set<string>();
  if (ep.skipVerify) skip.add(host);
  const reached = await reachHost(w, host, port, ep.scheme === 'https' ? ep : null, pinned);
  if (reached === 'plain-http') ep = { ...ep, scheme: 'http' };
  else if (reached) return reached;

  const { ctx, opts } = w;
  const budget = remainingMs(ctx);
  const dispatcher = createDispatcher({
    pinned,
    ca: ep.ca,
    connectTimeoutMs: budget,
    headersTimeoutMs: budget,
    bodyTimeoutMs: budget,
    skipVerify: skip,
    ...(opts.secureContexts ? { secureContexts: opts.secureContexts } : {}),
  });
  try {
    w.current = { stage: 'http', host: ep.endpoint };
    const http = await httpStage(ctx, { endpoint: ep.endpoint, scheme: ep.scheme }, { dispatcher, timeoutMs: remainingMs(ctx) });
    w.steps.push(toStep('http', http));
    if (!http.ok) return { outcome: http, stage: 'http' };

    // The token service is its own hop: reach it like the registry itself, once
    // its realm passed the policy (realm-policy.ts: https/http only, never
    // link-local or metadata, by name or by what it resolves to). A refused
    // realm is reported by authStage, without any connection.
    const bearer = http.detail.challenges.find((c) => c.scheme === 'bearer');
    const checked = bearer ? checkRealm(bearer.params['realm'], ep.endpoint) : null;
    const realm = checked?.ok ? checked : null;
    if (realm && !pinned.has(realm.hostname)) {
      const vet = (addresses: string[]): Failure | null => {
        const bad = forbiddenRealmAddresses(addresses);
        if (bad.length === 0) return null;
        const r = refuseResolvedRealm(realm, ep.endpoint, bad);
        const outcome = {
          ok: false,
          reason: r.reason,
          message: r.message,
          host: r.host,
          seconds: 0,
          detail: { scheme: 'bearer' as const, ...(r.display !== undefined ? { realm: r.display } : {}), realmHost: r.host },
        };
        w.steps.push(toStep('auth', outcome));
        return { outcome, stage: 'auth' };
      };
      const hop = await reachHost(w, realm.hostname, realm.port, realm.tls ? { ca: ep.ca, skipVerify: false } : null, pinned, vet);
      if (hop !== null && hop !== 'plain-http') return hop;
    }

    w.current = { stage: 'auth', host: realm?.host ?? ep.endpoint };
    const auth = await authStage(
      ctx,
      {
        endpoint: ep.endpoint,
        scheme: ep.scheme,
        repository: target.kind === 'image' ? target.ref.repository : null,
        challenges: http.detail.challenges,
        status: http.detail.status ?? 0,
      },
      {
        dispatcher,
        timeoutMs: remainingMs(ctx),
        tokenCache: opts.tokenCache,
        pinned,
        ...(opts.credential ? { credential: opts.credential } : {}),
        ...(opts.secrets ? { secrets: opts.secrets } : {}),
      },
    );
    w.steps.push(toStep('auth', auth));
    if (!auth.ok) return { outcome: auth, stage: 'auth' };
    if (target.kind !== 'image') return null;

    // A manifest redirect to a new host is reached like the token service: its own dns/tcp/tls hop.
    // Set inside reach(); the assertion keeps TS from narrowing it to null for good (TypeScript#9998).
    let hopFailure = null as Failure | null;
    const reach = async (url: URL): Promise<StageOutcome<object> | null> => {
      const to = url.hostname.replace(/^\[|\]$/g, '');
      if (pinned.has(to)) return null;
      // Same policy as a token realm: a registry never sends the node to a link-local or metadata address.
      const refuse = (where: string): StageOutcome<object> => ({
        ok: false,
        reason: 'http_status',
        host: to,
        seconds: 0,
        detail: { redirect: `${url.protocol}//${url.host}` },
        message: `manifest redirect to ${where}: refused (a link-local or cloud metadata address is never contacted)`,
      });
      if (isLinkLocalOrMetadata(to)) return refuse(to);
      const toPort = url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443;
      const vet = (addresses: string[]): Failure | null => {
        const bad = forbiddenRealmAddresses(addresses);
        return bad.length === 0 ? null : { outcome: refuse(`${to} (${bad.join(', ')})`), stage: 'manifest' };
      };
      const hop = await reachHost(w, to, toPort, url.protocol === 'https:' ? { ca: ep.ca, skipVerify: false } : null, pinned, vet);
      w.current = { stage: 'manifest', host: ep.endpoint };
      if (hop === null || hop === 'plain-http') return null;
      hopFailure = hop;
      return hop.outcome;
    };
    w.current = { stage: 'manifest', host: ep.endpoint };
    const manifest = await manifestStage(
      ctx,
      {
        endpoint: ep.endpoint,
        scheme: ep.scheme,
        repository: target.ref.repository,
        reference: target.ref.digest ?? target.ref.tag ?? 'latest',
        ...(auth.authorization ? { authorization: auth.authorization } : {}),
        hasCredential: auth.credentialsSent ?? opts.credential !== undefined,
      },
      {
        dispatcher,
        timeoutMs: remainingMs(ctx),
        platform: w.env.platform,
        checkPlatform: opts.checkPlatform,
        reach,
        ...(opts.indexCache ? { indexCache: opts.indexCache } : {}),
      },
    );
    if (hopFailure !== null) return hopFailure; // its steps are recorded already
    w.steps.push(toStep('manifest', manifest));
    if (!manifest.ok) return { outcome: manifest, stage: 'manifest' };
    return null;
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}
