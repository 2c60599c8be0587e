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
 *
 * The realm is the registry's word, so it is checked first (realm-policy.ts):
 * https/http only, never a link-local or metadata address, credentials only
 * over https. Registry-supplied text is scrubbed of every credential sent
 * (scrub.ts); every Authorization value used is added to `opts.secrets`.
 */
import type { Dispatcher } from 'undici';
import type { Reason } from '../../diagnosis/catalog.js';
import { stageTimer } from '../../net/deadline.js';
import { classifyTransportError, send, type SendResult } from '../../net/dispatcher.js';
import { checkRealm, forbiddenRealmAddresses, refuseResolvedRealm } from '../realm-policy.js';
import { headerValues, parseRegistryErrors } from '../../net/registry-errors.js';
import { registryBase, statusLine } from './http.js';
import { cleanRegistryText, Secrets } from '../scrub.js';
import { tokenCacheKey, tokenExpiry, tokenLifetime, type TokenCache } from '../token-cache.js';
import { formValue, MAX_TOKEN_BODY, oauthForm, postForm } from '../token-request.js';
export { oauthForm } from '../token-request.js';
import type { Credential, ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import { parseWwwAuthenticate, type Challenge } from '../www-authenticate.js';
import type { AuthDetail } from '../../model/step-detail.js';
export type { AuthDetail } from '../../model/step-detail.js';

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
  /** Collects every credential and token sent, for scrubbing the result. Default: a private one. */
  secrets?: Secrets;
  /** The chain's pinned addresses (host → addresses): a realm host resolved to a link-local/metadata address is refused. */
  pinned?: ReadonlyMap<string, readonly string[]>;
}

/**
 * `authorization`: the value for the manifest requests. `credentialsSent`:
 * whether the node's credentials went into that authorization (false when
 * anonymous, or withheld from a cleartext realm): the manifest stage's
 * `hasCredential`. Neither is ever serialised into a step.
 */
export type AuthOutcome = StageOutcome<AuthDetail> & {
  authorization?: string;
  credentialsSent?: boolean;
  /** Bearer: when the token expires by its token service's `expires_in` (epoch ms), for the credential expiry metric. */
  tokenExpiresAt?: number;
};

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

export const authStage = async function authStage(ctx: ProbeContext, input: AuthInput, opts: AuthOptions): Promise<AuthOutcome> {
  const t0 = ctx.clock.now();
  const seconds = (): number => (ctx.clock.now() - t0) / 1000;
  const cred = opts.credential;
  const secrets = opts.secrets ?? new Secrets();
  secrets.addCredential(cred);
  const detail: AuthDetail = { scheme: 'none' };
  if (cred) detail.credentialSource = cred.source;
  let tokenExpiresAt: number | undefined;
  const fail = (f: Fail): AuthOutcome => {
    if (f.status !== undefined) detail.status = f.status;
    if (f.error !== undefined) detail.error = f.error;
    return { ok: false, reason: f.reason, message: secrets.scrub(f.message), host: f.host, seconds: seconds(), detail };
  };
  const ok = (authorization?: string, credentialsSent = false): AuthOutcome => {
    const out: AuthOutcome = { ok: true, host: input.endpoint, seconds: seconds(), detail, credentialsSent };
    if (authorization) out.authorization = authorization;
    if (tokenExpiresAt !== undefined) out.tokenExpiresAt = tokenExpiresAt;
    return out;
  };

  if (input.status === 200) return ok();
  const challenge = input.challenges.find((c) => c.scheme === 'bearer') ?? input.challenges.find((c) => c.scheme === 'basic');
  if (!challenge) {
    const digestOnly = input.challenges.some((c) => c.scheme === 'digest');
    return fail({
      reason: 'auth_required',
      host: input.endpoint,
      message: digestOnly
        ? 'unauthorized: the registry offers only Digest authentication, which container runtimes do not support'
        : 'unauthorized: authentication required (401 without a Basic or Bearer challenge)',
    });
  }

  let authorization: string;
  if (challenge.scheme === 'basic') {
    detail.scheme = 'basic';
    if (challenge.params.realm !== undefined) detail.realm = cleanRegistryText(challenge.params.realm, secrets, 256);
    if (!cred) {
      // A bare-registry target asks "can this node reach the registry?": a
      // Basic challenge proves it can; there are no credentials to check.
      if (input.repository === null) return ok();
      return fail({
        reason: 'auth_required',
        host: input.endpoint,
        message: `unauthorized: authentication required (Basic auth, no credentials for ${input.endpoint})`,
      });
    }
    authorization = basicAuthorization(cred);
    secrets.addAuthorization(authorization);
  } else {
    detail.scheme = 'bearer';
    const got = await bearerToken(ctx, input, opts, challenge, detail, secrets);
    if ('reason' in got) return fail(got);
    authorization = got.authorization;
    tokenExpiresAt = got.tokenExpiresAt;
  }
  const credentialsSent = cred !== undefined && detail.credentialsWithheld !== true;

  if (input.repository !== null) return ok(authorization, credentialsSent); // verified by the manifest request
  // Bare registry, anonymous: the token service answered, which is all there
  // is to check; many registries refuse /v2/ to an anonymous token by design.
  if (!credentialsSent) return ok(authorization);
  const verify = await verifyOnPing(ctx, input, opts, authorization);
  return verify ? fail(verify) : ok(authorization, true);
} satisfies StageFn<AuthInput, AuthOptions, AuthDetail>;

/**
 * A 401 whose challenge says `error="invalid_token"` after the probe sent a
 * token the token service had just issued: the registry and its token
 * service disagree (signing key, issuer, service name, clock). Not missing
 * credentials: token_error when the token was anonymous, auth_rejected when
 * credentials were sent. undefined for any other 401. For the manifest stage
 * too (its 401 branch, before the generic verdicts).
 */
export function refusedTokenVerdict(
  wwwAuthenticate: readonly string[],
  o: { bearer: boolean; credentialsSent: boolean; host: string; what: string },
): { reason: 'token_error' | 'auth_rejected'; message: string } | undefined {
  if (!o.bearer) return undefined;
  const challenge = parseWwwAuthenticate(wwwAuthenticate).find((c) => c.scheme === 'bearer');
  if (challenge?.params.error?.toLowerCase() !== 'invalid_token') return undefined;
  const why = `${o.host} refused the token its token service issued (${o.what}: 401 invalid_token): the registry and the token service disagree (signing key, issuer, service name or clock)`;
  return o.credentialsSent
    ? { reason: 'auth_rejected', message: `unauthorized: ${why}` }
    : { reason: 'token_error', message: `failed to use anonymous token: ${why}` };
}

/** Visible ASCII only (RFC 6750 b64token and JWTs fit): anything else cannot go into an Authorization header. */
const HEADER_SAFE_TOKEN = /^[\x21-\x7e]+$/;

async function bearerToken(
  ctx: ProbeContext,
  input: AuthInput,
  opts: AuthOptions,
  challenge: Challenge,
  detail: AuthDetail,
  secrets: Secrets,
): Promise<{ authorization: string; tokenExpiresAt: number } | Fail> {
  const realm = challenge.params.realm;
  const checked = checkRealm(realm, input.endpoint);
  if (checked.display) detail.realm = secrets.scrub(checked.display);
  if (!checked.ok) {
    if (checked.host !== input.endpoint) detail.realmHost = checked.host;
    return { reason: checked.reason, host: checked.host, message: checked.message };
  }
  detail.realmHost = checked.host;
  const bad = forbiddenRealmAddresses(opts.pinned?.get(checked.hostname.toLowerCase()) ?? []);
  if (bad.length > 0) {
    const r = refuseResolvedRealm(checked, input.endpoint, bad);
    return { reason: r.reason, host: r.host, message: r.message };
  }
  // Credentials only over https: an http: realm is asked for an anonymous token.
  const cred = checked.credentialsAllowed ? opts.credential : undefined;
  if (opts.credential && !cred) detail.credentialsWithheld = true;
  const url = checked.url;
  const service = challenge.params.service;
  if (service !== undefined) detail.service = cleanRegistryText(service, secrets, 256);
  const scope = input.repository !== null ? pullScope(input.repository) : undefined;
  if (scope) detail.scope = scope;
  const key = tokenCacheKey({ realm: url.toString(), service, scope, username: cred?.username });
  const cached = opts.tokenCache.get(key);
  if (cached) {
    detail.tokenCached = true;
    detail.tokenExpiresIn = cached.expiresInSeconds;
    const authorization = `Bearer ${cached.token}`;
    secrets.addAuthorization(authorization);
    return { authorization, tokenExpiresAt: cached.tokenExpiresAt };
  }
  detail.tokenCached = false;

  const host = url.host;
  // containerd doBearerAuth: with a secret, the OAuth POST first ("failed to fetch oauth token"); without one, an anonymous GET.
  const secret = cred !== undefined && cred.password !== '' ? cred : undefined;
  const what = secret ? 'failed to fetch oauth token' : 'failed to fetch anonymous token';
  const getUrl = new URL(url);
  if (service !== undefined) getUrl.searchParams.set('service', service);
  if (scope) getUrl.searchParams.append('scope', scope);
  let sentBasic: string | undefined;
  if (secret) secrets.addAuthorization((sentBasic = basicAuthorization(secret)));
  const getToken = (signal: AbortSignal): Promise<SendResult> =>
    send(getUrl.toString(), {
      method: 'GET',
      dispatcher: opts.dispatcher,
      signal,
      maxBody: MAX_TOKEN_BODY,
      headers: { accept: 'application/json', ...(sentBasic ? { authorization: sentBasic } : {}) },
    });
  // One timer for the POST and its GET fallback: the step's time covers both.
  const timer = stageTimer(ctx, opts.timeoutMs);
  let method: 'POST' | 'GET' = secret ? 'POST' : 'GET';
  let res: SendResult;
  try {
    if (secret) {
      secrets.add(formValue(secret.password));
      res = await postForm(url.toString(), oauthForm(secret, service, scope), opts.dispatcher, timer.signal);
      // containerd falls back to GET on 405 (with a username), 404 (GCR), 401 (Artifactory), 400 (ACR); never on 5xx.
      if ((res.status === 405 && secret.username !== '') || res.status === 404 || res.status === 401 || res.status === 400) {
        detail.tokenPostStatus = res.status;
        method = 'GET';
        res = await getToken(timer.signal);
      }
    } else {
      res = await getToken(timer.signal);
    }
  } catch (err) {
    detail.tokenMethod = method;
    const f = classifyTransportError(err, timer.timedOut(), `${what} from ${host}`);
    const reason: Reason = f.reason === 'http_timeout' ? 'token_error' : f.reason;
    return { reason, host, message: f.message, ...(f.code ? { error: f.code } : {}) };
  } finally {
    timer.dispose();
  }
  detail.tokenMethod = method;

  const st = statusLine(res.status);
  // What the token service said, scrubbed (it may echo the Authorization or the form it got) and cut short.
  const said = (): string => {
    const e = parseRegistryErrors(res.body)[0];
    return e ? `: ${cleanRegistryText(`${e.code}${e.message ? ` ${e.message}` : ''}`, secrets, 200)}` : '';
  };
  const path = (method === 'GET' ? getUrl : url).pathname;
  if (res.status === 401 || res.status === 403) {
    if (detail.credentialsWithheld) {
      return {
        reason: 'token_error',
        host,
        status: res.status,
        message: `${what}: the token service ${checked.display} is plain http, so the credentials from ${opts.credential?.source ?? ''} were not sent over cleartext, and it refused an anonymous token (${st}${said()})`,
      };
    }
    return cred
      ? {
          reason: 'auth_rejected',
          host,
          status: res.status,
          message: `unauthorized: the token service ${host} rejected the credentials from ${cred.source} (${method} ${st}${said()})`,
        }
      : {
          reason: 'auth_required',
          host,
          status: res.status,
          message: `unauthorized: authentication required (anonymous token refused by ${host}: ${st}${said()})`,
        };
  }
  if (res.status < 200 || res.status >= 300) {
    return {
      reason: 'token_error',
      host,
      status: res.status,
      message: `${what}: unexpected status from ${method} request to ${host}${path}: ${st}${said()}`,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    return {
      reason: 'token_error',
      host,
      status: res.status,
      message: `${what}: the token service ${host} answered something that is not JSON`,
    };
  }
  const r = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
  // containerd: the POST answer must carry access_token; a GET answer token or access_token.
  const access = typeof r.access_token === 'string' ? r.access_token : '';
  const token = access !== '' || method === 'POST' ? access : typeof r.token === 'string' ? r.token : '';
  if (token === '') {
    return {
      reason: 'token_error',
      host,
      status: res.status,
      message: `${what}: authorization server did not include a token in the response`,
    };
  }
  secrets.add(token);
  if (!HEADER_SAFE_TOKEN.test(token)) {
    // Not cached: the next probe asks again.
    return {
      reason: 'token_error',
      host,
      status: res.status,
      message: `${what}: the token service ${host} issued a token that cannot be sent in an HTTP header (control characters, spaces or line breaks)`,
    };
  }
  const expiresIn = tokenLifetime(r.expires_in);
  const issuedAt = typeof r.issued_at === 'string' ? r.issued_at : undefined;
  const tokenExpiresAt = tokenExpiry(ctx.wallNow(), r.expires_in, issuedAt);
  opts.tokenCache.set(key, token, expiresIn, issuedAt, tokenExpiresAt);
  detail.tokenExpiresIn = expiresIn;
  const authorization = `Bearer ${token}`;
  secrets.addAuthorization(authorization);
  return { authorization, tokenExpiresAt };
}

/** Bare-registry target: prove the authorization works by re-getting /v2/ with it. */
async function verifyOnPing(ctx: ProbeContext, input: AuthInput, opts: AuthOptions, authorization: string): Promise<Fail | undefined> {
  const timer = stageTimer(ctx, opts.timeoutMs);
  const host = input.endpoint;
  try {
    const res = await send(`${registryBase(input.endpoint, input.scheme)}/v2/`, {
      method: 'GET',
      dispatcher: opts.dispatcher,
      signal: timer.signal,
      maxBody: 0,
      headers: { authorization },
    });
    if (res.status === 200) return undefined;
    const st = statusLine(res.status);
    const anonymous = !opts.credential;
    if (res.status === 401) {
      const refused = refusedTokenVerdict(headerValues(res.headers, 'www-authenticate'), {
        bearer: authorization.startsWith('Bearer '),
        credentialsSent: !anonymous,
        host,
        what: 'GET /v2/',
      });
      if (refused) return { ...refused, host, status: 401 };
      return anonymous
        ? {
            reason: 'auth_required',
            host,
            status: 401,
            message: `unauthorized: authentication required (GET /v2/ with an anonymous token: ${st})`,
          }
        : {
            reason: 'auth_rejected',
            host,
            status: 401,
            message: `unauthorized: ${host} rejected the credentials from ${opts.credential?.source ?? ''} (${st})`,
          };
    }
    if (res.status === 403)
      return { reason: 'access_denied', host, status: 403, message: `denied: GET /v2/ with credentials answered ${st}` };
    return { reason: 'http_status', host, status: res.status, message: `unexpected status from GET request to /v2/: ${st}` };
  } catch (err) {
    const f = classifyTransportError(err, timer.timedOut(), 'GET /v2/');
    return { reason: f.reason, host, message: f.message, ...(f.code ? { error: f.code } : {}) };
  } finally {
    timer.dispose();
  }
}
