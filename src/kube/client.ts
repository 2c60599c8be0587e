/**
 * A tiny Kubernetes API client for the four calls the agent makes: get a
 * node, merge-patch a node (annotation), strategic-merge-patch nodes/status
 * (condition), create an event. Every call has a timeout; failures are typed
 * errors with stable codes and the HTTP status. A 401 makes the token source
 * re-read the (projected, rotating) token file and the call is retried once.
 * The bearer token never appears in an error or a log.
 */
import { Agent, request, type Dispatcher } from '../net/undici-parts.js';
import type { TokenSource } from './in-cluster.js';
import type { NodeCondition } from './patches.js';
import { unrefTimers, type Timers } from '../shared/timers.js';
import { KubeApiError, KubeNetworkError, KubeTimeoutError } from '../shared/errors.js';

/** The parts of a core/v1 Node the agent reads. */
export interface KubeNode {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: {
    addresses?: { type: string; address: string }[];
    conditions?: NodeCondition[];
  };
}

export const MERGE_PATCH = 'application/merge-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const DEFAULT_TIMEOUT_MS = 10_000;

export { KubeApiError, KubeNetworkError, KubeTimeoutError };

export type KubeError = KubeApiError | KubeTimeoutError | KubeNetworkError;

export interface KubeClient {
  getNode(name: string, signal?: AbortSignal): Promise<KubeNode>;
  /** JSON merge patch (RFC 7386) on `nodes/{name}`. */
  patchNode(name: string, patch: object, signal?: AbortSignal): Promise<KubeNode>;
  /** Strategic-merge patch on `nodes/{name}/status`. */
  patchNodeStatus(name: string, patch: object, signal?: AbortSignal): Promise<KubeNode>;
  createEvent(namespace: string, event: object, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Reads for pod discovery: a GET of JSON, and a watch streamed as lines (one JSON watch event each). */
export interface KubeReader {
  getJson(path: string, signal?: AbortSignal): Promise<unknown>;
  /** Lines of a streaming GET until the server closes it or `signal` aborts; only the headers have a timeout. */
  streamLines(path: string, signal?: AbortSignal): AsyncIterable<string>;
}

export interface KubeClientOptions {
  /** https://host:port */
  server: string;
  caPem: string;
  tokens: Pick<TokenSource, 'token' | 'invalidate'>;
  timeoutMs?: number;
  /** Default: an undici Agent trusting only caPem. */
  dispatcher?: Dispatcher;
  /** The per-call timeout's timer (real timers that never keep the process alive by default). */
  timers?: Timers;
}

const MAX_DETAIL = 200;

export function createKubeClient(opts: KubeClientOptions): KubeClient & KubeReader {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timers = opts.timers ?? unrefTimers;
  const owned = opts.dispatcher === undefined;
  const dispatcher = opts.dispatcher ?? new Agent({ connect: { ca: opts.caPem }, connections: 2 });
  const base = opts.server.replace(/\/+$/, '');

  async function once(
    method: string,
    path: string,
    body: string | undefined,
    contentType: string | undefined,
    token: string,
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; text: string; retryAfter: string | null }> {
    const ac = new AbortController();
    // The timeout aborts with its own error as the reason, so the catch below can tell it from the caller's abort.
    const timer = timers.setTimeout(() => {
      ac.abort(new KubeTimeoutError(`${method} ${path}: no answer within ${timeoutMs}ms`));
    }, timeoutMs);
    const onAbort = (): void => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (contentType) headers['content-type'] = contentType;
    try {
      const res = await request(`${base}${path}`, { method, headers, body: body ?? null, dispatcher, signal: ac.signal });
      const text = await res.body.text();
      const ra = res.headers['retry-after'];
      return { status: res.statusCode, text, retryAfter: typeof ra === 'string' ? ra : null };
    } catch (err) {
      if (ac.signal.reason instanceof KubeTimeoutError) throw ac.signal.reason;
      const code = (err as { code?: unknown } | null)?.code;
      throw new KubeNetworkError(`${method} ${path}: ${typeof code === 'string' ? code : err instanceof Error ? err.name : 'error'}`);
    } finally {
      timers.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async function call(
    method: string,
    path: string,
    payload: object | undefined,
    contentType: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    let token = opts.tokens.token();
    let res = await once(method, path, body, contentType, token, signal);
    if (res.status === 401) {
      opts.tokens.invalidate();
      token = opts.tokens.token();
      res = await once(method, path, body, contentType, token, signal);
    }
    if (res.status >= 200 && res.status < 300) return res.text;
    throw apiError(method, path, res.status, res.text, res.retryAfter, token);
  }

  async function* streamLines(path: string, signal: AbortSignal | undefined): AsyncIterable<string> {
    const ac = new AbortController();
    const timer = timers.setTimeout(() => {
      ac.abort(new KubeTimeoutError(`GET ${path}: no answer within ${timeoutMs}ms`));
    }, timeoutMs);
    const onAbort = (): void => ac.abort();
    if (signal?.aborted) ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const token = opts.tokens.token();
    try {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(`${base}${path}`, {
          method: 'GET',
          headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
          dispatcher,
          signal: ac.signal,
        });
      } finally {
        timers.clearTimeout(timer);
      }
      if (res.statusCode === 401) opts.tokens.invalidate();
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const text = await res.body.text();
        const ra = res.headers['retry-after'];
        throw apiError('GET', path, res.statusCode, text, typeof ra === 'string' ? ra : null, token);
      }
      let buf = '';
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString('utf8');
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line !== '') yield line;
          nl = buf.indexOf('\n');
        }
      }
      if (buf.trim() !== '') yield buf.trim();
    } catch (err) {
      if (err instanceof KubeApiError) throw err;
      if (ac.signal.reason instanceof KubeTimeoutError) throw ac.signal.reason;
      const code = (err as { code?: unknown } | null)?.code;
      throw new KubeNetworkError(`GET ${path}: ${typeof code === 'string' ? code : err instanceof Error ? err.name : 'error'}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      ac.abort();
    }
  }

  return {
    async getJson(path, signal) {
      return JSON.parse(await call('GET', path, undefined, undefined, signal)) as unknown;
    },
    streamLines(path, signal) {
      return streamLines(path, signal);
    },
    async getNode(name, signal) {
      return JSON.parse(await call('GET', `/api/v1/nodes/${encodeURIComponent(name)}`, undefined, undefined, signal)) as KubeNode;
    },
    async patchNode(name, patch, signal) {
      return JSON.parse(await call('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}`, patch, MERGE_PATCH, signal)) as KubeNode;
    },
    async patchNodeStatus(name, patch, signal) {
      return JSON.parse(
        await call('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}/status`, patch, STRATEGIC_MERGE_PATCH, signal),
      ) as KubeNode;
    },
    async createEvent(namespace, event, signal) {
      await call('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, event, 'application/json', signal);
    },
    async close() {
      if (owned) await dispatcher.close();
    },
  };
}

function apiError(method: string, path: string, status: number, text: string, retryAfter: string | null, token: string): KubeApiError {
  let reason: string | null = null;
  let detail = '';
  try {
    const s = JSON.parse(text) as { reason?: unknown; message?: unknown };
    if (typeof s.reason === 'string') reason = s.reason;
    if (typeof s.message === 'string') detail = s.message;
  } catch {
    detail = '';
  }
  if (token !== '') detail = detail.split(token).join('[redacted]');
  if (detail.length > MAX_DETAIL) detail = `${detail.slice(0, MAX_DETAIL)}...`;
  const secs = retryAfter !== null && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter.trim()) * 1000 : null;
  return new KubeApiError(
    status,
    reason,
    secs,
    `${method} ${path}: HTTP ${status}${reason ? ` ${reason}` : ''}${detail ? `: ${detail}` : ''}`,
  );
}

/** True for errors worth retrying later (everything but a malformed request). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof KubeApiError) return ![400, 415, 422].includes(err.status);
  return true;
}
