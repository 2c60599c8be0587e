/**
 * Docker `config.json` / `.dockerconfigjson` parsing and credential lookup,
 * following the kubelet keyring (key normalisation, per-label globs, path
 * prefixes, Docker Hub aliases) and containerd's AuthConfig rules
 * (username/password, else identity token as ("", token), else base64 auth).
 *
 * Secrets never appear in errors: messages name the source file and the key.
 * JSON.parse's own message is not used either, since V8 quotes the input.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import type { Credential } from '../model/types.js';
import { DOCKER_HUB, isDockerHubHost } from '../model/reference.js';
import { labelMatch } from './label-glob.js';
import { ecrTokenExpiry } from './ecr-token.js';
import { cannotRead, normaliseRoot, readNodeFile, realHostFs, type HostFs } from './host-root.js';
import { DockerConfigError, FileUnreadableError } from '../shared/errors.js';
import { isPlainObject } from '../shared/guards.js';

/** ConfigError: the name this module first gave DockerConfigError. */
export { DockerConfigError, DockerConfigError as ConfigError };

export interface DockerAuthEntry {
  /** The key as written in the file ("https://index.docker.io/v1/"). */
  key: string;
  /** Lowercased host[:port] of the key, scheme and /v1/ /v2/ removed; Hub aliases are "docker.io". */
  host: string;
  /** Path prefix the key is limited to ("" for the whole registry), e.g. "/team". */
  path: string;
  username: string;
  password: string;
  /** The secret is the entry's `identitytoken` (sent as ("", token), OAuth refresh_token grant). */
  identityToken?: true;
}

export interface DockerAuths {
  /** File the entries came from, for messages. */
  source: string;
  entries: DockerAuthEntry[];
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: Json | undefined): v is { [k: string]: Json } => isPlainObject(v);

const PADDED_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const RAW_BASE64 = /^[A-Za-z0-9+/]*$/;

/**
 * kubelet decodeDockerConfigFieldAuth: padded (standard) base64 when the trimmed value ends
 * in "=", unpadded (raw) otherwise; Go's decoder skips "\r" and "\n" anywhere, nothing else.
 * Returns undefined when the value is not base64.
 */
export function decodeAuthField(field: string): string | undefined {
  const b64 = field.replace(/[\r\n]/g, '');
  const padded = field.trim().endsWith('=');
  if (padded ? !PADDED_BASE64.test(b64) : !RAW_BASE64.test(b64) || b64.length % 4 === 1) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
}

/**
 * kubelet keyring: "https://" + key parsed as a URL; a leading /v1/ or /v2/
 * path is dropped; "/" or "" means the whole host.
 */
export function normalizeAuthKey(key: string): { host: string; path: string } {
  let rest = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = rest.indexOf('/');
  let path = slash === -1 ? '' : rest.slice(slash);
  rest = slash === -1 ? rest : rest.slice(0, slash);
  if (path.startsWith('/v1/') || path.startsWith('/v2/')) path = path.slice(3);
  if (path === '/') path = '';
  const host = rest.toLowerCase();
  return { host: isDockerHubHost(host) ? DOCKER_HUB : host, path };
}

function fieldString(entry: { [k: string]: Json }, field: string, where: string): string | undefined {
  const v = entry[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new DockerConfigError(`${where}.${field}: must be a string`);
  return v;
}

function parseEntry(source: string, key: string, value: Json | undefined): DockerAuthEntry | undefined {
  const where = `${source}: auths[${JSON.stringify(key)}]`;
  if (!isObject(value)) throw new DockerConfigError(`${where}: must be an object`);
  const auth = fieldString(value, 'auth', where);
  const username = fieldString(value, 'username', where);
  const password = fieldString(value, 'password', where);
  const identityToken = fieldString(value, 'identitytoken', where);
  fieldString(value, 'email', where); // the kubelet fails the config on a non-string email too
  const { host, path } = normalizeAuthKey(key);
  if (host === '') throw new DockerConfigError(`${where}: key has no registry host`);
  // kubelet's DockerConfigEntry: a non-empty `auth` overrides username/password.
  if (auth) {
    const decoded = decodeAuthField(auth);
    if (decoded === undefined) throw new DockerConfigError(`${where}.auth: not base64 "user:password"`);
    const colon = decoded.indexOf(':');
    if (colon === -1) throw new DockerConfigError(`${where}.auth: decoded value has no ":" between user and password`);
    // containerd ParseAuth trims NULs from the password.
    const pass = decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '');
    return { key, host, path, username: decoded.slice(0, colon), password: pass };
  }
  if (username) return { key, host, path, username, password: password ?? '' };
  // containerd: an identity token is sent as ("", token) → OAuth refresh_token grant.
  if (identityToken) return { key, host, path, username: '', password: identityToken, identityToken: true };
  return undefined; // e.g. {} written when a credsStore holds the secret: anonymous
}

/**
 * How to read the file: `auto` (an `auths` map, else a legacy .dockercfg top-level server map);
 * `config.json` as the kubelet reads config.json (only `auths`; none means no entries);
 * `dockercfg` as the kubelet reads .dockercfg (the top level is the server map).
 */
export type DockerConfigFormat = 'auto' | 'config.json' | 'dockercfg';

/** Parse a config.json / .dockerconfigjson (or legacy .dockercfg) text. Throws DockerConfigError. */
export function parseDockerConfig(text: string, source: string, format: DockerConfigFormat = 'auto'): DockerAuths {
  let doc: Json;
  try {
    doc = JSON.parse(text) as Json;
  } catch {
    throw new DockerConfigError(`${source}: not valid JSON`);
  }
  if (!isObject(doc)) throw new DockerConfigError(`${source}: top level must be a JSON object`);
  let auths: Json | undefined = format === 'dockercfg' ? doc : doc['auths'];
  if (format === 'config.json') auths ??= {};
  if (auths === undefined) {
    // legacy .dockercfg: the server map is the top level
    const legacy = Object.values(doc).every((v) => isObject(v) && ('auth' in v || 'username' in v));
    auths = legacy && Object.keys(doc).length > 0 ? doc : {};
  }
  if (!isObject(auths)) throw new DockerConfigError(`${source}: auths: must be an object`);
  const entries: DockerAuthEntry[] = [];
  for (const [key, value] of Object.entries(auths)) {
    const entry = parseEntry(source, key, value);
    if (entry) entries.push(entry);
  }
  return { source, entries };
}

function splitPort(hostPort: string): { name: string; port: string } {
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    const after = hostPort.slice(end + 1);
    return { name: hostPort.slice(0, end + 1), port: after.startsWith(':') ? after.slice(1) : '' };
  }
  const colon = hostPort.lastIndexOf(':');
  return colon === -1 ? { name: hostPort, port: '' } : { name: hostPort.slice(0, colon), port: hostPort.slice(colon + 1) };
}

/** kubelet `urlsMatch`: same port, same label count, each label globbed, path prefix. */
function hostMatches(entry: DockerAuthEntry, host: string, repoPath: string | undefined): boolean {
  const want = splitPort(entry.host);
  const got = splitPort(host);
  if (want.port !== got.port) return false;
  const wl = want.name.split('.');
  const gl = got.name.split('.');
  if (wl.length !== gl.length) return false;
  if (!wl.every((l, i) => labelMatch(l, gl[i] ?? ''))) return false;
  if (entry.path === '') return true;
  return repoPath !== undefined && repoPath.startsWith(entry.path);
}

/**
 * Credential for a registry host ("reg.io:5000", "docker.io",
 * "registry-1.docker.io"), optionally limited by repository ("team/app") so
 * keys with a path only match images under it. More specific keys win
 * (exact host over glob, longer path first), as in the kubelet keyring.
 */
export function credentialFor(auths: DockerAuths, registryHost: string, repository?: string): Credential | undefined {
  const lower = registryHost.toLowerCase();
  const host = isDockerHubHost(lower) ? DOCKER_HUB : lower;
  const repoPath = repository === undefined ? undefined : `/${repository.replace(/^\/+/, '')}`;
  const matches = auths.entries
    .filter((e) => hostMatches(e, host, repoPath))
    .sort((a, b) => {
      const ga = /[*?[]/.test(a.host) ? 1 : 0;
      const gb = /[*?[]/.test(b.host) ? 1 : 0;
      return ga - gb || b.path.length - a.path.length;
    });
  const best = matches[0];
  if (!best) return undefined;
  return entryCredential(auths.source, best);
}

/** The Credential for one entry of `file`: origin docker-config; expiry only when the password is an ECR token carrying one. */
export function entryCredential(file: string, e: DockerAuthEntry): Credential {
  const c: Credential = {
    username: e.username,
    password: e.password,
    source: `${file}: auths[${JSON.stringify(e.key)}]`,
    origin: { source: 'docker-config', name: file, expiresAt: ecrTokenExpiry(e.password) },
  };
  if (e.identityToken) c.identityToken = true;
  return c;
}

export type ReadFile = (path: string, encoding: 'utf8') => string;

/** Read and parse a docker config file: FileUnreadableError when it cannot be read, else as parseDockerConfig. */
export function loadDockerConfig(path: string, readFile: ReadFile = readFileSync): DockerAuths {
  let text: string;
  try {
    text = readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new FileUnreadableError(path, `${path}: cannot read docker config${typeof code === 'string' ? ` (${code})` : ''}`, {
      cause: err,
    });
  }
  return parseDockerConfig(text, path);
}

export interface KubeletDockerConfigPathsOptions {
  /** The kubelet's --root-dir (its preferred docker config path). Default /var/lib/kubelet. */
  rootDir?: string;
  /** The kubelet's working directory. Default "/" (systemd's). */
  workingDir?: string;
  /** The kubelet's $HOME; null when unset, as for a systemd system service without User= (the default). */
  home?: string | null;
}

/** filepath.Abs(filepath.Join(dir, name)) with `cwd` for a relative result. */
function absJoin(cwd: string, dir: string, name: string): string {
  const joined = posix.join(dir, name);
  return posix.isAbsolute(joined) ? joined : posix.join(cwd, joined);
}

/**
 * The docker config files the kubelet reads for node-wide credentials, in its order
 * (kubernetes pkg/credentialprovider/config.go ReadDockerConfigFile): config.json in
 * the root dir, the working dir, $HOME/.docker and /.docker; then legacy .dockercfg in
 * the root dir, the working dir, $HOME and /. The first file that reads and parses wins.
 */
export function kubeletDockerConfigPaths(o: KubeletDockerConfigPathsOptions = {}): string[] {
  const root = o.rootDir ?? '/var/lib/kubelet';
  const cwd = o.workingDir ?? '/';
  const home = o.home ?? '';
  const json = [root, '', posix.join(home, '.docker'), '/.docker'].map((d) => absJoin(cwd, d, 'config.json'));
  const legacy = [root, '', home, '/'].map((d) => absJoin(cwd, d, '.dockercfg'));
  return [...new Set([...json, ...legacy])];
}

export interface KubeletDockerConfig {
  /** The file the kubelet would use, or null when none reads and parses. */
  found: DockerAuths | null;
  /** Files that exist but cannot be read or parsed (the kubelet skips them and goes on). */
  problems: string[];
}

/** Read the kubelet's docker config search list under a host root: the first file that reads and parses. */
export function readKubeletDockerConfig(
  paths: readonly string[],
  hostRoot: string | undefined,
  hfs: HostFs = realHostFs,
): KubeletDockerConfig {
  const problems: string[] = [];
  const root = normaliseRoot(hostRoot);
  for (const file of paths) {
    const r = readNodeFile(root + file, hostRoot, hfs);
    if (!r.ok) {
      if (r.code !== 'ENOENT' && r.code !== 'ENOTDIR') problems.push(`${cannotRead(file, r)}; the kubelet skips it`);
      continue;
    }
    try {
      const auths = parseDockerConfig(r.text, file, posix.basename(file) === '.dockercfg' ? 'dockercfg' : 'config.json');
      return { found: auths, problems };
    } catch (err) {
      problems.push(`${(err as Error).message}; the kubelet skips this file`);
    }
  }
  return { found: null, problems };
}
