/**
 * In-cluster configuration, as client-go's `rest.InClusterConfig()` reads it:
 * KUBERNETES_SERVICE_HOST/PORT from the environment, the service-account CA
 * and token from the mounted volume. The token is projected and rotates, so
 * `TokenSource` re-reads the file at least every minute (client-go's
 * `NewCachedFileTokenSource` period) and whenever the client saw a 401.
 * The token value is never logged or put in an error.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { realClock, type Clock } from '../model/types.js';
import { TokenUnavailableError } from '../shared/errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const TOKEN_REREAD_MS = 60_000;

export interface InClusterConfig {
  /** https://host:port of the API server. */
  server: string;
  /** PEM of the cluster CA. */
  caPem: string;
  caFile: string;
  tokenFile: string;
}

export type InClusterResult = { ok: true; config: InClusterConfig } | { ok: false; code: 'not_in_cluster' | 'unreadable'; message: string };

export interface InClusterOptions {
  env?: Record<string, string | undefined>;
  saDir?: string;
  readFile?: (path: string) => string;
}

const defaultRead = (p: string): string => readFileSync(p, 'utf8');

/** Never throws: outside a cluster, or with an unreadable CA/token, says why. */
export function loadInClusterConfig(opts: InClusterOptions = {}): InClusterResult {
  const env = opts.env ?? process.env;
  const dir = opts.saDir ?? SERVICE_ACCOUNT_DIR;
  const read = opts.readFile ?? defaultRead;
  const host = env.KUBERNETES_SERVICE_HOST?.trim() ?? '';
  const port = env.KUBERNETES_SERVICE_PORT?.trim() ?? '';
  if (host === '' || port === '') {
    return {
      ok: false,
      code: 'not_in_cluster',
      message: 'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not running in a cluster',
    };
  }
  const tokenFile = join(dir, 'token');
  const caFile = join(dir, 'ca.crt');
  let caPem: string;
  try {
    caPem = read(caFile);
  } catch (err) {
    return { ok: false, code: 'unreadable', message: `cannot read service-account CA ${caFile}: ${codeOf(err)}` };
  }
  try {
    if (read(tokenFile).trim() === '') {
      return { ok: false, code: 'unreadable', message: `service-account token file ${tokenFile} is empty` };
    }
  } catch (err) {
    return { ok: false, code: 'unreadable', message: `cannot read service-account token ${tokenFile}: ${codeOf(err)}` };
  }
  const h = isIPv6(host) ? `[${host}]` : host;
  return { ok: true, config: { server: `https://${h}:${port}`, caPem, caFile, tokenFile } };
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'read error';
}

export { TokenUnavailableError };

export interface TokenSourceOptions {
  clock?: Clock;
  periodMs?: number;
  readFile?: (path: string) => string;
}

/**
 * Cached bearer token from a file. Re-read when older than `periodMs` or
 * after `invalidate()`; when a re-read fails, the cached token is kept (as
 * client-go does) and only a first read failure throws.
 */
export class TokenSource {
  private cached: string | null = null;
  private readAt = 0;
  private readonly clock: Clock;
  private readonly periodMs: number;
  private readonly read: (path: string) => string;

  constructor(
    readonly file: string,
    opts: TokenSourceOptions = {},
  ) {
    this.clock = opts.clock ?? realClock;
    this.periodMs = opts.periodMs ?? TOKEN_REREAD_MS;
    this.read = opts.readFile ?? defaultRead;
  }

  token(): string {
    const now = this.clock.now();
    if (this.cached !== null && now - this.readAt < this.periodMs) return this.cached;
    try {
      const t = this.read(this.file).trim();
      if (t !== '') {
        this.cached = t;
        this.readAt = now;
      }
    } catch (err) {
      if (this.cached === null) throw new TokenUnavailableError(this.file, err);
    }
    if (this.cached === null) throw new TokenUnavailableError(this.file, new Error('empty'));
    return this.cached;
  }

  /** Force a re-read on the next token() (after a 401). */
  invalidate(): void {
    this.readAt = -Infinity;
  }
}
