/**
 * The proxy the container runtime uses: HTTPS_PROXY / HTTP_PROXY / NO_PROXY
 * (upper case first, then lower case; an empty value counts as unset) with
 * Go's ProxyFromEnvironment semantics (golang.org/x/net/http/httpproxy),
 * which containerd's registry client uses (pull-path-facts.md §2.6).
 *
 * - https requests use HTTPS_PROXY, http requests HTTP_PROXY; nothing else.
 * - A value without a scheme or host ("proxy:3128", "10.0.0.1:3128",
 *   "localhost") is read as http://value; a value Go cannot parse at all is
 *   ignored (the request goes direct), which proxyProblems reports.
 * - NO_PROXY: see no-proxy.ts; localhost and loopback are never proxied.
 *
 * Proxy URLs may carry credentials (userinfo): never print a ProxyEnv or a
 * proxy URL as they are; proxyDisplay gives the printable form.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { idnaAscii, parseNoProxy, useProxy, type NoProxy } from './no-proxy.js';

export interface ProxyEnv {
  /** HTTPS_PROXY or https_proxy ('' when unset). May hold credentials: never print it. */
  readonly httpsProxy: string;
  /** HTTP_PROXY or http_proxy ('' when unset). May hold credentials: never print it. */
  readonly httpProxy: string;
  /** NO_PROXY or no_proxy ('' when unset). */
  readonly noProxy: string;
  /** Where the values came from: "this process", "containerd (pid 812)". */
  readonly from: string;
  /** The variable each value came from ("HTTPS_PROXY", "https_proxy"), for messages. */
  readonly names: { readonly https?: string; readonly http?: string; readonly noProxy?: string };
}

/** Go's getEnvAny: the first of the names with a non-empty value. */
function envAny(env: Readonly<Record<string, string | undefined>>, ...names: string[]): { name: string; value: string } | null {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== '') return { name, value };
  }
  return null;
}

/** The proxy settings in an environment (Go's httpproxy.FromEnvironment). */
export function proxyEnvFrom(env: Readonly<Record<string, string | undefined>>, from: string): ProxyEnv {
  const https = envAny(env, 'HTTPS_PROXY', 'https_proxy');
  const http = envAny(env, 'HTTP_PROXY', 'http_proxy');
  const no = envAny(env, 'NO_PROXY', 'no_proxy');
  const names: { https?: string; http?: string; noProxy?: string } = {};
  if (https) names.https = https.name;
  if (http) names.http = http.name;
  if (no) names.noProxy = no.name;
  return { httpsProxy: https?.value ?? '', httpProxy: http?.value ?? '', noProxy: no?.value ?? '', from, names };
}

/** True when the environment names any proxy at all. */
export function hasProxy(env: ProxyEnv): boolean {
  return env.httpsProxy !== '' || env.httpProxy !== '';
}

/** An invalid %-escape before the query makes Go's url.Parse fail (WHATWG URL keeps it). */
function badEscapes(text: string): boolean {
  const q = text.indexOf('?');
  return /%(?![0-9a-fA-F]{2})/.test(q < 0 ? text : text.slice(0, q));
}

function parseUrl(text: string): URL | null {
  if (badEscapes(text)) return null;
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

/**
 * Go's parseProxy: the value as a URL when it has a scheme and a host, else
 * http://value; null when neither parses (Go then ignores the variable).
 */
export function parseProxyUrl(value: string): URL | null {
  if (value === '') return null;
  const direct = parseUrl(value);
  if (direct !== null && direct.protocol !== '' && direct.host !== '') return direct;
  return parseUrl(`http://${value}`);
}

const parsedNoProxy = new WeakMap<ProxyEnv, NoProxy>();

function noProxyOf(env: ProxyEnv): NoProxy {
  let n = parsedNoProxy.get(env);
  if (n === undefined) {
    n = parseNoProxy(env.noProxy);
    parsedNoProxy.set(env, n);
  }
  return n;
}

/**
 * The proxy a request to scheme://host:port goes through, or null for a
 * direct connection (Go's ProxyFromEnvironment). `host` is a name or an IP
 * literal; IPv6 with or without brackets.
 */
export function proxyFor(env: ProxyEnv, scheme: 'https' | 'http', host: string, port: number): URL | null {
  const proxy = parseProxyUrl(scheme === 'https' ? env.httpsProxy : env.httpProxy);
  if (proxy === null) return null;
  return useProxy(noProxyOf(env), idnaAscii(host), port) ? proxy : null;
}

/** A proxy URL without its credentials: "http://proxy.corp:3128". */
export function proxyDisplay(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** "Basic …" for a proxy URL with userinfo (percent-decoded, as Go sends it), else null. Never log it. */
export function proxyAuthorization(url: URL): string | null {
  if (url.username === '' && url.password === '') return null;
  return `Basic ${Buffer.from(`${decode(url.username)}:${decode(url.password)}`, 'utf8').toString('base64')}`;
}

/** The port a proxy URL is dialled on (Go: http 80, https 443, socks5 1080). */
export function proxyPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  if (url.protocol === 'https:') return 443;
  if (url.protocol === 'socks5:') return 1080;
  return 80;
}

/** The proxy's host for dialling: a name or an IP literal without brackets. */
export function proxyHost(url: URL): string {
  const h = url.hostname;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/**
 * What is wrong with the proxy settings, in plain words naming the variable
 * and its source (never the value's credentials): values Go ignores (so the
 * runtime goes direct) and proxies this probe cannot tunnel through.
 */
export function proxyProblems(env: ProxyEnv): string[] {
  const problems: string[] = [];
  const check = (value: string, name: string | undefined): void => {
    if (value === '' || name === undefined) return;
    const u = parseProxyUrl(value);
    if (u === null) {
      problems.push(`${name} from ${env.from} is not a URL the runtime can use: it ignores it and connects directly`);
      return;
    }
    if (u.protocol !== 'http:') {
      problems.push(`${name} from ${env.from} is ${proxyDisplay(u)}: this probe only tunnels through http:// proxies`);
    }
  };
  check(env.httpsProxy, env.names.https);
  check(env.httpProxy, env.names.http);
  return problems;
}

/** File access for /proc (injected in tests; the real filesystem by default). */
export interface ProcFs {
  readFile(path: string): Buffer;
  readdir(path: string): string[];
}

export const realProcFs: ProcFs = {
  readFile: (p) => readFileSync(p),
  readdir: (p) => readdirSync(p),
};

/** Go's os.Getenv over a NUL-separated environ block: the first mention of a name wins. */
export function parseEnviron(block: Buffer | string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of block.toString('utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    if (!Object.hasOwn(env, name)) env[name] = entry.slice(eq + 1);
  }
  return env;
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

export type ProcessProxyEnv = { ok: true; env: ProxyEnv } | { ok: false; problem: string };

/**
 * The proxy settings a process started with (/proc/<pid>/environ). Reading
 * another user's environ needs root (or CAP_SYS_PTRACE) and, from a pod,
 * hostPID. Never throws: an unreadable file is a problem string.
 */
export function readProcessProxyEnv(pid: number, procRoot = '/proc', fs: ProcFs = realProcFs, name = 'containerd'): ProcessProxyEnv {
  const file = `${procRoot}/${pid}/environ`;
  let block: Buffer;
  try {
    block = fs.readFile(file);
  } catch (err) {
    const code = codeOf(err);
    const why =
      code === 'ENOENT'
        ? 'no such process'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied: the agent needs to run as root with hostPID'
          : code;
    return { ok: false, problem: `cannot read the proxy settings of ${name} (pid ${pid}) from ${file}: ${why}` };
  }
  return { ok: true, env: proxyEnvFrom(parseEnviron(block), `${name} (pid ${pid})`) };
}

/** At most this many /proc entries are looked at when searching for containerd. */
export const MAX_PROC_ENTRIES = 65536;

function isContainerd(procRoot: string, pid: string, fs: ProcFs): boolean {
  try {
    if (fs.readFile(`${procRoot}/${pid}/comm`).toString('utf8').trim() === 'containerd') return true;
  } catch {
    return false;
  }
  try {
    const argv0 = fs.readFile(`${procRoot}/${pid}/cmdline`).toString('utf8').split('\0')[0] ?? '';
    return argv0.slice(argv0.lastIndexOf('/') + 1) === 'containerd';
  } catch {
    return false;
  }
}

/**
 * The containerd daemon's pid: the lowest pid whose comm (or argv[0]'s base
 * name) is exactly "containerd" (shims are "containerd-shim…"). null when
 * none is visible (a pod without hostPID sees only its own processes).
 */
export function findContainerdPid(procRoot = '/proc', fs: ProcFs = realProcFs): number | null {
  // The pid found last time is checked first: a scan reads two files per process of the node,
  // every few seconds in the agent (issue 10). A restarted containerd has a new pid: scan again.
  const last = lastFound.get(fs)?.get(procRoot);
  if (last !== undefined && isContainerd(procRoot, String(last), fs)) return last;
  const found = scanForContainerd(procRoot, fs);
  let byRoot = lastFound.get(fs);
  if (!byRoot) lastFound.set(fs, (byRoot = new Map<string, number>()));
  if (found === null) byRoot.delete(procRoot);
  else byRoot.set(procRoot, found);
  return found;
}

const lastFound = new WeakMap<ProcFs, Map<string, number>>();

function scanForContainerd(procRoot: string, fs: ProcFs): number | null {
  let entries: string[];
  try {
    entries = fs.readdir(procRoot);
  } catch {
    return null;
  }
  const pids = entries
    .slice(0, MAX_PROC_ENTRIES)
    .filter((e) => /^[1-9]\d{0,9}$/.test(e))
    .map(Number)
    .sort((a, b) => a - b);
  for (const pid of pids) {
    if (isContainerd(procRoot, String(pid), fs)) return pid;
  }
  return null;
}

export type ProxySourceMode = 'runtime' | 'env' | 'none';

export interface ProxySourceOptions {
  /** An explicit pid (CLI --proxy-from-pid): its environment and nothing else. */
  pid?: number;
  /** 'runtime' mode: containerd's pid, already looked up (null: none visible); absent: searched for here. */
  containerdPid?: number | null;
  procRoot?: string;
  fs?: ProcFs;
  /** This process's environment (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The proxy settings to probe with (config `runtime.proxy`):
 * - 'runtime': the containerd process's environment when readable, else this
 *   process's own (with a problem saying why);
 * - 'env': this process's own; 'none': no proxy (null).
 * An explicit pid is read as it is; when unreadable the probe runs without a
 * proxy and says so (guessing another source would hide the mistake).
 */
export interface LoadedProxyEnv {
  env: ProxyEnv | null;
  problems: string[];
}

export function loadProxyEnv(mode: ProxySourceMode, o: ProxySourceOptions = {}): LoadedProxyEnv {
  if (mode === 'none') return { env: null, problems: [] };
  const own = (): ProxyEnv => proxyEnvFrom(o.env ?? process.env, 'this process');
  const procRoot = o.procRoot ?? '/proc';
  const fs = o.fs ?? realProcFs;
  if (o.pid !== undefined) {
    const r = readProcessProxyEnv(o.pid, procRoot, fs, 'process');
    return r.ok ? { env: r.env, problems: proxyProblems(r.env) } : { env: null, problems: [r.problem] };
  }
  if (mode === 'env') {
    const env = own();
    return { env, problems: proxyProblems(env) };
  }
  const pid = o.containerdPid !== undefined ? o.containerdPid : findContainerdPid(procRoot, fs);
  if (pid === null) {
    const env = own();
    return {
      env,
      problems: [
        `no containerd process visible in ${procRoot} (the agent needs hostPID): using this process's proxy settings`,
        ...proxyProblems(env),
      ],
    };
  }
  const r = readProcessProxyEnv(pid, procRoot, fs);
  if (r.ok) return { env: r.env, problems: proxyProblems(r.env) };
  const env = own();
  return { env, problems: [`${r.problem}; using this process's proxy settings`, ...proxyProblems(env)] };
}
