/**
 * containerd's config.toml as its CRI plugin reads the registry settings: `config_path`
 * (certs.d roots), the deprecated `registry.mirrors`, `registry.configs.<host>.{auth,tls}`,
 * `registry.auths` and `registry.headers`, and whether the CRI plugin loads at all.
 *
 * Where the table is: version 1 (or no version) `plugins.cri.registry` (observed: containerd
 * 1.6.20 ignores the long key in a version 1 file); version 2
 * `plugins."io.containerd.grpc.v1.cri".registry`; version 3 (containerd 2.x)
 * `plugins."io.containerd.cri.v1.images".registry`, where `configs.<host>.tls` no longer exists.
 *
 * Precedence (containerd 1.6/1.7 pkg/cri; 2.x internal/cri; confirmed on 1.6.20):
 * - `mirrors` (or, up to version 2, any `configs.<host>.tls`) next to a non-empty
 *   `config_path`: the CRI plugin fails to load ("`mirrors` cannot be set when `config_path`
 *   is provided") and containerd runs without it — `criDisabled`.
 * - `configs.<host>.auth` is used whenever the CRI request carries no credentials, with or
 *   without config_path; `host` is the host containerd contacts (registry-1.docker.io for
 *   Docker Hub). `auths."<url>"` is folded into `configs."<url host>".auth`, overriding it.
 * - Without config_path the mirrors and configs.tls decide the endpoints (containerd-legacy.ts).
 *
 * Parsing is pure; nothing here throws on what the file holds. Bad TOML, a wrong type (either
 * stops containerd from starting) or an unreadable file become `problems` naming the file and
 * the key, and the probe goes on without them. Secrets are never quoted.
 */
import { parse, TomlError } from 'smol-toml';
import type { Credential } from '../model/types.js';
import { isPlainObject } from '../shared/guards.js';
import { cannotRead, readNodeFile, realHostFs, type HostFs } from './host-root.js';
import { DEFAULT_CONFIG_PATH } from './hosts-toml.js';
import { onNode, withoutUserinfo } from './registry-endpoint.js';

export interface ContainerdAuthConfig {
  username: string;
  password: string;
  /** base64 of "user:password". */
  auth: string;
  identitytoken: string;
  /** Where it was written, for messages: `registry.configs."gcr.io".auth` or `registry.auths."https://gcr.io"`. */
  key: string;
}

export interface ContainerdTlsConfig {
  caFile: string;
  certFile: string;
  keyFile: string;
  insecureSkipVerify: boolean;
}

export interface ContainerdRegistryConfig {
  auth?: ContainerdAuthConfig;
  /** Only up to version 2 (containerd 2.x has no such key). */
  tls?: ContainerdTlsConfig;
}

export interface ContainerdConfig {
  file: string;
  /** False when the file could not be read or parsed: nothing else here comes from it. */
  ok: boolean;
  /** 1 when the file has no `version`. */
  version: number;
  /** The registry table read, as written in TOML: `plugins."io.containerd.grpc.v1.cri".registry`. */
  section: string;
  /** `config_path` split on ':' (empty entries dropped); null when unset or "". */
  configPath: string[] | null;
  /** `mirrors."<host>".endpoint` lists as written ("*" is the wildcard). */
  mirrors: Record<string, string[]>;
  configs: Record<string, ContainerdRegistryConfig>;
  /** `registry.headers`: sent on every registry request. */
  headers: Record<string, string[]>;
  /** Plain sentences naming the file and key; never a secret. */
  problems: string[];
  /** Set when containerd's CRI plugin does not load with this file: every pull through the kubelet fails. */
  criDisabled: string | null;
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => isPlainObject(v) && !(v instanceof Date);
const has = (t: Table, k: string): boolean => Object.hasOwn(t, k);

/** The CRI registry table per config version. */
const SECTIONS: Record<number, { plugin: string; shown: string }> = {
  1: { plugin: 'cri', shown: 'plugins.cri.registry' },
  2: { plugin: 'io.containerd.grpc.v1.cri', shown: 'plugins."io.containerd.grpc.v1.cri".registry' },
  3: { plugin: 'io.containerd.cri.v1.images', shown: 'plugins."io.containerd.cri.v1.images".registry' },
};
/** Plugin ids whose presence in disabled_plugins leaves the kubelet without an image service. */
const CRI_IDS = new Set(['cri', 'io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.images']);
const REGISTRY_KEYS = new Set(['config_path', 'mirrors', 'configs', 'auths', 'headers']);
const WITHOUT = 'probing without its registry settings';

function emptyConfig(file: string): ContainerdConfig {
  return {
    file,
    ok: false,
    version: 1,
    section: SECTIONS[1]?.shown ?? '',
    configPath: null,
    mirrors: {},
    configs: {},
    headers: {},
    problems: [],
    criDisabled: null,
  };
}

/** smol-toml's one-line reason (its message goes on to quote the file's lines, which may hold a password). */
function tomlReason(err: unknown): string {
  if (!(err instanceof TomlError)) return 'not valid TOML';
  const first = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
  const reason = /^[a-z][a-z ,:.-]*$/i.test(first) ? ` (${first})` : '';
  return `not valid TOML at line ${err.line}, column ${err.column}${reason}`;
}

const q = (s: string): string => JSON.stringify(s);

export function parseContainerdConfig(text: string, file: string): ContainerdConfig {
  const cfg = emptyConfig(file);
  let doc: Table;
  try {
    doc = parse(text);
  } catch (err) {
    cfg.problems.push(`${file}: ${tomlReason(err)}: containerd does not start with this file; ${WITHOUT}`);
    return cfg;
  }
  const rawVersion = doc['version'] ?? 1;
  if (typeof rawVersion !== 'number' || !Number.isInteger(rawVersion) || rawVersion > 3 || rawVersion < 0) {
    cfg.problems.push(`${file}: version must be 1, 2 or 3 (containerd 1.x reads 1 and 2, containerd 2.x 2 and 3); ${WITHOUT}`);
    return cfg;
  }
  const version = rawVersion === 0 ? 1 : rawVersion; // containerd: GetVersion() is 1 when unset
  const sec = SECTIONS[version] ?? { plugin: 'cri', shown: 'plugins.cri.registry' };
  Object.assign(cfg, { ok: true, version, section: sec.shown });
  const wrong = (key: string, what: string): void => {
    cfg.problems.push(`${file}: ${key} must be ${what}: containerd refuses a wrong type here and does not start with this file`);
  };

  const plugins = doc['plugins'] ?? {};
  if (!isTable(plugins)) {
    wrong('plugins', 'a table');
    return cfg;
  }
  checkPluginKeys(cfg, doc, plugins);
  const plugin = plugins[sec.plugin] ?? {};
  const registry = isTable(plugin) ? (plugin['registry'] ?? {}) : null;
  if (!isTable(registry)) {
    wrong(registry === null ? sec.shown.replace(/\.registry$/, '') : sec.shown, 'a table');
    return cfg;
  }
  for (const k of Object.keys(registry)) {
    if (!REGISTRY_KEYS.has(k)) cfg.problems.push(`${file}: ${sec.shown}.${k}: unknown key, containerd ignores it`);
  }
  readRegistry(cfg, registry, wrong);
  decideCri(cfg, typeof registry['config_path'] === 'string' ? registry['config_path'] : '');
  return cfg;
}

/** Keys elsewhere in the file that change what containerd does with its registry settings. */
function checkPluginKeys(cfg: ContainerdConfig, doc: Table, plugins: Table): void {
  const { file, version } = cfg;
  const disabled = Array.isArray(doc['disabled_plugins']) ? doc['disabled_plugins'].filter((p) => typeof p === 'string') : [];
  const off = disabled.find((p) => CRI_IDS.has(p));
  if (off !== undefined)
    cfg.criDisabled = `${file}: disabled_plugins lists ${q(off)}: containerd runs without its CRI plugin, so the kubelet cannot pull any image through it (remove it and restart containerd)`;
  if (version >= 2) {
    // containerd 1.6.20, version 2: `invalid plugin key URI "cri" expect io.containerd.x.vx`, and it does not start.
    for (const k of [...Object.keys(plugins), ...disabled]) {
      if (!k.startsWith('io.containerd.') || k.split('.').length < 4)
        cfg.problems.push(
          `${file}: plugin name ${q(k)} is not a full plugin URI (io.containerd.x.vx) as version ${version} requires: containerd does not start with this file`,
        );
    }
  }
  for (const [v, s] of Object.entries(SECTIONS)) {
    const p = plugins[s.plugin];
    if (Number(v) !== version && isTable(p) && p['registry'] !== undefined && s.plugin.includes('.'))
      cfg.problems.push(
        `${file}: ${s.shown} is not read in a version ${version} file (that is ${cfg.section}): pullprobe ignores it, as containerd does`,
      );
  }
  if (doc['imports'] !== undefined)
    cfg.problems.push(`${file}: imports are not read by pullprobe: registry settings in imported files are not seen`);
}

type Wrong = (key: string, what: string) => void;

function readRegistry(cfg: ContainerdConfig, reg: Table, wrong: Wrong): void {
  const s = cfg.section;
  const cp = reg['config_path'];
  if (cp !== undefined && typeof cp !== 'string') wrong(`${s}.config_path`, 'a string');
  else if (typeof cp === 'string' && cp !== '') cfg.configPath = cp.split(':').filter((p) => p !== '');

  const strList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const mirrors = reg['mirrors'] ?? {};
  if (!isTable(mirrors)) wrong(`${s}.mirrors`, 'a table');
  else
    for (const [host, m] of Object.entries(mirrors)) {
      const ep = isTable(m) ? (m['endpoint'] ?? []) : undefined;
      if (!strList(ep)) wrong(`${s}.mirrors.${q(host)}${isTable(m) ? '.endpoint' : ''}`, isTable(m) ? 'a list of URLs' : 'a table');
      else cfg.mirrors[host] = [...ep];
    }

  const headers = reg['headers'] ?? {};
  if (!isTable(headers)) wrong(`${s}.headers`, 'a table');
  else
    for (const [name, v] of Object.entries(headers)) {
      if (!strList(v)) wrong(`${s}.headers.${q(name)}`, 'a list of strings');
      else cfg.headers[name] = [...v];
    }

  const configs = reg['configs'] ?? {};
  if (!isTable(configs)) wrong(`${s}.configs`, 'a table');
  else
    for (const [host, c] of Object.entries(configs)) {
      const key = `${s}.configs.${q(host)}`;
      if (!isTable(c)) {
        wrong(key, 'a table');
        continue;
      }
      const entry: ContainerdRegistryConfig = {};
      if (c['auth'] !== undefined) {
        const a = readAuth(c['auth'], `${key}.auth`, `registry.configs.${q(host)}.auth`, wrong);
        if (a) entry.auth = a;
      }
      if (c['tls'] !== undefined) {
        if (cfg.version >= 3)
          cfg.problems.push(
            `${cfg.file}: ${key}.tls: containerd 2.x has no registry TLS settings here and ignores them (use hosts.toml under config_path)`,
          );
        else {
          const t = readTls(c['tls'], `${key}.tls`, wrong);
          if (t) entry.tls = t;
        }
      }
      cfg.configs[host] = entry;
    }

  const auths = reg['auths'] ?? {};
  if (!isTable(auths)) wrong(`${s}.auths`, 'a table');
  else
    for (const [url, a] of Object.entries(auths)) {
      const host = authsHost(url);
      const at = `${s}.auths.${q(withoutUserinfo(url))}`;
      if (host === null) {
        cfg.criDisabled ??= `${cfg.file}: ${at} is not a URL containerd can parse: its CRI plugin does not load with this file, so the kubelet cannot pull any image through this containerd`;
        continue;
      }
      if (host === '') cfg.problems.push(`${cfg.file}: ${at} has no host (a scheme such as https:// is missing): containerd never uses it`);
      const auth = readAuth(a, at, `registry.auths.${q(withoutUserinfo(url))}`, wrong);
      if (auth) cfg.configs[host] = { ...cfg.configs[host], auth };
    }

  for (const [host, c] of Object.entries(cfg.configs)) checkEntry(cfg, host, c);
}

/** containerd's `registry.auths` key: the URL's host when it has a scheme, else the key as written (Go url.Parse). */
function authsHost(key: string): string | null {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/.exec(key);
  if (!m) return (key.split('/')[0] ?? '').includes(':') ? null : key; // "10.0.0.1:5000": Go cannot parse it
  const rest = m[2] ?? '';
  return rest.startsWith('//') ? (/^\/\/(?:[^@/?#]*@)?([^/?#]*)/.exec(rest)?.[1] ?? '') : '';
}

function readAuth(v: unknown, key: string, shortKey: string, wrong: Wrong): ContainerdAuthConfig | undefined {
  if (!isTable(v)) {
    wrong(key, 'a table');
    return undefined;
  }
  const out: ContainerdAuthConfig = { username: '', password: '', auth: '', identitytoken: '', key: shortKey };
  for (const f of ['username', 'password', 'auth', 'identitytoken'] as const) {
    const x = v[f];
    if (x === undefined) continue;
    if (typeof x !== 'string') {
      wrong(`${key}.${f}`, 'a string');
      return undefined;
    }
    out[f] = x;
  }
  return out;
}

function readTls(v: unknown, key: string, wrong: Wrong): ContainerdTlsConfig | undefined {
  if (!isTable(v)) {
    wrong(key, 'a table');
    return undefined;
  }
  const out: ContainerdTlsConfig = { caFile: '', certFile: '', keyFile: '', insecureSkipVerify: false };
  const names = { ca_file: 'caFile', cert_file: 'certFile', key_file: 'keyFile' } as const;
  for (const [f, to] of Object.entries(names)) {
    const x = v[f];
    if (x === undefined) continue;
    if (typeof x !== 'string') {
      wrong(`${key}.${f}`, 'a string');
      return undefined;
    }
    out[to] = x;
  }
  const sv = v['insecure_skip_verify'];
  if (sv !== undefined && typeof sv !== 'boolean') {
    wrong(`${key}.insecure_skip_verify`, 'true or false');
    return undefined;
  }
  out.insecureSkipVerify = sv === true;
  return out;
}

/** What containerd would fail on later, at pull time, said now. */
function checkEntry(cfg: ContainerdConfig, host: string, c: ContainerdRegistryConfig): void {
  const where = `${cfg.file}: ${cfg.section}.configs.${q(host)}`;
  const a = c.auth;
  if (a && a.username === '' && a.identitytoken === '' && a.auth !== '') {
    const d = decodeStdBase64(a.auth);
    if (d === undefined || !d.includes(':'))
      cfg.problems.push(
        `${where}.auth.auth is not base64 of "user:password": containerd fails every pull from ${host} that asks for credentials`,
      );
  }
  if (a && host === 'docker.io')
    cfg.problems.push(
      `${where}.auth is never used: containerd looks credentials up by the host it contacts, registry-1.docker.io for Docker Hub`,
    );
  const t = c.tls;
  if (t && (t.certFile === '') !== (t.keyFile === ''))
    cfg.problems.push(
      `${where}.tls sets ${t.certFile ? 'cert_file without key_file' : 'key_file without cert_file'}: containerd fails every pull through ${host}`,
    );
}

function decideCri(cfg: ContainerdConfig, configPath: string): void {
  if (configPath === '' || cfg.criDisabled !== null) return;
  const mirror = Object.keys(cfg.mirrors)[0];
  const tls = cfg.version <= 2 ? Object.keys(cfg.configs).find((h) => cfg.configs[h]?.tls !== undefined) : undefined;
  const [rule, key] =
    mirror !== undefined ? ['`mirrors`', `mirrors.${q(mirror)}`] : tls !== undefined ? ['`configs.tls`', `configs.${q(tls)}.tls`] : [];
  if (rule === undefined || key === undefined) return;
  cfg.criDisabled =
    `${cfg.file}: containerd's CRI plugin does not load with this file ("${rule} cannot be set when \`config_path\` is provided": ` +
    `${cfg.section}.${key} next to config_path = ${q(configPath)}), so the kubelet cannot pull any image through this containerd. ` +
    `Move those settings to hosts.toml files under config_path and restart containerd.`;
}

/** Go base64.StdEncoding: padded, "\r" and "\n" skipped; undefined when Go would fail. */
function decodeStdBase64(s: string): string | undefined {
  const b64 = s.replace(/[\r\n]/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
}

/** Read and parse the node's config.toml; null when it does not exist (containerd's defaults apply). */
export function loadContainerdConfig(path: string, hostRoot = '', fs: HostFs = realHostFs): ContainerdConfig | null {
  const r = readNodeFile(path, hostRoot, fs);
  if (r.ok) return parseContainerdConfig(r.text, path);
  if (r.code === 'ENOENT' || r.code === 'ENOTDIR') return null;
  const cfg = emptyConfig(path);
  cfg.problems.push(`${cannotRead(path, r)}; ${WITHOUT} (config_path, mirrors, credentials)`);
  return cfg;
}

/**
 * containerd's CRI ParseAuth over `configs."<host>".auth`: username (with password), else the
 * identity token as ("", token), else base64 "user:password" (password trimmed of NULs).
 * `host` is the host containerd contacts (an endpoint's `authority`).
 */
export function containerdAuth(cfg: ContainerdConfig | null | undefined, host: string): Credential | undefined {
  if (!cfg?.ok || !has(cfg.configs, host)) return undefined;
  const a = cfg.configs[host]?.auth;
  if (!a) return undefined;
  const base = { source: `${cfg.file} ${a.key}`, origin: { source: 'containerd-config' as const, name: cfg.file, expiresAt: null } };
  if (a.username !== '') return { username: a.username, password: a.password, ...base };
  if (a.identitytoken !== '') return { username: '', password: a.identitytoken, identityToken: true, ...base };
  if (a.auth === '') return undefined;
  const decoded = decodeStdBase64(a.auth);
  const i = decoded?.indexOf(':') ?? -1;
  if (decoded === undefined || i < 0) return undefined;
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1).replace(/^\0+|\0+$/g, ''), ...base };
}

export interface ConfigPathChoice {
  /** certs.d roots to search (hosts-toml.ts resolveRegistryHosts); [] when `legacy`. */
  paths: string[];
  from: 'flag' | 'config-file' | 'default' | 'legacy';
  /** containerd takes endpoints from config.toml's mirrors/configs (legacyRegistryHosts), not from certs.d. */
  legacy: boolean;
  /**
   * Legacy only because the file is for containerd 1.x and the running containerd's major version was
   * not given: a containerd 2.x uses these roots (the default ones, on the node) instead. Where a root
   * holds a host directory for the registry, the version decides (probe/endpoints.ts).
   */
  versionDecides?: { paths: string[] };
}

/**
 * Which registry configuration containerd uses: an explicit `--containerd-config-path` wins;
 * else the file's non-empty config_path; else any mirrors or configs in the file mean the
 * deprecated CRI settings; else a file for containerd 1.x (version 1 or 2) means them too
 * (containerd 1.x ignores certs.d without config_path) unless `containerdMajor` says the node
 * runs containerd 2.x, which then uses its default roots, as it does with no file; with the
 * major not given, `versionDecides` names those roots.
 * Paths from the file and the default are node paths, opened under `hostRoot`; explicit ones
 * are taken as given.
 */
export function effectiveConfigPath(
  cfg: ContainerdConfig | null | undefined,
  explicit?: string[] | null,
  hostRoot = '',
  containerdMajor?: number,
): ConfigPathChoice {
  if (explicit !== undefined && explicit !== null) return { paths: [...explicit], from: 'flag', legacy: false };
  const node = (ps: string[]): string[] => ps.map((p) => onNode(p, hostRoot));
  if (cfg?.ok && cfg.configPath !== null) return { paths: node(cfg.configPath), from: 'config-file', legacy: false };
  const deprecated = cfg?.ok && (Object.keys(cfg.mirrors).length > 0 || Object.keys(cfg.configs).length > 0);
  const defaults = node(DEFAULT_CONFIG_PATH.split(':'));
  if (deprecated) return { paths: [], from: 'legacy', legacy: true };
  if (cfg?.ok && cfg.version <= 2 && (containerdMajor === undefined || containerdMajor < 2)) {
    return { paths: [], from: 'legacy', legacy: true, ...(containerdMajor === undefined ? { versionDecides: { paths: defaults } } : {}) };
  }
  return { paths: defaults, from: 'default', legacy: false };
}
