/**
 * The http stage: the first request to the registry, as the runtime sends it
 * (pull-path-facts §1.1, §1.7). For an image: `HEAD <path>/<name>/manifests/<ref>`
 * with containerd's Accept list (and the Authorization already known, if
 * any); a 401's WWW-Authenticate challenges feed the auth stage, and the
 * answer itself is handed to the manifest stage (no second request when no
 * new authorization is needed). `GET <path>/` (the API version check) only
 * when the HEAD's answer cannot tell a registry from something else (a 404
 * or 403 without Docker-Distribution-API-Version), and for a bare-registry
 * target, whose natural request it is. 200 or 401 there means a registry.
 */
import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';
import type { Reason } from '../../diagnosis/catalog.js';
import { stageTimer } from '../../net/deadline.js';
import { classifyTransportError, send, type SendResult } from '../../net/dispatcher.js';
import { sendFollowing, type FollowResult, type ReachHost } from '../manifest-fetch.js';
import { apiPath, MANIFEST_ACCEPT, manifestTarget } from '../registry-url.js';
import { firstHeader, headerValues } from '../../net/registry-errors.js';
import type { ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import { parseWwwAuthenticate } from '../www-authenticate.js';
import type { HttpDetail } from '../../model/step-detail.js';
export type { HttpDetail } from '../../model/step-detail.js';

export interface HttpInput {
  /** "host:port" or "host" as contacted. */
  endpoint: string;
  scheme?: 'https' | 'http';
  /** API path ("/v2" by default; an override_path endpoint's own). */
  path?: string;
  /** An image: HEAD its manifest instead of GET <path>/. */
  manifest?: { repository: string; reference: string; ns?: string; authorization?: string };
}

export interface HttpOptions {
  dispatcher: Dispatcher;
  timeoutMs: number;
  /** Makes a redirect's new host reachable (the manifest HEAD follows redirects as containerd does). */
  reach?: ReachHost;
}

/**
 * `head`: the manifest HEAD's answer (with its redirects), for the manifest
 * stage to read instead of asking again. `challengeStatus`: what the auth
 * stage reads as the status (401 when a challenge must be answered). Never serialised.
 */
export type HttpOutcome = StageOutcome<HttpDetail> & { head?: FollowResult; challengeStatus?: number };

let texts: Record<number, string | undefined> | undefined;

/**
 * node:http's status texts, required when first needed: an ESM import of
 * node:http builds its whole namespace, and on Node 22+ that loads Node's own
 * copy of undici (fetch, WebSocket) into every probing CLI run.
 */
function statusTexts(): Record<number, string | undefined> {
  texts ??= (createRequire(import.meta.url)('node:http') as typeof import('node:http')).STATUS_CODES;
  return texts;
}

/** "503 Service Unavailable". */
export function statusLine(status: number): string {
  const text = statusTexts()[status];
  return text ? `${status} ${text}` : String(status);
}

/** Base URL of a registry endpoint: "https://host:port". */
export function registryBase(endpoint: string, scheme: 'https' | 'http' = 'https'): string {
  return `${scheme}://${endpoint}`;
}

function statusReason(status: number): Reason | undefined {
  if (status === 200 || status === 401) return undefined;
  if (status === 407) return 'proxy_error';
  if (status >= 500) return 'http_status';
  return 'not_a_registry';
}

export const httpStage = async function httpStage(ctx: ProbeContext, input: HttpInput, opts: HttpOptions): Promise<HttpOutcome> {
  const t0 = ctx.clock.now();
  const seconds = (): number => (ctx.clock.now() - t0) / 1000;
  const host = input.endpoint;
  const timer = stageTimer(ctx, opts.timeoutMs);
  const ping = `${apiPath(input.path)}/`;
  let what = `GET ${ping}`;
  try {
    let head: FollowResult | undefined;
    const m = input.manifest;
    if (m) {
      const target = manifestTarget(input.path, m.repository, m.reference, m.ns);
      what = `HEAD ${target}`;
      head = await sendFollowing(`${registryBase(input.endpoint, input.scheme)}${target}`, {
        method: 'HEAD',
        headers: { accept: MANIFEST_ACCEPT.join(', '), ...(m.authorization ? { authorization: m.authorization } : {}) },
        dispatcher: opts.dispatcher,
        signal: timer.signal,
        maxBody: 0,
        ...(opts.reach ? { reach: opts.reach } : {}),
      });
      // A redirect the manifest stage judges (refused, loop, unreachable host): the HEAD was sent, the registry answered.
      if (head.kind !== 'response') {
        return { ok: true, host, seconds: seconds(), detail: { challenges: [], request: what }, head, challengeStatus: 200 };
      }
      const res = head.res;
      if (!needsPing(res)) return judged(res, what, head);
    }
    what = `GET ${ping}`;
    const res = await send(`${registryBase(input.endpoint, input.scheme)}${ping}`, {
      method: 'GET',
      dispatcher: opts.dispatcher,
      signal: timer.signal,
      maxBody: 0,
    });
    return judged(res, what, head);
  } catch (err) {
    const f = classifyTransportError(err, timer.timedOut(), what);
    const detail: HttpDetail = { challenges: [], request: what };
    if (f.code) detail.error = f.code;
    return { ok: false, reason: f.reason, message: f.message, host, seconds: seconds(), detail };
  } finally {
    timer.dispose();
  }

  function judged(res: SendResult, request: string, head: FollowResult | undefined): HttpOutcome {
    const detail: HttpDetail = {
      status: res.status,
      challenges: parseWwwAuthenticate(headerValues(res.headers, 'www-authenticate')),
      request,
    };
    const apiVersion = firstHeader(res.headers, 'docker-distribution-api-version');
    if (apiVersion) detail.apiVersion = apiVersion;
    const isHead = request.startsWith('HEAD ');
    const reason = statusReason(res.status);
    // The manifest HEAD answered: the manifest stage judges its status (a 5xx there, as containerd reports it).
    if (!reason || (isHead && reason !== 'proxy_error')) {
      const out: HttpOutcome = { ok: true, host, seconds: seconds(), detail, challengeStatus: res.status === 401 ? 401 : 200 };
      if (head) out.head = head;
      return out;
    }
    const [method, path] = request.split(' ');
    const message =
      reason === 'http_status'
        ? `unexpected status from ${method ?? 'GET'} request to ${path ?? ping}: ${statusLine(res.status)}`
        : reason === 'proxy_error'
          ? `proxy authentication required: ${request} answered ${statusLine(res.status)}`
          : `not a registry: ${request} answered ${statusLine(res.status)} (a registry answers 200 or 401)`;
    return { ok: false, reason, message, host, seconds: seconds(), detail };
  }
} satisfies StageFn<HttpInput, HttpOptions, HttpDetail>;

/**
 * The manifest HEAD's answer alone cannot tell a registry from something
 * else: a 4xx other than 401/405/429 without the registry's
 * Docker-Distribution-API-Version header (a web server's 404 looks like a
 * registry's missing manifest). GET <path>/ decides then.
 */
function needsPing(res: SendResult): boolean {
  if (res.status < 400 || res.status >= 500 || res.status === 401 || res.status === 405 || res.status === 407 || res.status === 429) {
    return false;
  }
  return firstHeader(res.headers, 'docker-distribution-api-version') === undefined;
}
