/**
 * Manifest requests that follow redirects as containerd's Go client does: up
 * to 10 (Go's "stopped after 10 redirects"), the method kept for a HEAD, the
 * Authorization header only while the host and scheme stay those of the first
 * request (a 307 to blob storage must not receive the registry's token), and
 * never to anything but http(s). A new host is made reachable first through
 * `reach` (the chain's own DNS/TCP/TLS hop), since the dispatcher only dials
 * addresses the probe resolved itself. Hop URLs are recorded as origins only:
 * redirect targets often carry signatures in their path and query.
 */
import type { Dispatcher } from 'undici';
import { send, type SendResult } from '../net/dispatcher.js';
import { firstHeader } from '../net/registry-errors.js';
import type { StageOutcome } from '../model/types.js';

export const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Makes a host reachable before the first request to it; returns the failed hop, or null. */
export type ReachHost = (url: URL) => Promise<StageOutcome<object> | null>;

export interface FollowOptions {
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  dispatcher: Dispatcher;
  signal: AbortSignal;
  maxBody: number;
  reach?: ReachHost;
}

export type FollowResult =
  | { kind: 'response'; res: SendResult; redirects: string[] }
  /** A redirect that is not followed: a loop, too many, a bad location or scheme. */
  | { kind: 'bad-redirect'; problem: string; redirects: string[] }
  /** The redirect's host could not be reached (DNS/TCP/TLS); the hop's steps are already recorded by `reach`. */
  | { kind: 'unreachable'; outcome: StageOutcome<object>; redirects: string[] };

/** One request and its redirects. Throws transport errors like `send`. */
export async function sendFollowing(url: string, o: FollowOptions): Promise<FollowResult> {
  const first = new URL(url);
  let current = first;
  const seen = new Set<string>([current.href]);
  const redirects: string[] = [];
  for (let hop = 0; ; hop++) {
    const sameOrigin = current.host === first.host && current.protocol === first.protocol;
    const headers = { ...o.headers };
    if (!sameOrigin) delete headers.authorization;
    const res = await send(current.href, { method: o.method, headers, dispatcher: o.dispatcher, signal: o.signal, maxBody: o.maxBody });
    const location = REDIRECT_STATUSES.has(res.status) ? firstHeader(res.headers, 'location') : undefined;
    if (location === undefined) return { kind: 'response', res, redirects };
    if (hop >= MAX_REDIRECTS) return { kind: 'bad-redirect', problem: `stopped after ${MAX_REDIRECTS} redirects`, redirects };
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      return { kind: 'bad-redirect', problem: `${res.status} redirect to an invalid location`, redirects };
    }
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      return {
        kind: 'bad-redirect',
        problem: `${res.status} redirect to a ${next.protocol.replace(/:$/, '').slice(0, 20)} URL, which is never followed (http and https only)`,
        redirects,
      };
    }
    if (seen.has(next.href))
      return {
        kind: 'bad-redirect',
        problem: `redirect loop: ${next.origin} sends the request back to a URL it already visited`,
        redirects,
      };
    seen.add(next.href);
    redirects.push(next.origin);
    if (next.host !== current.host && o.reach) {
      const failed = await o.reach(next);
      if (failed) return { kind: 'unreachable', outcome: failed, redirects };
    }
    current = next;
  }
}
