/**
 * Everything a probe reads from the node's files, loaded once per probe run
 * (the CLI: once; the agent: once per cycle, so resolv.conf edits are seen).
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
import { loadNodeTrust } from './trust.js';
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
}

function hostFsFor(read: ((p: string) => string) | undefined): HostFs {
  if (!read) return realHostFs;
  // An injected reader sees plain paths: no links to follow.
  return { isLink: () => false, readlink: () => '', readFile: read };
}

export function loadEnvironment(opts: EnvironmentOptions = {}): ProbeEnvironment {
  const hfs = hostFsFor(opts.readFile);
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
