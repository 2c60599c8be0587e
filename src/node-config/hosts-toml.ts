/**
 * containerd registry host configuration (`config_path` certs.d directories), reproduced
 * from containerd's remotes/docker/config/hosts.go (1.6/1.7; core/remotes/… in 2.x) and
 * the CRI's hostDirFromRoots: which directory is used, how hosts.toml is read, and the
 * ordered endpoints containerd tries for a tag resolve and for a digest pull.
 *
 * parseHostsToml is pure. resolveRegistryHosts does the directory lookup through an
 * injected fs. Header values can hold secrets: endpoints carry them (`headers`, to be
 * sent) beside `headerNames` (to be shown); warnings and errors never quote the file's text.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { DOCKER_HUB, DOCKER_HUB_ENDPOINT } from '../model/reference.js';
import { parseGoDuration } from '../shared/go-duration.js';
import { HostsTomlError } from '../shared/errors.js';
import { splitHostPort } from '../shared/host-port.js';
import { isPlainObject } from '../shared/guards.js';
import {
  CAPABILITIES,
  cleanPath,
  isLocalhost,
  makeEndpoint,
  markDuplicates,
  mergeHeaders,
  onNode,
  type Capability,
  type ClientCert,
  type RegistryEndpoint,
} from './registry-endpoint.js';

export { HostsTomlError, CAPABILITIES };
export type { Capability, ClientCert, RegistryEndpoint };

/** containerd's default config_path when none is configured (docs/cri/registry.md). */
export const DEFAULT_CONFIG_PATH = '/etc/containerd/certs.d:/etc/docker/certs.d';

/** What a host without `capabilities` gets: pull, resolve, push (containerd 2.2+ adds referrers, see HostsOptions). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = ['pull', 'resolve', 'push'];

export interface HostsOptions {
  /** containerd 2.2+: hosts without `capabilities`, and the default host, also get `referrers` (never used for pulls). Default false. */
  referrersByDefault?: boolean;
}
const defaultCapabilities = (opts: HostsOptions): Capability[] =>
  opts.referrersByDefault ? [...DEFAULT_CAPABILITIES, 'referrers'] : [...DEFAULT_CAPABILITIES];

/** Keys shared by the root (server) and each [host."…"] table. */
export interface HostSettings {
  capabilities: Capability[];
  /** Absolute paths (relative ones resolved against the hosts.toml directory). */
  ca: string[];
  /** [cert, key] pairs; key "" means the key is in the cert file. */
  client: Array<[string, string]>;
  skipVerify: boolean;
  overridePath: boolean;
  headers: Record<string, string[]>;
  /** containerd 2.1+ only; 1.x ignores the key. */
  dialTimeout?: string;
}

export interface HostEntry extends HostSettings {
  /** The table key as written: `[host."mirror.example"]` → "mirror.example". */
  key: string;
  /** Base URL containerd uses: "https://" added when the key does not start with "http", "/v2" appended unless override_path. */
  url: string;
}

export interface HostsConfig {
  file: string;
  /** Root `server` as a base URL with the same /v2 rule ("https://reg.io/v2"); null when omitted (the namespace host is used). */
  server: string | null;
  serverCa: string[];
  serverSkipVerify: boolean;
  /** All root-level settings (they apply to the server endpoint). */
  root: HostSettings;
  /** [host."…"] tables in file order. */
  hosts: HostEntry[];
  /** containerd 1.6 and 1.7 before containerd#10028 reject a file with no `host` table ("invalid `host` tree"); 2.x accepts it. */
  containerdRejects: boolean;
  rejectReason: string | null;
  /** Keys containerd silently ignores (typos such as `insecure_skip_verify`). */
  warnings: string[];
}

type Table = Record<string, unknown>;
/** A TOML table: smol-toml gives dates as Date objects, which are values, not tables. */
const isTable = (v: unknown): v is Table => isPlainObject(v) && !(v instanceof Date);
const HOST_KEYS = new Set(['capabilities', 'ca', 'client', 'skip_verify', 'override_path', 'header', 'dial_timeout']);
const ROOT_KEYS = new Set([...HOST_KEYS, 'server', 'host']);

export function parseHostsToml(text: string, file: string, opts: HostsOptions = {}): HostsConfig {
  let doc: Table;
  try {
    doc = parse(text);
  } catch (err) {
    // smol-toml's message quotes the offending line, which may hold a header secret.
    const at = err instanceof TomlError ? ` at line ${err.line} column ${err.column}` : '';
    throw new HostsTomlError(file, null, `invalid TOML${at}`);
  }
  const dir = posix.dirname(file);
  const warnings: string[] = [];
  const server = doc['server'];
  if (server !== undefined && typeof server !== 'string') throw new HostsTomlError(file, 'server', 'must be a string');
  const ctx = { dir, file, warnings, defaults: defaultCapabilities(opts) };
  const root = readSettings(doc, '', ROOT_KEYS, ctx);
  let tree = doc['host'];
  let rejectReason: string | null = null;
  if (tree === undefined) {
    rejectReason =
      'no [host] table: containerd 1.6 and 1.7 before containerd#10028 fail with "invalid `host` tree", ignore this file and fall back to *.crt files in its directory; add an empty [host] table';
    tree = {};
  } else if (!isTable(tree)) {
    throw new HostsTomlError(file, 'host', 'must be a table of [host."URL"] tables');
  }
  // smol-toml keeps tables in document order, as containerd's getSortedHosts does.
  const hosts = Object.entries(tree as Table).map(([key, t]): HostEntry => {
    const name = `host.${JSON.stringify(key)}`;
    if (!isTable(t)) throw new HostsTomlError(file, name, 'must be a table');
    const s = readSettings(t, `${name}.`, HOST_KEYS, ctx);
    return { key, url: baseUrl(key, s.overridePath, file, name), ...s };
  });
  const serverUrl = server ? baseUrl(server, root.overridePath, file, 'server') : null;
  return {
    file,
    server: serverUrl,
    serverCa: root.ca,
    serverSkipVerify: root.skipVerify,
    root,
    hosts,
    containerdRejects: rejectReason !== null,
    rejectReason,
    warnings,
  };
}

interface ReadContext {
  dir: string;
  file: string;
  warnings: string[];
  defaults: Capability[];
}

function readSettings(t: Table, prefix: string, known: Set<string>, { dir, file, warnings, defaults }: ReadContext): HostSettings {
  const fail = (key: string, detail: string): never => {
    throw new HostsTomlError(file, prefix + key, detail);
  };
  for (const k of Object.keys(t)) if (!known.has(k)) warnings.push(`${file}: ${prefix}${k}: unknown key, containerd ignores it`);
  const strings = (key: string, v: unknown): string[] => {
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    return fail(key, 'must be a string or a list of strings');
  };
  const abs = (p: string): string => (posix.isAbsolute(p) ? p : posix.join(dir, p));
  const bool = (key: string): boolean =>
    t[key] === undefined ? false : typeof t[key] === 'boolean' ? t[key] : fail(key, 'must be true or false');

  const caps = t['capabilities'] ?? [];
  if (!Array.isArray(caps)) fail('capabilities', 'must be a list of strings');
  // An empty or missing list means the defaults (containerd: len(config.Capabilities) > 0); matching is case-insensitive.
  const capabilities = (caps as unknown[]).length === 0 ? [...defaults] : ([] as Capability[]);
  for (const c of caps as unknown[]) {
    const lc = (typeof c === 'string' ? c.toLowerCase() : '') as Capability;
    if (!CAPABILITIES.includes(lc)) fail('capabilities', `unknown capability ${JSON.stringify(c)}`);
    if (!capabilities.includes(lc)) capabilities.push(lc);
  }
  if ((caps as unknown[]).some((c) => typeof c === 'string' && c.toLowerCase() === 'referrers')) {
    warnings.push(
      `${file}: ${prefix}capabilities: "referrers" is known to containerd 2.2 and later only; containerd 1.x to 2.1 reject this whole file (failed to decode hosts.toml) and use only the *.crt/*.cert files next to it`,
    );
  }
  const ca = t['ca'] === undefined ? [] : strings('ca', t['ca']).map(abs);
  const client: Array<[string, string]> = [];
  const cv = t['client'];
  if (cv !== undefined) {
    for (const item of typeof cv === 'string' ? [cv] : Array.isArray(cv) ? cv : fail('client', 'must be a string or a list')) {
      if (typeof item === 'string') client.push([abs(item), '']);
      else if (Array.isArray(item) && item.length === 2 && item.every((x) => typeof x === 'string'))
        client.push([abs(item[0] as string), abs(item[1] as string)]);
      else fail('client', 'entries must be a path or a [cert, key] pair');
    }
  }
  const headers: Record<string, string[]> = {};
  const hv = t['header'];
  if (hv !== undefined) {
    if (!isTable(hv)) fail('header', 'must be a table');
    for (const [k, v] of Object.entries(hv as Table)) headers[k] = strings(`header.${k}`, v);
  }
  const out: HostSettings = { capabilities, ca, client, skipVerify: bool('skip_verify'), overridePath: bool('override_path'), headers };
  const dt = t['dial_timeout'];
  if (dt !== undefined) {
    const ns = typeof dt === 'string' ? parseGoDuration(dt) : null;
    if (ns === null) return fail('dial_timeout', 'must be a Go duration such as "30s"');
    if (ns < 0n) warnings.push(`${file}: ${prefix}dial_timeout is negative: containerd 2.1+ fails every connection at once`);
    out.dialTimeout = dt as string;
  }
  return out;
}

function baseUrl(raw: string, overridePath: boolean, file: string, key: string): string {
  const s = raw.startsWith('http') ? raw : `https://${raw}`; // containerd: strings.HasPrefix(server, "http")
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(?:[^@/?#]*@)?([^/?#]+)([^?#]*)/.exec(s);
  if (!m) throw new HostsTomlError(file, key, 'not a URL');
  let path = m[3] ?? '';
  if (path !== '') {
    path = cleanPath(path);
    if (!path.endsWith('/v2') && !overridePath) path += '/v2';
  } else if (!overridePath) path = '/v2';
  // Requests are built with path.Join, so "https://m/" behaves as "https://m/v2".
  return `${(m[1] ?? '').toLowerCase()}://${m[2] ?? ''}${path === '' ? '' : cleanPath(path)}`;
}

/** Directory names containerd tries inside one config_path root, in order (Unix). */
export function hostDirCandidates(registryHost: string): string[] {
  const idx = registryHost.lastIndexOf(':');
  const portDir = idx > 0 ? `${registryHost.slice(0, idx)}_${registryHost.slice(idx + 1)}_` : registryHost;
  return portDir === registryHost ? [registryHost, '_default'] : [portDir, registryHost, '_default'];
}

export interface HostsFs {
  readFile(path: string): Promise<string>;
  /** Non-directory entry names, or [] when the directory does not exist. */
  readdir(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
}

/** The errno name (ENOENT, EACCES, …) of a thrown fs error, if it has one. */
const codeOf = (err: unknown): string | undefined => {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
};
const orIfMissing =
  <T>(value: T, ...codes: string[]) =>
  (err: unknown): T => {
    if (codes.includes(codeOf(err) ?? '')) return value;
    throw err;
  };
export const nodeHostsFs: HostsFs = {
  readFile: (p) => readFile(p, 'utf8'),
  readdir: (p) =>
    readdir(p, { withFileTypes: true }).then(
      (ds) => ds.filter((d) => !d.isDirectory()).map((d) => d.name),
      orIfMissing<string[]>([], 'ENOENT'),
    ),
  exists: (p) => stat(p).then(() => true, orIfMissing(false, 'ENOENT', 'ENOTDIR')),
};

export interface RegistryHosts {
  registry: string;
  /** hosts.toml used, the host directory when its *.crt/*.cert files were used, or config.toml (mode config-toml); null otherwise. */
  source: string | null;
  hostDir: string | null;
  /** config-toml: config.toml's deprecated mirrors/configs, no config_path (containerd-legacy.ts). */
  mode: 'default' | 'hosts-toml' | 'cert-files' | 'config-toml';
  endpoints: RegistryEndpoint[];
  warnings: string[];
}

export interface ResolveHostsOptions extends HostsOptions {
  /**
   * Reproduce containerd 1.6/1.7-before-#10028 for a file without [host] (cert-file fallback). Default
   * true. A function is asked only when such a file is met (the running containerd's version).
   */
  rejectHostless?: boolean | (() => boolean);
  /** config.toml `registry.headers`: sent to every endpoint, before the endpoint's own `header` values. */
  headers?: Record<string, string[]>;
  /** Where the node's filesystem is mounted ("/host"): absolute ca/client paths written in hosts.toml are node paths and are opened under it. */
  hostRoot?: string;
}

type Raw = { url: string | null; settings: HostSettings; isServer: boolean };
const NONE: HostSettings = {
  capabilities: [...DEFAULT_CAPABILITIES],
  ca: [],
  client: [],
  skipVerify: false,
  overridePath: false,
  headers: {},
};

/** A filesystem failure containerd turns into a failed pull, as a HostsTomlError naming the path. */
function fsFailure(path: string, err: unknown, registryHost: string): HostsTomlError {
  if (err instanceof HostsTomlError) return err;
  return new HostsTomlError(path, null, `cannot read (${codeOf(err) ?? 'error'}): containerd fails every pull of ${registryHost}`);
}

/**
 * The endpoints containerd tries for `registryHost` under these config_path roots. Throws
 * HostsTomlError (naming the file) only where containerd fails the pull too: a hosts.toml or
 * host directory that exists but cannot be read. A hosts.toml that does not parse is a
 * warning: containerd falls back to the directory's *.crt/*.cert files, and so does this.
 */
export async function resolveRegistryHosts(
  configPath: string[],
  registryHost: string,
  fs: HostsFs = nodeHostsFs,
  opts: ResolveHostsOptions = {},
): Promise<RegistryHosts> {
  const warnings: string[] = [];
  const hostDir = await findHostDir(configPath, registryHost, fs);
  const loaded = hostDir === null ? null : await loadHostDir(hostDir, registryHost, fs, opts, warnings);
  const raws = loaded?.raws ?? [{ url: null, settings: NONE, isServer: true }];
  const endpoints = raws.map((r) => toEndpoint(r, registryHost, opts));
  warnings.push(
    ...markDuplicates(endpoints, 'drop that [host] table, moving its settings to the top level, and keep an empty [host] table'),
  );
  for (const e of endpoints) {
    const files = [...e.caFiles, ...e.clientCerts.flatMap((c) => (c.key === c.cert ? [c.cert] : [c.cert, c.key]))];
    for (const f of files) {
      if (!(await fs.exists(f).catch(() => false))) warnings.push(`${f} does not exist: containerd fails every pull of ${registryHost}`);
    }
  }
  if (endpointsFor({ endpoints }, 'resolve').length === 0)
    warnings.push(`no endpoint has both pull and resolve: containerd cannot resolve tags of ${registryHost}`);
  return { registry: registryHost, source: loaded?.source ?? null, hostDir, mode: loaded?.mode ?? 'default', endpoints, warnings };
}

/** CRI hostDirFromRoots: the first root holding any candidate wins; each root's candidates include its own _default, so root1/_default beats root2/<host>. */
async function findHostDir(configPath: string[], registryHost: string, fs: HostsFs): Promise<string | null> {
  for (const root of configPath.filter((p) => p !== '')) {
    for (const name of hostDirCandidates(registryHost)) {
      const dir = posix.join(root, name);
      // containerd's HostDirFromRoot: a stat error other than "not found" fails the pull.
      const found = await fs.exists(dir).catch((err: unknown) => {
        throw fsFailure(dir, err, registryHost);
      });
      if (found) return dir;
    }
  }
  return null;
}

/** containerd loadHostDir: hosts.toml if present, non-empty and accepted, else Docker-style cert files. */
async function loadHostDir(dir: string, registryHost: string, fs: HostsFs, opts: ResolveHostsOptions, warnings: string[]) {
  const file = posix.join(dir, 'hosts.toml');
  let text = '';
  try {
    text = await fs.readFile(file);
  } catch (err) {
    if (codeOf(err) !== 'ENOENT' && codeOf(err) !== 'ENOTDIR') throw fsFailure(file, err, registryHost);
  }
  let parsed: HostsConfig | null = null;
  if (text.length > 0) {
    try {
      parsed = parseHostsToml(text, file, opts);
      warnings.push(...parsed.warnings);
      if (parsed.containerdRejects) {
        warnings.push(`${file}: ${parsed.rejectReason}`);
        const reject = typeof opts.rejectHostless === 'function' ? opts.rejectHostless() : (opts.rejectHostless ?? true);
        if (reject) parsed = null;
      }
    } catch (err) {
      if (!(err instanceof HostsTomlError)) throw err;
      warnings.push(`${err.message}; containerd logs "failed to decode hosts.toml" and uses only the *.crt/*.cert files of ${dir}`);
    }
  }
  if (parsed) {
    const raws: Raw[] = parsed.hosts.map((h) => ({ url: h.url, settings: h, isServer: false }));
    raws.push({ url: parsed.server, settings: parsed.root, isServer: true });
    return { mode: 'hosts-toml' as const, source: file, raws };
  }
  // containerd loadCertFiles: *.crt are CAs; *.cert a client certificate with the same-named *.key when present.
  const settings: HostSettings = { ...NONE, ca: [], client: [] };
  const names = await fs.readdir(dir).catch((err: unknown) => {
    throw fsFailure(dir, err, registryHost);
  });
  for (const n of [...names].sort()) {
    if (n.endsWith('.crt')) settings.ca.push(posix.join(dir, n));
    if (n.endsWith('.cert')) {
      const key = posix.join(dir, `${n.slice(0, -5)}.key`);
      settings.client.push([posix.join(dir, n), (await fs.exists(key).catch(() => false)) ? key : '']);
    }
  }
  return { mode: 'cert-files' as const, source: dir, raws: [{ url: null, settings, isServer: true }] };
}

/** Go time.ParseDuration text → whole milliseconds (at least 1); undefined when unset, 0 (no timeout of its own) or negative (warned at parse). */
function dialTimeoutMs(raw: string | undefined): number | undefined {
  const ns = raw === undefined ? null : parseGoDuration(raw);
  if (ns === null || ns <= 0n) return undefined;
  const ms = ns / 1_000_000n;
  return Number(ms > 0n ? ms : 1n);
}

function toEndpoint(r: Raw, registryHost: string, opts: ResolveHostsOptions): RegistryEndpoint {
  let { url, settings } = r;
  let httpFallback = false;
  if (url === null) {
    // ConfigureHosts: a last host without a server is the namespace itself, /v2, all capabilities.
    settings = { ...settings, capabilities: defaultCapabilities(opts), overridePath: false };
    const { host, port } = splitHostPort(registryHost);
    if (registryHost === DOCKER_HUB) url = `https://${DOCKER_HUB_ENDPOINT}/v2`;
    else if (!isLocalhost(host)) url = `https://${registryHost}/v2`;
    else {
      // containerd 1.7.8+: localhost on port 80 is plain HTTP; on another explicit port HTTPS is
      // tried first (certificate not verified) and plain HTTP when the server does not speak TLS.
      url = `${port === '80' ? 'http' : 'https'}://${registryHost}/v2`;
      httpFallback = port !== '' && port !== '80' && port !== '443';
      if (port !== '80') settings = { ...settings, skipVerify: true };
    }
  }
  const dial = dialTimeoutMs(settings.dialTimeout);
  return makeEndpoint(url, registryHost, r.isServer, {
    capabilities: settings.capabilities,
    caFiles: settings.ca.map((f) => onNode(f, opts.hostRoot)),
    // [cert, ""]: the key is in the certificate file (containerd reads the same PEM for both).
    clientCerts: settings.client.map(([c, k]): ClientCert => ({
      cert: onNode(c, opts.hostRoot),
      key: onNode(k === '' ? c : k, opts.hostRoot),
    })),
    skipVerify: settings.skipVerify,
    overridePath: settings.overridePath,
    headers: mergeHeaders(opts.headers ?? {}, settings.headers),
    ...(dial !== undefined ? { dialTimeoutMs: dial } : {}),
    ...(httpFallback ? { httpFallback: true } : {}),
  });
}

/**
 * Endpoints containerd tries, in order: a tag resolve needs pull+resolve, a digest pull
 * needs pull (docker.HostCapabilities.Has checks every bit).
 */
export function endpointsFor(hosts: Pick<RegistryHosts, 'endpoints'>, need: 'resolve' | 'pull'): RegistryEndpoint[] {
  const required: Capability[] = need === 'resolve' ? ['pull', 'resolve'] : ['pull'];
  return hosts.endpoints.filter((e) => required.every((c) => e.capabilities.includes(c)));
}
