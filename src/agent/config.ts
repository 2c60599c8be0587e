/**
 * The agent's YAML config (design.md "Configuration (agent)"). Strict: unknown
 * keys, wrong types, bad durations, bad image references and out-of-range
 * values are all errors, every one collected (not just the first) and each
 * prefixed with its path: `targets[2].image: invalid reference format: …`.
 * YAML syntax errors are `<source>:<line>:<col>: …`.
 */
import { DEFAULT_CONFIG_PATH } from '../node-config/hosts-toml.js';
import { readFile as fsReadFile, stat as fsStat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { parseImageReference, parseTarget } from '../model/reference.js';
import { formatDuration } from '../shared/duration.js';
import { describe, isObj, join, Reader } from './config-reader.js';
import { readYaml } from './config-yaml.js';

export interface TargetConfig {
  /** The target string exactly as written (an image ref or a bare registry host), as on the CLI. */
  target: string;
  kind: 'image' | 'registry';
  intervalMs: number;
  timeoutMs: number;
  jitter: number;
  /** Also pull the image through the CRI (stage `runtime`): for one small canary image. */
  pull?: boolean;
}

/** Where the node's container runtime takes its proxy settings from (design.md `runtime.proxy`). */
export const PROXY_MODES = ['runtime', 'env', 'none'] as const;
export type ProxyMode = (typeof PROXY_MODES)[number];

export interface AgentConfig {
  /** host "" = all interfaces. */
  listen: { host: string; port: number };
  intervalMs: number;
  timeoutMs: number;
  jitter: number;
  concurrency: number;
  node: string;
  subnet: string | null;
  logLevel: LogLevel;
  targets: TargetConfig[];
  dns: { resolvConf: string; hosts: string };
  /** Where the node's filesystem is mounted in the container ("" = "/"): links in the node's files resolve inside it. */
  hostRoot?: string;
  tls: { caFiles: string[] };
  credentials: { dockerConfig: string | null; providerConfig: string | null; providerBinDir: string | null };
  /** configPath: certs.d dirs; `configPathSet`: written in the file (then it wins over config.toml's config_path). */
  containerd: { configPath: string[]; configPathSet: boolean; config: string | null };
  /** The CRI socket and where containerd's proxy settings are read from. */
  runtime: { endpoint: string; proxy: ProxyMode };
  outputs: { annotation: boolean; condition: boolean; events: boolean; heartbeatMs: number };
  /** Pod discovery (needs the pod-discovery RBAC component); absent = off. */
  discover?: { pods: boolean };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What the config may take from the environment. */
export interface ConfigEnv {
  NODE_NAME?: string | undefined;
  LOG_LEVEL?: string | undefined;
  /** The node's address (downward API status.hostIP): `${HOST_IP}` in `listen` stands for it. */
  HOST_IP?: string | undefined;
  hostname: string;
}

export type ConfigResult = { ok: true; config: AgentConfig } | { ok: false; errors: string[] };

export const DEFAULTS = {
  listen: ':9808',
  intervalMs: 60_000,
  timeoutMs: 10_000,
  jitter: 0.1,
  concurrency: 8,
  logLevel: 'info' as LogLevel,
  resolvConf: '/etc/resolv.conf',
  hosts: '/etc/hosts',
  containerdConfigPath: DEFAULT_CONFIG_PATH,
  containerdConfig: '/etc/containerd/config.toml',
  criEndpoint: 'unix:///run/containerd/containerd.sock',
  proxy: 'runtime' as ProxyMode,
  heartbeatMs: 600_000,
} as const;

const MIN_INTERVAL_MS = 1_000;
const MAX_CONCURRENCY = 1_024;

const KEYS = {
  root: [
    'listen',
    'interval',
    'timeout',
    'jitter',
    'concurrency',
    'node',
    'subnet',
    'logLevel',
    'targets',
    'dns',
    'tls',
    'credentials',
    'containerd',
    'outputs',
    'hostRoot',
    'discover',
    'runtime',
  ],
  target: ['image', 'registry', 'interval', 'timeout', 'jitter', 'pull'],
  dns: ['resolvConf', 'hosts'],
  tls: ['caFiles'],
  credentials: ['dockerConfig', 'providerConfig', 'providerBinDir'],
  containerd: ['configPath', 'config'],
  runtime: ['endpoint', 'proxy'],
  outputs: ['annotation', 'condition', 'events', 'heartbeat'],
  discover: ['pods'],
} as const;

function parseListen(r: Reader, s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.%\w]+)\]|([^:[\]]*)):(\d+)$/.exec(s);
  if (!m) {
    r.err('listen', `expected "[host]:port" like ":9808" or "127.0.0.1:9808", got ${JSON.stringify(s)}`);
    return { host: '', port: NaN };
  }
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port < 1 || port > 65535) r.err('listen', `port must be 1..65535, got ${m[3]}`);
  if (m[1] !== undefined && isIP(host) !== 6) r.err('listen', `not an IPv6 address in brackets: ${JSON.stringify(host)}`);
  return { host, port };
}

/** `${HOST_IP}` in `listen` becomes the node's address (an IPv6 one in brackets). */
function withHostIp(r: Reader, s: string, hostIp: string | undefined): string {
  if (!s.includes('${HOST_IP}')) return s;
  const ip = hostIp?.trim() ?? '';
  if (isIP(ip) === 0) {
    r.err(
      'listen',
      `uses \${HOST_IP} but the environment variable HOST_IP is ${ip ? `not an IP address: ${JSON.stringify(ip.slice(0, 80))}` : 'not set'} (set it from the downward API: status.hostIP)`,
    );
    return s.replaceAll('${HOST_IP}', ''); // already an error; only the port is checked further
  }
  return s.replaceAll('${HOST_IP}', isIP(ip) === 6 ? `[${ip}]` : ip);
}

function validCidr(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m || m[1] === undefined) return false;
  const family = isIP(m[1]);
  const bits = Number(m[2]);
  return (family === 4 && bits <= 32) || (family === 6 && bits <= 128);
}

interface Globals {
  intervalMs: number;
  timeoutMs: number;
  jitter: number;
}

function parseTargets(r: Reader, raw: unknown, g: Globals): TargetConfig[] {
  if (raw === undefined || raw === null) {
    r.err('targets', 'at least one target (image: or registry:) is required');
    return [];
  }
  if (!Array.isArray(raw)) {
    r.err('targets', `expected a list of targets, got ${describe(raw)}`);
    return [];
  }
  if (raw.length === 0) r.err('targets', 'at least one target (image: or registry:) is required');
  const out: TargetConfig[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item: unknown, i) => {
    const path = join('targets', i);
    if (!isObj(item)) {
      r.err(path, `expected a mapping with image: or registry:, got ${describe(item)}`);
      return;
    }
    const t = r.section(item, path, KEYS.target);
    const image = r.str(t, 'image', path);
    const registry = r.str(t, 'registry', path);
    const intervalMs = r.duration(t, 'interval', path, g.intervalMs, MIN_INTERVAL_MS);
    const timeoutMs = r.duration(t, 'timeout', path, g.timeoutMs, 0);
    const jitter = r.jitter(t, 'jitter', path, g.jitter);
    const overrides = t.timeout != null || t.interval != null;
    if (overrides && timeoutMs > intervalMs) {
      const where = t.timeout != null ? join(path, 'timeout') : join(path, 'interval');
      r.err(where, `timeout ${formatDuration(timeoutMs)} exceeds the interval ${formatDuration(intervalMs)}`);
    }
    const hasImage = t.image !== undefined && t.image !== null;
    const hasRegistry = t.registry !== undefined && t.registry !== null;
    if (hasImage && hasRegistry) {
      r.err(path, 'has both image and registry; a target is one or the other');
      return;
    }
    if (!hasImage && !hasRegistry) {
      r.err(path, 'needs image: or registry:');
      return;
    }
    const key = hasImage ? 'image' : 'registry';
    const value = image ?? registry;
    if (value === undefined) return; // wrong type, already reported
    const p = join(path, key);
    const id = targetIdentity(r, p, key, value);
    if (id === undefined) return;
    const first = seen.get(id);
    if (first !== undefined) {
      r.err(p, `duplicate of targets[${first}] (${id})`);
      return;
    }
    seen.set(id, i);
    const pull = r.bool(t, 'pull', path, false);
    if (pull && key === 'registry') {
      r.err(join(path, 'pull'), 'a registry target has no image to pull; put pull: true on an image target');
      return;
    }
    out.push({ target: value, kind: key, intervalMs, timeoutMs, jitter, ...(pull ? { pull } : {}) });
  });
  return out;
}

/** Validates a target string for its key; returns the identity used to spot duplicates. */
function targetIdentity(r: Reader, p: string, key: 'image' | 'registry', value: string): string | undefined {
  if (value.trim() === '' || value !== value.trim()) {
    r.err(p, `invalid reference format: ${JSON.stringify(value)} (empty or surrounded by spaces)`);
    return undefined;
  }
  if (key === 'image') {
    const ref = parseImageReference(value);
    if (!ref.ok) {
      r.err(p, `invalid reference format: ${ref.message.replace(/^invalid reference format:\s*/, '')}`);
      return undefined;
    }
    const t = parseTarget(value);
    if (t.ok && t.target.kind === 'registry') {
      r.err(p, `${JSON.stringify(value)} is a bare registry host, not an image; write "registry: ${value}"`);
      return undefined;
    }
    return ref.ref.normalized;
  }
  const t = parseTarget(value);
  if (!t.ok) {
    r.err(p, t.message);
    return undefined;
  }
  if (t.target.kind !== 'registry') {
    r.err(p, `${JSON.stringify(value)} is an image reference, not a registry host; write "image: ${value}"`);
    return undefined;
  }
  return t.target.registry.toLowerCase();
}

/** A config file larger than this is refused before parsing (a ConfigMap is at most 1 MiB anyway). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Errors listed in full; the rest are counted. */
export const MAX_CONFIG_ERRORS = 20;
/** Longest single error line; longer ones (huge keys or values echoed back) are cut. */
const MAX_ERROR_CHARS = 400;

function clip(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** The first MAX_CONFIG_ERRORS errors, each cut to a sane length, and how many more there were. */
export function capErrors(errors: readonly string[]): string[] {
  const shown = errors.slice(0, MAX_CONFIG_ERRORS).map((e) => clip(e, MAX_ERROR_CHARS));
  const more = errors.length - shown.length;
  if (more > 0) shown.push(`… and ${more} more error${more === 1 ? '' : 's'}`);
  return shown;
}

function tooBig(source: string, bytes: number): string {
  return `${source}: the file is ${bytes} bytes, over the ${MAX_CONFIG_BYTES} byte (1 MiB) limit for the config file`;
}

/** Parse and validate the agent config. Never throws; returns every error (the first 20 in full). */
export function parseConfig(text: string, source: string, env: ConfigEnv): ConfigResult {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES) return { ok: false, errors: [tooBig(source, bytes)] };
  let r: ConfigResult;
  try {
    r = parseChecked(text, source, env);
  } catch (err) {
    // A bug here must not take the agent down on a reload: name the file and say what happened.
    r = { ok: false, errors: [`${source}: internal error while reading the config: ${err instanceof Error ? err.message : String(err)}`] };
  }
  return r.ok ? r : { ok: false, errors: capErrors(r.errors) };
}

function parseChecked(text: string, source: string, env: ConfigEnv): ConfigResult {
  const parsed = readYaml(text, source);
  if (parsed.errors.length) return { ok: false, errors: parsed.errors };
  const r = new Reader();
  if (parsed.value !== undefined && parsed.value !== null && !isObj(parsed.value)) {
    return { ok: false, errors: [`${source}: expected a mapping at the top level, got ${describe(parsed.value)}`] };
  }
  const root = r.section(parsed.value, '', KEYS.root);

  const listen = parseListen(r, withHostIp(r, r.str(root, 'listen', '') ?? DEFAULTS.listen, env.HOST_IP));
  const intervalMs = r.duration(root, 'interval', '', DEFAULTS.intervalMs, MIN_INTERVAL_MS);
  const timeoutMs = r.duration(root, 'timeout', '', DEFAULTS.timeoutMs, 0);
  if (timeoutMs > intervalMs) {
    r.err('timeout', `${formatDuration(timeoutMs)} exceeds the interval ${formatDuration(intervalMs)}`);
  }
  const jitter = r.jitter(root, 'jitter', '', DEFAULTS.jitter);

  let concurrency: number = DEFAULTS.concurrency;
  const c = root.concurrency;
  if (c !== undefined && c !== null) {
    if (typeof c !== 'number' || !Number.isInteger(c)) r.err('concurrency', `expected an integer, got ${describe(c)}`);
    else if (c < 1 || c > MAX_CONCURRENCY) r.err('concurrency', `must be 1..${MAX_CONCURRENCY}, got ${c}`);
    else concurrency = c;
  }

  const node = r.str(root, 'node', '') || env.NODE_NAME || env.hostname;
  if (!node) r.err('node', 'empty, and neither NODE_NAME nor the hostname is set');

  const subnetRaw = r.str(root, 'subnet', '');
  const subnet = subnetRaw ? subnetRaw : null;
  if (subnet !== null && !validCidr(subnet)) r.err('subnet', `expected a CIDR like "10.0.1.0/24", got ${JSON.stringify(subnet)}`);

  let logLevel: LogLevel = DEFAULTS.logLevel;
  const levelFile = r.str(root, 'logLevel', '');
  for (const [where, level] of [
    ['logLevel', levelFile],
    ['LOG_LEVEL (environment)', env.LOG_LEVEL],
  ] as const) {
    if (!level) continue;
    const found = LOG_LEVELS.find((l) => l === level);
    if (found) logLevel = found;
    else r.err(where, `unknown log level ${JSON.stringify(level)} (one of ${LOG_LEVELS.join(', ')})`);
  }

  const targets = parseTargets(r, root.targets, { intervalMs, timeoutMs, jitter });

  const hostRoot = r.str(root, 'hostRoot', '') || undefined;
  const dnsS = r.section(root.dns, 'dns', KEYS.dns);
  const dns = {
    resolvConf: r.str(dnsS, 'resolvConf', 'dns') || DEFAULTS.resolvConf,
    hosts: r.str(dnsS, 'hosts', 'dns') || DEFAULTS.hosts,
  };

  const tlsS = r.section(root.tls, 'tls', KEYS.tls);
  const caFiles: string[] = [];
  const ca = tlsS.caFiles;
  if (ca !== undefined && ca !== null) {
    if (!Array.isArray(ca)) r.err('tls.caFiles', `expected a list of file paths, got ${describe(ca)}`);
    else {
      ca.forEach((f: unknown, i) => {
        if (typeof f === 'string' && f !== '') caFiles.push(f);
        else r.err(join('tls.caFiles', i), `expected a file path, got ${describe(f)}`);
      });
    }
  }

  const credS = r.section(root.credentials, 'credentials', KEYS.credentials);
  const dockerConfig = r.str(credS, 'dockerConfig', 'credentials') || null;
  const providerConfig = r.str(credS, 'providerConfig', 'credentials') || null;
  const providerBinDir = r.str(credS, 'providerBinDir', 'credentials') || null;
  if (providerConfig !== null && providerBinDir === null)
    r.err('credentials.providerBinDir', 'providerConfig is set, so the directory of the provider executables is needed too');

  const ctrS = r.section(root.containerd, 'containerd', KEYS.containerd);
  const configPathRaw = r.str(ctrS, 'configPath', 'containerd');
  const configPath = (configPathRaw ?? DEFAULTS.containerdConfigPath).split(':').filter((d) => d !== '');
  const ctrConfigRaw = r.str(ctrS, 'config', 'containerd');
  const containerdConfig = ctrConfigRaw === undefined ? DEFAULTS.containerdConfig : ctrConfigRaw || null;

  const rtS = r.section(root.runtime, 'runtime', KEYS.runtime);
  const endpoint = r.str(rtS, 'endpoint', 'runtime') || DEFAULTS.criEndpoint;
  if (!/^unix:\/\/\/./.test(endpoint) && !endpoint.startsWith('/'))
    r.err(
      'runtime.endpoint',
      `expected a unix socket like "unix:///run/containerd/containerd.sock", got ${JSON.stringify(clip(endpoint))}`,
    );
  const proxyRaw = r.str(rtS, 'proxy', 'runtime') || DEFAULTS.proxy;
  const proxy = PROXY_MODES.find((m) => m === proxyRaw);
  if (proxy === undefined) r.err('runtime.proxy', `expected one of ${PROXY_MODES.join(', ')}, got ${JSON.stringify(clip(proxyRaw))}`);

  const outS = r.section(root.outputs, 'outputs', KEYS.outputs);
  const outputs = {
    annotation: r.bool(outS, 'annotation', 'outputs', true),
    condition: r.bool(outS, 'condition', 'outputs', true),
    events: r.bool(outS, 'events', 'outputs', true),
    heartbeatMs: r.duration(outS, 'heartbeat', 'outputs', DEFAULTS.heartbeatMs, MIN_INTERVAL_MS),
  };

  const discS = r.section(root.discover, 'discover', KEYS.discover);
  const discover = { pods: r.bool(discS, 'pods', 'discover', false) };

  if (r.errors.length) return { ok: false, errors: r.errors };
  return {
    ok: true,
    config: {
      listen,
      intervalMs,
      timeoutMs,
      jitter,
      concurrency,
      node,
      subnet,
      logLevel,
      targets,
      ...(hostRoot !== undefined ? { hostRoot } : {}),
      dns,
      tls: { caFiles },
      credentials: { dockerConfig, providerConfig, providerBinDir },
      containerd: { configPath, configPathSet: configPathRaw !== undefined, config: containerdConfig },
      runtime: { endpoint, proxy: proxy ?? DEFAULTS.proxy },
      outputs,
      ...(root.discover !== undefined ? { discover } : {}),
    },
  };
}

export interface LoadOptions {
  env?: ConfigEnv;
  readFile?: (path: string) => Promise<string>;
}

export function defaultEnv(): ConfigEnv {
  return { NODE_NAME: process.env.NODE_NAME, LOG_LEVEL: process.env.LOG_LEVEL, HOST_IP: process.env.HOST_IP, hostname: osHostname() };
}

/** Read and parse; a read failure is one error `<path>: cannot read: ENOENT`. */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<ConfigResult> {
  const read = opts.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  let text: string;
  try {
    if (!opts.readFile) {
      // Checked before reading: a huge file is refused without loading it.
      const size = (await fsStat(path)).size;
      if (size > MAX_CONFIG_BYTES) return { ok: false, errors: [tooBig(path, size)] };
    }
    text = await read(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { ok: false, errors: [`${path}: cannot read: ${typeof code === 'string' ? code : (err as Error).message}`] };
  }
  return parseConfig(text, path, opts.env ?? defaultEnv());
}

export type ReloadResult = { ok: true; config: AgentConfig; changed: boolean } | { ok: false; errors: string[]; config: AgentConfig };

/** The live config; reload() swaps it only when the new file is valid (the old one stays otherwise). */
export class ConfigHolder {
  #current: AgentConfig;
  constructor(
    readonly path: string,
    initial: AgentConfig,
    private readonly opts: LoadOptions = {},
  ) {
    this.#current = initial;
  }

  get current(): AgentConfig {
    return this.#current;
  }

  async reload(): Promise<ReloadResult> {
    const r = await loadConfig(this.path, this.opts);
    if (!r.ok) return { ok: false, errors: r.errors, config: this.#current };
    if (JSON.stringify(r.config) === JSON.stringify(this.#current)) {
      return { ok: true, config: this.#current, changed: false };
    }
    this.#current = r.config;
    return { ok: true, config: r.config, changed: true };
  }
}
