/**
 * The auth stage: answer the registry's challenge the way containerd does
 * (pull-path-facts §1.2-1.4). Basic: send the credential. Bearer: fetch a
 * token from the realm (GET with service and `repository:<repo>:pull`, Basic
 * credentials when there are any, anonymous otherwise), cached per
 * realm/service/scope/identity. The Authorization value is returned beside the
 * outcome, never inside `detail`, messages or errors.
 *
 * The chain resolves and pins the realm host (DNS/TCP/TLS stages) before
 * calling this; a connect failure that still happens here is classified with
 * that stage's reason and `host` = the realm host.
 */
import type { Dispatcher } from 'undici';
import type { Reason } from './catalog.js';
import { stageTimer } from './deadline.js';
import { classifyTransportError, send } from './dispatcher.js';
import { registryBase, statusLine } from './registry-http.js';
import { tokenCacheKey, type TokenCache } from './token-cache.js';
import type { Credential, ProbeContext, StageOutcome } from './types.js';
import type { Challenge } from './www-authenticate.js';

export interface AuthInput {
  endpoint: string;
  /** null for a bare-registry target (no scope; the credential is verified on /v2/). */
  repository: string | null;
  challenges: Challenge[];
  /** Status of GET /v2/. */
  status: number;
  scheme?: 'https' | 'http';
}

export interface AuthOptions {
  dispatcher: Dispatcher;
  timeoutMs: number;
  credential?: Credential;
  tokenCache: TokenCache;
}

export interface AuthDetail {
  scheme: 'none' | 'basic' | 'bearer';
  realm?: string;
  service?: string;
  scope?: string;
  tokenCached?: boolean;
  tokenExpiresIn?: number;
  credentialSource?: string;
  /** Status of the token request or of the verifying GET /v2/. */
  status?: number;
  error?: string;
}

export type AuthOutcome = StageOutcome<AuthDetail> & { authorization?: string };

const MAX_TOKEN_BODY = 1 << 20;

export function basicAuthorization(c: Credential): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

interface Fail {
  reason: Reason;
  message: string;
  host: string;
  status?: number;
  error?: string;
}

export async function authStage(ctx: ProbeContext, input: AuthInput, opts: AuthOptions): Promise<AuthOutcome> {
  const t0 = ctx.clock.now();
  const seconds = (): number => (ctx.clock.now() - t0) / 1000;
  const cred = opts.credential;
  const detail: AuthDetail = { scheme: 'none' };
  if (cred) detail.credentialSource = cred.source;
  const fail = (f: Fail): AuthOutcome => {
    if (f.status !== undefined) detail.status = f.status;
    if (f.error !== undefined) detail.error = f.error;
    return { ok: false, reason: f.reason, message: f.message, host: f.host, seconds: seconds(), detail };
  };
  const ok = (authorization?: string): AuthOutcome => {
    const out: AuthOutcome = { ok: true, host: input.endpoint, seconds: seconds(), detail };
    if (authorization) out.authorization = authorization;
    return out;
  };

  if (input.status === 200) return ok();
  const challenge = input.challenges.find((c) => c.scheme === 'bearer') ?? input.challenges.find((c) => c.scheme === 'basic');
  if (!challenge) {
    const digestOnly = input.challenges.some((c) => c.scheme === 'digest');
    return fail({
      reason: 'auth_required', host: input.endpoint,
      message: digestOnly
        ? 'unauthorized: the registry offers only Digest authentication, which container runtimes do not support'
        : 'unauthorized: authentication required (401 without a Basic or Bearer challenge)',
    });
  }

  let authorization: string;
  if (challenge.scheme === 'basic') {
    detail.scheme = 'basic';
    if (challenge.params.realm !== undefined) detail.realm = challenge.params.realm;
    if (!cred) {
      // A bare-registry target asks "can this node reach the registry?": a
      // Basic challenge proves it can; there are no credentials to check.
      if (input.repository === null) return ok();
      return fail({ reason: 'auth_required', host: input.endpoint, message: `unauthorized: authentication required (Basic auth, no credentials for ${input.endpoint})` });
    }
    authorization = basicAuthorization(cred);
  } else {
    detail.scheme = 'bearer';
    const got = await bearerToken(ctx, input, opts, challenge, detail);
    if ('reason' in got) return fail(got);
    authorization = got.authorization;
  }

  if (input.repository !== null) return ok(authorization); // verified by the manifest request
  // Bare registry, anonymous: the token service answered, which is all there
  // is to check; many registries refuse /v2/ to an anonymous token by design.
  if (!cred) return ok(authorization);
  const verify = await verifyOnPing(ctx, input, opts, authorization);
  return verify ? fail(verify) : ok(authorization);
}

async function bearerToken(
  ctx: ProbeContext, input: AuthInput, opts: AuthOptions, challenge: Challenge, detail: AuthDetail,
): Promise<{ authorization: string } | Fail> {
  const cred = opts.credential;
  const realm = challenge.params.realm;
  if (!realm) return { reason: 'token_error', host: input.endpoint, message: 'no realm specified for token auth challenge' };
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    return { reason: 'token_error', host: input.endpoint, message: 'invalid realm URL in the token auth challenge' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { reason: 'token_error', host: input.endpoint, message: `unsupported realm scheme ${url.protocol} in the token auth challenge` };
  }
  detail.realm = realm;
  const service = challenge.params.service;
  if (service !== undefined) detail.service = service;
  const scope = input.repository !== null ? pullScope(input.repository) : undefined;
  if (scope) detail.scope = scope;
  const key = tokenCacheKey({ realm, service, scope, username: cred?.username });
  const cached = opts.tokenCache.get(key);
  if (cached) {
    detail.tokenCached = true;
    detail.tokenExpiresIn = cached.expiresInSeconds;
    return { authorization: `Bearer ${cached.token}` };
  }
  detail.tokenCached = false;

  if (service !== undefined) url.searchParams.set('service', service);
  if (scope) url.searchParams.append('scope', scope);
  const host = url.host;
  const what = cred ? 'failed to fetch token' : 'failed to fetch anonymous token';
  const timer = stageTimer(ctx, opts.timeoutMs);
  let res;
  try {
    res = await send(url.toString(), {
      method: 'GET', dispatcher: opts.dispatcher, signal: timer.signal, maxBody: MAX_TOKEN_BODY,
      headers: { accept: 'application/json', ...(cred ? { authorization: basicAuthorization(cred) } : {}) },
    });
  } catch (err) {
    const f = classifyTransportError(err, timer.timedOut(), `${what} from ${host}`);
    const reason: Reason = f.reason === 'http_timeout' ? 'token_error' : f.reason;
    return { reason, host, message: f.message, ...(f.code ? { error: f.code } : {}) };
  } finally {
    timer.dispose();
  }

  const st = statusLine(res.status);
  if (res.status === 401 || res.status === 403) {
    return cred
      ? { reason: 'auth_rejected', host, status: res.status, message: `unauthorized: the token service ${host} rejected the credentials from ${cred.source} (${st})` }
      : { reason: 'auth_required', host, status: res.status, message: `unauthorized: authentication required (anonymous token refused by ${host}: ${st})` };
  }
  if (res.status < 200 || res.status >= 300) {
    return { reason: 'token_error', host, status: res.status, message: `${what}: unexpected status from GET request to ${host}${url.pathname}: ${st}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    return { reason: 'token_error', host, status: res.status, message: `${what}: the token service ${host} answered something that is not JSON` };
  }
  const r = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
  const token = typeof r.access_token === 'string' && r.access_token !== '' ? r.access_token
    : typeof r.token === 'string' ? r.token : '';
  if (token === '') {
    return { reason: 'token_error', host, status: res.status, message: `${what}: authorization server did not include a token in the response` };
  }
  const expiresIn = typeof r.expires_in === 'number' && r.expires_in > 0 ? r.expires_in : 60;
  const issuedAt = typeof r.issued_at === 'string' ? r.issued_at : undefined;
  opts.tokenCache.set(key, token, expiresIn, issuedAt);
  detail.tokenExpiresIn = expiresIn;
  return { authorization: `Bearer ${token}` };
}

/** Bare-registry target: prove the authorization works by re-getting /v2/ with it. */
async function verifyOnPing(ctx: ProbeContext, input: AuthInput, opts: AuthOptions, authorization: string): Promise<Fail | undefined> {
  const timer = stageTimer(ctx, opts.timeoutMs);
  const host = input.endpoint;
  try {
    const res = await send(`${registryBase(input.endpoint, input.scheme)}/v2/`, {
      method: 'GET', dispatcher: opts.dispatcher, signal: timer.signal, maxBody: 0, headers: { authorization },
    });
    if (res.status === 200) return undefined;
    const st = statusLine(res.status);
    const anonymous = !opts.credential;
    if (res.status === 401) {
      return anonymous
        ? { reason: 'auth_required', host, status: 401, message: `unauthorized: authentication required (GET /v2/ with an anonymous token: ${st})` }
        : { reason: 'auth_rejected', host, status: 401, message: `unauthorized: ${host} rejected the credentials from ${opts.credential?.source ?? ''} (${st})` };
    }
    if (res.status === 403) return { reason: 'access_denied', host, status: 403, message: `denied: GET /v2/ with credentials answered ${st}` };
    return { reason: 'http_status', host, status: res.status, message: `unexpected status from GET request to /v2/: ${st}` };
  } catch (err) {
    const f = classifyTransportError(err, timer.timedOut(), 'GET /v2/');
    return { reason: f.reason, host, message: f.message, ...(f.code ? { error: f.code } : {}) };
  } finally {
    timer.dispose();
  }
}
