/**
 * The http stage: `GET /v2/` (the distribution API's version check, pull-path-facts §1.1).
 * 200 or 401 means a registry answers; its WWW-Authenticate challenges feed
 * the auth stage. containerd itself skips this ping and learns the challenge
 * from the manifest request; the probe pings so "something that is not a
 * registry" and "registry down" are told apart from auth and name problems.
 */
import { STATUS_CODES } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Reason } from '../../diagnosis/catalog.js';
import { stageTimer } from '../../net/deadline.js';
import { classifyTransportError, send } from '../../net/dispatcher.js';
import { firstHeader, headerValues } from '../../net/registry-errors.js';
import type { ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import { parseWwwAuthenticate } from '../www-authenticate.js';
import type { HttpDetail } from '../../model/step-detail.js';
export type { HttpDetail } from '../../model/step-detail.js';

export interface HttpInput {
  /** "host:port" or "host" as contacted. */
  endpoint: string;
  scheme?: 'https' | 'http';
}

export interface HttpOptions {
  dispatcher: Dispatcher;
  timeoutMs: number;
}

/** "503 Service Unavailable". */
export function statusLine(status: number): string {
  const text = STATUS_CODES[status];
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

export const httpStage = async function httpStage(
  ctx: ProbeContext,
  input: HttpInput,
  opts: HttpOptions,
): Promise<StageOutcome<HttpDetail>> {
  const t0 = ctx.clock.now();
  const seconds = (): number => (ctx.clock.now() - t0) / 1000;
  const host = input.endpoint;
  const timer = stageTimer(ctx, opts.timeoutMs);
  try {
    const res = await send(`${registryBase(input.endpoint, input.scheme)}/v2/`, {
      method: 'GET',
      dispatcher: opts.dispatcher,
      signal: timer.signal,
      maxBody: 0,
    });
    const detail: HttpDetail = {
      status: res.status,
      challenges: parseWwwAuthenticate(headerValues(res.headers, 'www-authenticate')),
    };
    const apiVersion = firstHeader(res.headers, 'docker-distribution-api-version');
    if (apiVersion) detail.apiVersion = apiVersion;
    const reason = statusReason(res.status);
    if (!reason) return { ok: true, host, seconds: seconds(), detail };
    const message =
      reason === 'http_status'
        ? `unexpected status from GET request to /v2/: ${statusLine(res.status)}`
        : reason === 'proxy_error'
          ? `proxy authentication required: GET /v2/ answered ${statusLine(res.status)}`
          : `not a registry: GET /v2/ answered ${statusLine(res.status)} (a registry answers 200 or 401)`;
    return { ok: false, reason, message, host, seconds: seconds(), detail };
  } catch (err) {
    const f = classifyTransportError(err, timer.timedOut(), 'GET /v2/');
    const detail: HttpDetail = { challenges: [] };
    if (f.code) detail.error = f.code;
    return { ok: false, reason: f.reason, message: f.message, host, seconds: seconds(), detail };
  } finally {
    timer.dispose();
  }
} satisfies StageFn<HttpInput, HttpOptions, HttpDetail>;
