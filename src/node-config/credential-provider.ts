/**
 * kubelet credential-provider plugins (pull-path-facts §3; kubernetes
 * pkg/credentialprovider/plugin/{config,plugin}.go): the `CredentialProviderConfig`
 * (YAML or JSON, kubelet.config.k8s.io v1/v1beta1/v1alpha1) read with the kubelet's
 * checks, and each matching provider run the way the kubelet runs it:
 * `<binDir>/<name> args…`, env = this process's env + the provider's env, a
 * `CredentialProviderRequest` on stdin naming the repository without tag or digest,
 * one minute at most (and never past the caller's deadline; the process group is
 * killed), the response checked (apiVersion, kind, cacheKeyType, cacheDuration) and
 * cached by cacheKeyType for cacheDuration (null → defaultCacheDuration, 0 → not
 * cached), one exec per image at a time.
 *
 * A failing plugin gives no credentials (the kubelet then pulls anonymously) and a
 * problem naming the plugin and what went wrong, never a secret.
 */
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CredentialProviderConfigError } from '../shared/errors.js';
import { parseGoDuration } from '../shared/go-duration.js';
import { isPlainObject } from '../shared/guards.js';
import { parseSchemeless, urlsMatch } from './kubelet-keyring.js';
import { ecrTokenExpiry } from './ecr-token.js';

let yamlModule: typeof import('yaml') | undefined;

/**
 * yaml, required when a provider config is first read: a static import put
 * the whole parser into every probing CLI run's start-up (issue 10).
 */
function yaml(): typeof import('yaml') {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yamlModule;
}

export { CredentialProviderConfigError, ecrTokenExpiry };

const CONFIG_GROUP = 'kubelet.config.k8s.io/';
const CONFIG_VERSIONS = ['v1', 'v1beta1', 'v1alpha1'];
const PLUGIN_GROUP = 'credentialprovider.kubelet.k8s.io/';
export const PROVIDER_API_VERSIONS = ['v1', 'v1beta1', 'v1alpha1'].map((v) => PLUGIN_GROUP + v);

export interface ProviderSpec {
  name: string;
  matchImages: string[];
  /** ms */
  defaultCacheDurationMs: number;
  apiVersion: string;
  args: string[];
  env: Array<{ name: string; value: string }>;
}

export interface CredentialProviderConfig {
  file: string;
  apiVersion: string;
  providers: ProviderSpec[];
}

type Obj = Record<string, unknown>;

const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n);

/** Parse and check a CredentialProviderConfig. Throws CredentialProviderConfigError naming the file and field. */
export function parseCredentialProviderConfig(text: string, file: string): CredentialProviderConfig {
  const fail = (where: string, what: string): never => {
    throw new CredentialProviderConfigError(`${file}: ${where ? `${where}: ` : ''}${what}`);
  };
  const doc = yaml().parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const line = doc.errors[0]?.linePos?.[0]?.line;
    fail('', `not valid YAML or JSON${line !== undefined ? ` (line ${line})` : ''}`);
  }
  const top: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!isPlainObject(top)) return fail('', 'top level must be a mapping (apiVersion, kind, providers)');
  const root = top as Obj;
  const apiVersion = root['apiVersion'];
  if (
    typeof apiVersion !== 'string' ||
    !apiVersion.startsWith(CONFIG_GROUP) ||
    !CONFIG_VERSIONS.includes(apiVersion.slice(CONFIG_GROUP.length))
  )
    fail(
      'apiVersion',
      `must be one of ${CONFIG_VERSIONS.map((v) => CONFIG_GROUP + v).join(', ')} (got ${JSON.stringify(apiVersion ?? null)})`,
    );
  if (root['kind'] !== 'CredentialProviderConfig')
    fail('kind', `must be CredentialProviderConfig (got ${JSON.stringify(root['kind'] ?? null)})`);
  const list = root['providers'];
  if (!Array.isArray(list) || list.length === 0) return fail('providers', 'at least 1 item in providers is required');
  const seen = new Set<string>();
  const providers = list.map((raw: unknown, i): ProviderSpec => {
    const at = `providers[${i}]`;
    if (!isPlainObject(raw)) return fail(at, 'must be a mapping');
    const p = raw as Obj;
    const name = p['name'];
    if (typeof name !== 'string' || name === '') return fail(`${at}.name`, 'name is required');
    if (name.includes('/') || name.includes(' ') || name === '.' || name === '..')
      fail(`${at}.name`, `${JSON.stringify(name)}: must be a file name in the bin dir (no "/", no spaces, not "." or "..")`);
    if (seen.has(name)) fail(`${at}.name`, `duplicate provider name ${JSON.stringify(name)}`);
    seen.add(name);
    const match = p['matchImages'];
    if (!Array.isArray(match) || match.length === 0) return fail(`${at}.matchImages`, 'at least 1 item in matchImages is required');
    const matchImages = match.map((m: unknown, j) => {
      if (typeof m !== 'string' || m === '') return fail(`${at}.matchImages[${j}]`, 'must be a non-empty string');
      // kubelet validateCredentialProviderConfig: each entry must parse as a schemeless URL.
      if (parseSchemeless(m) === null) fail(`${at}.matchImages[${j}]`, `match image ${JSON.stringify(m)} is invalid`);
      return m;
    });
    const dcd = p['defaultCacheDuration'];
    if (dcd === undefined || dcd === null) return fail(`${at}.defaultCacheDuration`, 'defaultCacheDuration is required');
    const ns = typeof dcd === 'string' ? parseGoDuration(dcd) : null;
    if (ns === null) return fail(`${at}.defaultCacheDuration`, `${JSON.stringify(dcd)} is not a duration such as "12h" or "30m"`);
    if (ns < 0n) fail(`${at}.defaultCacheDuration`, 'must be greater than or equal to 0');
    const av = p['apiVersion'];
    if (typeof av !== 'string' || av === '') return fail(`${at}.apiVersion`, 'apiVersion is required');
    if (!PROVIDER_API_VERSIONS.includes(av))
      fail(`${at}.apiVersion`, `invalid apiVersion ${JSON.stringify(av)}: must be one of ${PROVIDER_API_VERSIONS.join(', ')}`);
    const argsRaw = p['args'] ?? [];
    if (!Array.isArray(argsRaw) || argsRaw.some((a) => typeof a !== 'string')) return fail(`${at}.args`, 'must be a list of strings');
    const envRaw = p['env'] ?? [];
    if (!Array.isArray(envRaw)) return fail(`${at}.env`, 'must be a list of {name, value}');
    const env = envRaw.map((e: unknown, j) => {
      const o = isPlainObject(e) ? (e as Obj) : null;
      if (!o || typeof o['name'] !== 'string' || o['name'] === '' || typeof (o['value'] ?? '') !== 'string')
        return fail(`${at}.env[${j}]`, 'must be {name: string, value: string}');
      return { name: o['name'], value: (o['value'] ?? '') as string };
    });
    return { name, matchImages, defaultCacheDurationMs: nsToMs(ns), apiVersion: av, args: argsRaw as string[], env };
  });
  return { file, apiVersion: apiVersion as string, providers };
}

/** One credential a plugin returned, under the key (a matchImages-style pattern) it gave. */
export interface ProviderAuth {
  key: string;
  username: string;
  password: string;
}

export interface ProviderResult {
  provider: string;
  auths: ProviderAuth[];
  /** When these credentials stop being valid: the cache entry's end, or an ECR token's own expiry, whichever is earlier (epoch ms). */
  expiresAt: number | null;
  cached: boolean;
}

export interface ProviderLookup {
  results: ProviderResult[];
  problems: string[];
}

export interface CredentialProviderDeps {
  spawn?: (cmd: string, args: readonly string[], opts: SpawnOptions) => ChildProcess;
  /** Wall clock, epoch ms. */
  wallNow?: () => number;
  env?: Record<string, string | undefined>;
  /** The kubelet's exec timeout: 1 minute. */
  timeoutMs?: number;
  /** Most stdout bytes read from a plugin. Default 1 MiB. */
  maxStdout?: number;
}

interface CacheEntry {
  auths: ProviderAuth[];
  expiresAt: number;
  tokenExpiresAt: number | null;
}

type ExecOutcome =
  | { ok: true; auths: ProviderAuth[]; cacheKey: string; cacheMs: number | null; tokenExpiresAt: number | null }
  | { ok: false; problem: string };

const ONE_MINUTE = 60_000;
const GLOBAL_KEY = 'global';

/** The repository without tag or digest, as the kubelet passes it to plugins and the keyring. */
export function repositoryOf(image: { registry: string; repository: string }): string {
  return `${image.registry}/${image.repository}`;
}

/** The plugins of one config: matched, run, cached. `stats` counts execs for the bench. */
export class CredentialProviders {
  readonly config: CredentialProviderConfig;
  readonly binDir: string;
  readonly #deps: Required<CredentialProviderDeps>;
  readonly #cache = new Map<string, Map<string, CacheEntry>>();
  readonly #inflight = new Map<string, Promise<ExecOutcome>>();
  #execs = 0;
  #cacheHits = 0;
  #failures = 0;

  constructor(config: CredentialProviderConfig, binDir: string, deps: CredentialProviderDeps = {}) {
    this.config = config;
    this.binDir = binDir;
    this.#deps = {
      spawn: deps.spawn ?? nodeSpawn,
      wallNow: deps.wallNow ?? Date.now,
      env: deps.env ?? process.env,
      timeoutMs: deps.timeoutMs ?? ONE_MINUTE,
      maxStdout: deps.maxStdout ?? 1 << 20,
    };
  }

  get stats(): { execs: number; cacheHits: number; failures: number } {
    return { execs: this.#execs, cacheHits: this.#cacheHits, failures: this.#failures };
  }

  /** Providers whose matchImages match the image (kubelet isImageAllowed). */
  matching(image: string): ProviderSpec[] {
    return this.config.providers.filter((p) => p.matchImages.some((m) => urlsMatch(m, image)));
  }

  /** Ask every matching provider, in config order, for `image` (repository without tag). */
  async lookup(image: string, ctx: { signal: AbortSignal; deadlineMs: number }): Promise<ProviderLookup> {
    const problems: string[] = [];
    const results: ProviderResult[] = [];
    for (const p of this.matching(image)) {
      const cached = this.#cached(p.name, image);
      if (cached) {
        this.#cacheHits++;
        results.push({ provider: p.name, auths: cached.auths, expiresAt: earlier(cached.expiresAt, cached.tokenExpiresAt), cached: true });
        continue;
      }
      const flightKey = `${p.name}\n${image}`;
      let flight = this.#inflight.get(flightKey);
      if (!flight) {
        flight = this.#exec(p, image, ctx).finally(() => this.#inflight.delete(flightKey));
        this.#inflight.set(flightKey, flight);
      }
      const out = await flight;
      if (!out.ok) {
        problems.push(out.problem);
        continue;
      }
      const now = this.#deps.wallNow();
      let expiresAt: number | null = null;
      if (out.cacheMs !== null && out.cacheMs > 0) {
        expiresAt = now + out.cacheMs;
        let m = this.#cache.get(p.name);
        if (!m) this.#cache.set(p.name, (m = new Map<string, CacheEntry>()));
        m.set(out.cacheKey, { auths: out.auths, expiresAt, tokenExpiresAt: out.tokenExpiresAt });
      }
      results.push({ provider: p.name, auths: out.auths, expiresAt: earlier(expiresAt, out.tokenExpiresAt), cached: false });
    }
    return { results, problems };
  }

  /** kubelet getCachedCredentials: image key, then registry, then global; expired entries dropped. */
  #cached(provider: string, image: string): CacheEntry | undefined {
    const m = this.#cache.get(provider);
    if (!m) return undefined;
    const now = this.#deps.wallNow();
    for (const key of [image, registryOf(image), GLOBAL_KEY]) {
      const e = m.get(key);
      if (!e) continue;
      if (e.expiresAt <= now) {
        m.delete(key);
        continue;
      }
      return e;
    }
    return undefined;
  }

  async #exec(p: ProviderSpec, image: string, ctx: { signal: AbortSignal; deadlineMs: number }): Promise<ExecOutcome> {
    this.#execs++;
    const failed = (what: string): ExecOutcome => {
      this.#failures++;
      return {
        ok: false,
        problem: `credential provider ${p.name} (${this.config.file}) for ${image}: ${what}; the kubelet pulls without its credentials`,
      };
    };
    const timeoutMs = Math.max(0, Math.min(this.#deps.timeoutMs, ctx.deadlineMs));
    const run = await runPlugin(this.#deps, join(this.binDir, p.name), p, image, ctx.signal, timeoutMs);
    if (!run.ok) return failed(run.problem);
    return readResponse(p, image, run.stdout, failed);
  }
}

const earlier = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.min(a, b));

/** kubelet parseRegistry: the image up to its first "/". */
const registryOf = (image: string): string => image.split('/')[0] ?? image;

/** Plugin stderr made safe to quote: its first line, control characters dropped, cut short. */
function stderrLine(text: string): string {
  const first = text.split('\n').find((l) => l.trim() !== '') ?? '';
  // eslint-disable-next-line no-control-regex
  const clean = first.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

type RunOutcome = { ok: true; stdout: string } | { ok: false; problem: string };

function runPlugin(
  deps: Required<CredentialProviderDeps>,
  bin: string,
  p: ProviderSpec,
  image: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<RunOutcome> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve({ ok: false, problem: 'not run: the probe deadline had passed' });
      return;
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(deps.env)) if (v !== undefined) env[k] = v;
    for (const e of p.env) env[e.name] = e.value;
    let child: ChildProcess;
    try {
      // Its own process group, so a kill reaches whatever the plugin started.
      child = deps.spawn(bin, p.args, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    } catch (err) {
      resolve({ ok: false, problem: `cannot run ${bin} (${(err as { code?: string }).code ?? 'error'})` });
      return;
    }
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let why: string | null = null;
    let spawnError: string | null = null;
    const kill = (reason: string): void => {
      why ??= reason;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => kill(`timed out after ${timeoutMs / 1000} s`), timeoutMs);
    const onAbort = (): void => kill('stopped at the probe deadline');
    signal.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > deps.maxStdout) {
        kill(`wrote more than ${deps.maxStdout} bytes to stdout`);
        return;
      }
      out.push(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (err.length < 4096) err += d.toString('utf8');
    });
    child.stdin?.on('error', () => {}); // a plugin that exits without reading stdin
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e.code === 'ENOENT' ? `plugin binary executable ${bin} did not exist` : `cannot run ${bin} (${e.code ?? 'error'})`;
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (spawnError !== null) {
        resolve({ ok: false, problem: spawnError });
        return;
      }
      if (why !== null) {
        resolve({ ok: false, problem: why });
        return;
      }
      if (code !== 0) {
        const said = stderrLine(err);
        resolve({
          ok: false,
          problem: `${code === null ? `killed by ${sig ?? 'a signal'}` : `exit status ${code}`}${said ? `: ${said}` : ''}`,
        });
        return;
      }
      resolve({ ok: true, stdout: Buffer.concat(out).toString('utf8') });
    });
    child.stdin?.end(JSON.stringify({ apiVersion: p.apiVersion, kind: 'CredentialProviderRequest', image }));
  });
}

function readResponse(p: ProviderSpec, image: string, stdout: string, failed: (what: string) => ExecOutcome): ExecOutcome {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    return failed('its output is not a JSON CredentialProviderResponse');
  }
  if (!isPlainObject(doc)) return failed('its output is not a JSON object');
  const r = doc as Obj;
  if (r['apiVersion'] !== p.apiVersion)
    return failed(
      `apiVersion from credential plugin response did not match expected apiVersion:${p.apiVersion}, actual apiVersion:${String(r['apiVersion'])}`,
    );
  if (r['kind'] !== 'CredentialProviderResponse')
    return failed(`kind was ${JSON.stringify(r['kind'] ?? '')}, expected CredentialProviderResponse`);
  const keyType = r['cacheKeyType'];
  let cacheKey: string;
  if (keyType === 'Image') cacheKey = image;
  else if (keyType === 'Registry') cacheKey = registryOf(image);
  else if (keyType === 'Global') cacheKey = GLOBAL_KEY;
  else return failed(`credential provider plugin did not return a valid cacheKeyType: ${JSON.stringify(keyType ?? '')}`);
  let cacheMs: number | null = p.defaultCacheDurationMs;
  const cd = r['cacheDuration'];
  if (cd !== undefined && cd !== null) {
    const ns = typeof cd === 'string' ? parseGoDuration(cd) : null;
    if (ns === null) return failed(`cacheDuration ${JSON.stringify(cd)} is not a duration`);
    cacheMs = nsToMs(ns);
  }
  const authRaw = r['auth'] ?? {};
  if (!isPlainObject(authRaw)) return failed('auth is not a map of image patterns to {username, password}');
  const auths: ProviderAuth[] = [];
  let tokenExpiresAt: number | null = null;
  for (const [key, v] of Object.entries(authRaw as Obj)) {
    const o = isPlainObject(v) ? (v as Obj) : {};
    const username = typeof o['username'] === 'string' ? o['username'] : '';
    const password = typeof o['password'] === 'string' ? o['password'] : '';
    auths.push({ key, username, password });
    tokenExpiresAt = earlier(tokenExpiresAt, ecrTokenExpiry(password));
  }
  return { ok: true, auths, cacheKey, cacheMs, tokenExpiresAt };
}
