/**
 * One endpoint's pull path: dns → tcp → tls → http → auth → manifest, as the
 * runtime walks it against one host (the registry, or a mirror from
 * hosts.toml), on one connection (connection.ts). For an image the first
 * request is the manifest HEAD, as containerd sends it: a 401 brings the
 * challenge (then the token, then the HEAD again), and once a host's
 * challenge and token are known the HEAD carries the token from the start,
 * so a steady-state probe is that one request. The token service is reached
 * as its own dns/tcp/tls hop with its own connection.
 */
import type { Target } from '../model/reference.js';
import type { StageOutcome, StepResult } from '../model/types.js';
import type { HttpDetail } from '../model/step-detail.js';
import { remainingMs } from '../net/deadline.js';
import { cacheOnlyDispatcher, createDispatcher, type HostOptions } from '../net/dispatcher.js';
import type { ClientCert } from '../net/tls-contexts.js';
import { rememberChallenges, rememberedChallenges } from './challenge-memory.js';
import { closeUnused, reachHost, type Connections } from './connection.js';
import { checkRealm, forbiddenRealmAddresses, isLinkLocalOrMetadata, refuseResolvedRealm } from './realm-policy.js';
import { authStage, type AuthOutcome } from './stages/auth.js';
import { httpStage } from './stages/http.js';
import { manifestStage } from './stages/manifest.js';
import { splitHostPort, toStep, type Failure, type Walk } from './walk-steps.js';
import { proxyDisplay } from '../node-config/proxy-env.js';

export { round, splitHostPort, toStep, type Failure, type Walk, type WalkOptions } from './walk-steps.js';

/** Where to send the requests: host[:port], scheme, trust, and the host's hosts.toml settings. */
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
  /** API path: "/v2" by default; an override_path endpoint's own ("/registry/v2"). */
  path?: string;
  /** Headers sent on every request to this host (hosts.toml `header`). */
  headers?: Record<string, string[]>;
  /** Client certificate and key (PEM text) presented in the TLS handshake (hosts.toml `client`). */
  clientCert?: ClientCert;
  /** TCP connect timeout for this host (hosts.toml `dial_timeout`). */
  dialTimeoutMs?: number;
  /** The registry namespace this host serves the image for, sent as `?ns=` (a mirror). */
  ns?: string;
  /**
   * The HTTP proxy containerd's environment sends this host through (https: a CONNECT tunnel;
   * http: each request to the proxy, in absolute form); absent: direct.
   */
  proxy?: URL;
}

/** Walk one endpoint. Returns the first failure, or null when the image (or registry) is reachable. */
export async function walkEndpoint(w: Walk, target: Target, endpoint: Endpoint): Promise<Failure | null> {
  let ep = endpoint;
  const { host, port } = splitHostPort(ep.endpoint, ep.scheme === 'http' ? 80 : 443);
  const conns: Connections = { pinned: new Map(), handed: new Map(), hosts: new Map() };
  const reached = await reachHost(
    w,
    host,
    port,
    ep.scheme === 'https'
      ? {
          ca: ep.ca,
          skipVerify: ep.skipVerify,
          ...(ep.httpFallback ? { httpFallback: true } : {}),
          ...(ep.clientCert ? { clientCert: ep.clientCert } : {}),
        }
      : null,
    conns,
    {
      ...(ep.dialTimeoutMs !== undefined ? { dialTimeoutMs: ep.dialTimeoutMs } : {}),
      ...(ep.proxy ? { proxy: ep.proxy } : {}),
    },
  );
  if (reached === 'plain-http') ep = { ...ep, scheme: 'http' };
  else if (reached) {
    closeUnused(conns);
    return reached;
  }

  const { ctx, opts } = w;
  const budget = remainingMs(ctx);
  const hostKey = host.toLowerCase();
  const hostOptions: HostOptions = {
    ...(ep.clientCert ? { clientCert: ep.clientCert } : {}),
    ...(ep.headers ? { headers: ep.headers } : {}),
    // An https host's http fallback (localhost only, which no proxy serves) goes direct.
    ...(ep.proxy && reached !== 'plain-http' ? { proxy: ep.proxy } : {}),
  };
  let redials = 0;
  const hosts = conns.hosts ?? new Map<string, HostOptions>();
  hosts.set(hostKey, hostOptions);
  const dispatcher = createDispatcher({
    pinned: conns.pinned,
    handed: conns.handed,
    hosts,
    onDial: () => redials++,
    ca: ep.ca,
    connectTimeoutMs: Math.min(budget, ep.dialTimeoutMs ?? budget),
    headersTimeoutMs: budget,
    bodyTimeoutMs: budget,
    skipVerify: new Set(ep.skipVerify ? [hostKey] : []),
    ...(opts.secureContexts ? { secureContexts: opts.secureContexts } : {}),
  });
  let httpStep: StepResult | undefined;
  try {
    // A redirect to a new host is reached like the token service: its own dns/tcp/tls hop.
    // Set inside reach(); a holder, so TS does not narrow it to null for good (TypeScript#9998).
    const hops: { failure: Failure | null } = { failure: null };
    const hopFailed = (): Failure | null => hops.failure;
    let phase: 'http' | 'manifest' = 'http';
    const reach = async (url: URL): Promise<StageOutcome<object> | null> => {
      const to = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
      if (conns.pinned.has(to)) return null;
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
      const tls = url.protocol === 'https:' ? { ca: ep.ca, skipVerify: false } : null;
      const redirectProxy = w.opts.proxyFor?.(tls ? 'https' : 'http', to, toPort);
      const hop = await reachHost(w, to, toPort, tls, conns, { vet, ...(redirectProxy ? { proxy: redirectProxy } : {}) });
      w.current = { stage: phase, host: ep.endpoint };
      if (hop === null || hop === 'plain-http') return null;
      hops.failure = hop;
      return hop.outcome;
    };

    const image = target.kind === 'image' ? target.ref : null;
    const repository = image ? image.repository : null;
    const reference = image ? (image.digest ?? image.tag ?? 'latest') : '';

    // A host whose challenge is known: the cached token goes with the first request (no traffic if none is cached).
    let pre: AuthOutcome | undefined;
    const remembered = image ? rememberedChallenges(opts.tokenCache, ep.endpoint) : undefined;
    if (remembered) {
      const a = await authStage(
        ctx,
        { endpoint: ep.endpoint, scheme: ep.scheme, repository, challenges: remembered, status: 401 },
        {
          dispatcher: cacheOnlyDispatcher(),
          timeoutMs: remainingMs(ctx),
          tokenCache: opts.tokenCache,
          ...(opts.credential ? { credential: opts.credential } : {}),
          ...(opts.secrets ? { secrets: opts.secrets } : {}),
        },
      );
      if (a.ok && a.authorization) pre = a;
    }

    w.current = { stage: 'http', host: ep.endpoint };
    const http = await httpStage(
      ctx,
      {
        endpoint: ep.endpoint,
        scheme: ep.scheme,
        ...(ep.path !== undefined ? { path: ep.path } : {}),
        ...(image && repository !== null
          ? {
              manifest: {
                repository,
                reference,
                ...(ep.ns !== undefined ? { ns: ep.ns } : {}),
                ...(pre?.authorization ? { authorization: pre.authorization } : {}),
              },
            }
          : {}),
      },
      { dispatcher, timeoutMs: remainingMs(ctx), reach },
    );
    if (hopFailed() !== null) return hopFailed(); // a redirect's host could not be reached: its steps are recorded
    httpStep = toStep('http', http);
    w.steps.push(httpStep);
    if (!http.ok) return { outcome: http, stage: 'http' };
    const status = http.challengeStatus ?? http.detail.status ?? 0;
    if (image) {
      if (status === 401) rememberChallenges(opts.tokenCache, ep.endpoint, http.detail.challenges);
      else if (!pre) rememberChallenges(opts.tokenCache, ep.endpoint, []);
    }

    let auth: AuthOutcome;
    if (pre && status !== 401) {
      auth = pre; // the token came from the cache and the registry took it
    } else {
      const failed = await reachRealm(w, ep.endpoint, ep.ca, http.detail.challenges, conns);
      if (failed) return failed;
      w.current = { stage: 'auth', host: ep.endpoint };
      auth = await authStage(
        ctx,
        { endpoint: ep.endpoint, scheme: ep.scheme, repository, challenges: http.detail.challenges, status },
        {
          dispatcher,
          timeoutMs: remainingMs(ctx),
          tokenCache: opts.tokenCache,
          pinned: conns.pinned,
          ...(opts.credential ? { credential: opts.credential } : {}),
          ...(opts.secrets ? { secrets: opts.secrets } : {}),
        },
      );
    }
    // Through a plain-http proxy, the proxy's own demand for credentials can arrive as a 401
    // (tinyproxy answers so): containerd reads it as the registry's, and so does the verdict; the message says
    // when the answer lacks the registry's API version header.
    if (!auth.ok && ep.scheme === 'http' && ep.proxy && http.detail.apiVersion === undefined) {
      auth = {
        ...auth,
        message: `${auth.message ?? ''} (the answer came through the proxy ${proxyDisplay(ep.proxy)} without the registry's Docker-Distribution-API-Version header: it may be the proxy asking for its own credentials)`,
      };
    }
    w.steps.push(toStep('auth', auth));
    if (!auth.ok) return { outcome: auth, stage: 'auth' };
    if (!image || repository === null) return null;

    // The HEAD's answer stands when it was sent with the authorization the manifest request would carry.
    const sentWith = http.head && status !== 401 ? (pre?.authorization ?? '') : undefined;
    const reuse = sentWith !== undefined && sentWith === (auth.authorization ?? '');
    phase = 'manifest';
    w.current = { stage: 'manifest', host: ep.endpoint };
    const manifest = await manifestStage(
      ctx,
      {
        endpoint: ep.endpoint,
        scheme: ep.scheme,
        repository,
        reference,
        ...(auth.authorization ? { authorization: auth.authorization } : {}),
        hasCredential: auth.credentialsSent ?? opts.credential !== undefined,
        ...(ep.path !== undefined ? { path: ep.path } : {}),
        ...(ep.ns !== undefined ? { ns: ep.ns } : {}),
        ...(reuse && http.head ? { head: http.head } : {}),
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
    if (hopFailed() !== null) return hopFailed(); // its steps are recorded already
    w.steps.push(toStep('manifest', manifest));
    if (!manifest.ok) return { outcome: manifest, stage: 'manifest' };
    return null;
  } finally {
    if (httpStep && redials > 0) (httpStep.detail as HttpDetail).redials = redials;
    closeUnused(conns);
    await dispatcher.release();
  }
}

/**
 * The token service is its own hop: reach it like the registry itself, once
 * its realm passed the policy (realm-policy.ts: https/http only, never
 * link-local or metadata, by name or by what it resolves to). A refused
 * realm is reported by authStage, without any connection.
 */
async function reachRealm(
  w: Walk,
  endpoint: string,
  ca: string[],
  challenges: HttpDetail['challenges'],
  conns: Connections,
): Promise<Failure | null> {
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  const checked = bearer ? checkRealm(bearer.params['realm'], endpoint) : null;
  const realm = checked?.ok ? checked : null;
  if (!realm || conns.pinned.has(realm.hostname.toLowerCase())) return null;
  const vet = (addresses: string[]): Failure | null => {
    const bad = forbiddenRealmAddresses(addresses);
    if (bad.length === 0) return null;
    const r = refuseResolvedRealm(realm, endpoint, bad);
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
  // The token request goes through the proxy containerd's environment names for the token service's host.
  const proxy = w.opts.proxyFor?.(realm.tls ? 'https' : 'http', realm.hostname, realm.port);
  const hop = await reachHost(w, realm.hostname, realm.port, realm.tls ? { ca, skipVerify: false } : null, conns, {
    vet,
    ...(proxy ? { proxy } : {}),
  });
  return hop !== null && hop !== 'plain-http' ? hop : null;
}
