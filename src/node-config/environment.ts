/**
 * Everything a probe reads from the node's files. The CLI loads it once; the
 * agent keeps an EnvironmentCache and asks it before every probe: while no
 * file it was built from changed (one stat each, file-cache.ts) the same
 * ProbeEnvironment comes back, so resolv.conf edits are still seen at the
 * next probe, without re-reading every file and rebuilding the CA set.
 *
 * The node's own files (resolv.conf, hosts) never stop the probe: links are
 * followed inside the host root, an unreadable file is a problem listed in
 * the result (the DNS step's detail) and the resolver falls back as glibc
 * does. Files the user named (`strict`: the CLI's --ca-file, --docker-config,
 * an explicit --resolv-conf/--hosts) are configuration errors that name the
 * file; in the agent they are reported problems too, never an exit.
 */
import { hostname as osHostname } from 'node:os';
import { parseHosts, type HostsTable } from './hosts-file.js';
import { cannotRead, normaliseRoot, readNodeFile, realHostFs, type HostFs } from './host-root.js';
import { loadNodeResolvConf } from './node-resolv-conf.js';
import type { ResolvConf } from './resolv-conf.js';
import { loadNodeTrust, TrustCache } from './trust.js';
import { FileCache, type CacheFs, type Deps } from './file-cache.js';
import type { HostsFs } from './hosts-toml.js';
import { parseDockerConfig, type DockerAuths } from './docker-config.js';
import { FileUnreadableError } from '../shared/errors.js';
import { hostPlatform } from '../model/platform.js';
import type { Platform } from '../model/types.js';

/** Files whose absence is a configuration error rather than a reported problem. */
export type StrictFile = 'resolvConf' | 'hosts' | 'caFiles' | 'dockerConfig';

export interface EnvironmentOptions {
  resolvConfPath?: string;
  /** null: no hosts file. */
  hostsPath?: string | null;
  caFiles?: string[];
  dockerConfigPath?: string | null;
  /** containerd config_path directories (certs.d); [] to ignore hosts.toml. */
  containerdConfigPath?: string[];
  platform?: Platform;
  /** Where the node's filesystem is mounted ("" or "/": this filesystem is the node's). */
  hostRoot?: string;
  /** The node's host name, for the search domain glibc derives from it (default os.hostname()). */
  hostname?: string;
  /** NODE_EXTRA_CA_CERTS (default: this process's environment). */
  extraCaCerts?: string | undefined;
  /** Files the user named explicitly: unreadable ones throw FileUnreadableError (the CLI). */
  strict?: StrictFile[];
  /** Reads a file's text (tests); default: the real filesystem, links resolved in the host root. */
  readFile?: (path: string) => string;
}

export interface ProbeEnvironment {
  /** Its `file` and `problems` say which file was used and what could not be read. */
  resolvConf: ResolvConf;
  /** The resolv.conf actually used (after links and systemd-resolved), or the requested one when none was readable. */
  resolvConfPath: string;
  hosts: HostsTable | undefined;
  ca: string[];
  auths: DockerAuths | undefined;
  dockerConfigPath: string | null;
  containerdConfigPath: string[];
  platform: Platform;
  hostRoot: string;
  /** Problems reading the node's files, each naming the file. */
  problems: string[];
  /** Cached access to the node's other files (set when loaded through an EnvironmentCache). */
  nodeFiles?: NodeFiles;
  /** containerd's config.toml, the kubelet's credential sources, the proxy and the CRI socket (road.ts); absent: certs.d and --docker-config only. */
  road?: import('./road.js').Road;
}

/** What the probe chain reads from the node per target, through the environment's file cache. */
export interface NodeFiles {
  /** For resolveRegistryHosts (certs.d): files re-read only when changed, no error object for a missing directory. */
  hostsFs: HostsFs;
  /**
   * `ca` plus the certificates of a hosts.toml endpoint's CA files: the same array while
   * the files are unchanged (one SecureContext). Throws TrustError naming the file, as loadTrust.
   */
  endpointCa(caFiles: string[]): string[];
}

function hostFsFor(read: ((p: string) => string) | undefined): HostFs {
  if (!read) return realHostFs;
  // An injected reader sees plain paths: no links to follow.
  return { isLink: () => false, readlink: () => '', readFile: read };
}

/**
 * Load the node's files. With `cache`, the cache's answer (see EnvironmentCache);
 * without, a one-off cache for this load (one CLI run). An injected `readFile`
 * (tests) bypasses caching.
 */
export function loadEnvironment(opts: EnvironmentOptions = {}, cache?: EnvironmentCache): ProbeEnvironment {
  if (opts.readFile) return buildEnvironment(opts, hostFsFor(opts.readFile));
  return (cache ?? new EnvironmentCache()).load(opts);
}

function buildEnvironment(opts: EnvironmentOptions, hfs: HostFs, trustCache?: TrustCache): ProbeEnvironment {
  const hostRoot = normaliseRoot(opts.hostRoot);
  const strict = new Set(opts.strict ?? []);
  const problems: string[] = [];

  const resolvConfPath = opts.resolvConfPath ?? '/etc/resolv.conf';
  const rc = loadNodeResolvConf({ path: resolvConfPath, hostRoot, hostname: opts.hostname ?? osHostname(), fs: hfs });
  if (rc.unreadable && strict.has('resolvConf'))
    throw new FileUnreadableError(resolvConfPath, `resolv.conf ${rc.problems[0] ?? resolvConfPath}`);
  problems.push(...rc.problems);

  const hostsPath = opts.hostsPath === undefined ? '/etc/hosts' : opts.hostsPath;
  let hosts: HostsTable | undefined;
  if (hostsPath !== null) {
    const r = readNodeFile(hostsPath, hostRoot, hfs);
    if (r.ok) hosts = parseHosts(r.text);
    else if (strict.has('hosts')) throw new FileUnreadableError(hostsPath, `hosts file ${cannotRead(hostsPath, r)}`);
    else problems.push(`${cannotRead(hostsPath, r)}; resolving through DNS only`);
  }

  // TrustError (PULLPROBE_TRUST), DockerConfigError and FileUnreadableError name the file.
  const trust = loadNodeTrust({
    caFiles: opts.caFiles ?? [],
    hostRoot,
    strict: strict.has('caFiles'),
    fs: hfs,
    ...(trustCache ? { cache: trustCache } : {}),
    ...(opts.extraCaCerts !== undefined ? { extraCaCerts: opts.extraCaCerts } : {}),
  });
  problems.push(...trust.problems);

  const dockerConfigPath = opts.dockerConfigPath ?? null;
  let auths: DockerAuths | undefined;
  if (dockerConfigPath !== null) {
    const r = readNodeFile(dockerConfigPath, hostRoot, hfs);
    try {
      if (!r.ok)
        throw new FileUnreadableError(
          dockerConfigPath,
          cannotRead(dockerConfigPath, r).replace(': cannot read', ': cannot read docker config'),
        );
      auths = parseDockerConfig(r.text, dockerConfigPath);
    } catch (err) {
      if (strict.has('dockerConfig')) throw err;
      problems.push(`docker config ${(err as Error).message}; probing without credentials`);
    }
  }

  const resolvConf: ResolvConf = { ...rc.conf, file: rc.file ?? resolvConfPath, problems };
  return {
    resolvConf,
    resolvConfPath: rc.file ?? resolvConfPath,
    hosts,
    ca: trust.ca,
    auths,
    dockerConfigPath,
    containerdConfigPath: opts.containerdConfigPath ?? [],
    platform: opts.platform ?? hostPlatform(),
    hostRoot,
    problems,
  };
}

export interface EnvironmentCacheOptions {
  /** File access (tests inject one and count reads). */
  fs?: CacheFs;
  /** Wall clock in ms (file-cache.ts's racy check). */
  now?: () => number;
  /** Files remembered (default 256) and CA sets kept (default 4). */
  maxFiles?: number;
  maxTrustSets?: number;
  /** Where NODE_EXTRA_CA_CERTS is read when the options do not say (default process.env). */
  processEnv?: Record<string, string | undefined>;
  /** The node's host name when the options do not say (default os.hostname()). */
  hostname?: () => string;
  /**
   * Within this many ms of the last check the files are not stat'ed again
   * (default 0: every load checks). The agent loads once per probe and uses
   * 1 s: a node file's change is seen within a second, at one check per second
   * instead of ~10 stats per probe (issue 10).
   */
  recheckMs?: number;
}

/**
 * The environment loaded once and loaded again only when something it was
 * built from changed: the options (a config reload), or any file it looked
 * at — resolv.conf and systemd-resolved's upstream list, hosts, the CA
 * bundles and files, the docker config, every link followed in the host root,
 * and the files that were missing (one appearing is a change). Files that did
 * not change are not re-read, and an unchanged CA set is the same array.
 * A load that throws (a strict file unreadable) is not remembered.
 */
export class EnvironmentCache {
  readonly files: FileCache;
  readonly trust: TrustCache;
  readonly #processEnv: Record<string, string | undefined>;
  readonly #hostname: () => string;
  readonly #hostsFs: HostsFs;
  readonly #now: () => number;
  readonly #recheckMs: number;
  #last: { key: string; deps: Deps; env: ProbeEnvironment; checkedAt: number } | null = null;

  constructor(opts: EnvironmentCacheOptions = {}) {
    this.files = new FileCache({
      ...(opts.fs ? { fs: opts.fs } : {}),
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.maxFiles !== undefined ? { maxEntries: opts.maxFiles } : {}),
    });
    this.trust = new TrustCache(opts.maxTrustSets !== undefined ? { maxEntries: opts.maxTrustSets } : {});
    this.#processEnv = opts.processEnv ?? process.env;
    this.#hostname = opts.hostname ?? osHostname;
    this.#hostsFs = this.files.hostsFs();
    this.#now = opts.now ?? Date.now;
    this.#recheckMs = Math.max(0, opts.recheckMs ?? 0);
  }

  load(opts: EnvironmentOptions = {}): ProbeEnvironment {
    const resolved: EnvironmentOptions = {
      ...opts,
      hostname: opts.hostname ?? this.#hostname(),
      extraCaCerts: opts.extraCaCerts === undefined ? (this.#processEnv['NODE_EXTRA_CA_CERTS'] ?? '') : opts.extraCaCerts,
    };
    delete resolved.readFile; // the cache reads through its own fs
    const key = JSON.stringify(resolved);
    const last = this.#last;
    const now = this.#now();
    if (last?.key === key) {
      const recent = now >= last.checkedAt && now - last.checkedAt < this.#recheckMs;
      if (recent) return last.env;
      if (!this.files.changed(last.deps)) {
        last.checkedAt = now;
        return last.env;
      }
    }
    const deps: Deps = new Map();
    const env = buildEnvironment(resolved, this.files.recordingHostFs(deps), this.trust);
    const read = (path: string): string => this.files.read(path);
    env.nodeFiles = { hostsFs: this.#hostsFs, endpointCa: (caFiles) => this.trust.withFiles(env.ca, caFiles, read) };
    this.#last = { key, deps, env, checkedAt: now };
    return env;
  }
}
