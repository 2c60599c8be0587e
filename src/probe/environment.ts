/**
 * Everything a probe reads from the node's files, loaded once per probe run
 * (the CLI: once; the agent: once per cycle, so resolv.conf edits are seen).
 * Bad files are configuration errors that name the file, never a crash.
 */
import { readFileSync } from 'node:fs';
import { parseResolvConf, type ResolvConf } from './resolv-conf.js';
import { parseHosts, type HostsTable } from './hosts-file.js';
import { loadTrust } from './trust.js';
import { loadDockerConfig, type DockerAuths } from './docker-config.js';
import { hostPlatform } from './platform.js';
import type { Platform } from './types.js';

export class ProbeConfigError extends Error {
  override readonly name = 'ProbeConfigError';
  readonly code = 'PULLPROBE_CONFIG' as const;
}

export interface EnvironmentOptions {
  resolvConfPath?: string;
  /** null: no hosts file. */
  hostsPath?: string | null;
  caFiles?: string[];
  dockerConfigPath?: string | null;
  /** containerd config_path directories (certs.d); [] to ignore hosts.toml. */
  containerdConfigPath?: string[];
  platform?: Platform;
  readFile?: (path: string) => string;
}

export interface ProbeEnvironment {
  resolvConf: ResolvConf;
  resolvConfPath: string;
  hosts: HostsTable | undefined;
  ca: string[];
  auths: DockerAuths | undefined;
  dockerConfigPath: string | null;
  containerdConfigPath: string[];
  platform: Platform;
}

const defaultRead = (p: string): string => readFileSync(p, 'utf8');

function readNamed(read: (p: string) => string, path: string, what: string): string {
  try {
    return read(path);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    throw new ProbeConfigError(`${what} ${path}: cannot read (${code})`);
  }
}

export function loadEnvironment(opts: EnvironmentOptions = {}): ProbeEnvironment {
  const read = opts.readFile ?? defaultRead;
  const resolvConfPath = opts.resolvConfPath ?? '/etc/resolv.conf';
  const resolvConf = parseResolvConf(readNamed(read, resolvConfPath, 'resolv.conf'));
  const hostsPath = opts.hostsPath === undefined ? '/etc/hosts' : opts.hostsPath;
  let hosts: HostsTable | undefined;
  if (hostsPath !== null) {
    try {
      hosts = parseHosts(read(hostsPath));
    } catch {
      hosts = undefined; // a node without /etc/hosts resolves through DNS only
    }
  }
  // TrustError and the docker config's ConfigError already name the file and carry PULLPROBE_CONFIG.
  const ca = loadTrust(opts.caFiles ?? [], (p) => read(p)).ca;
  const dockerConfigPath = opts.dockerConfigPath ?? null;
  const auths: DockerAuths | undefined = dockerConfigPath === null ? undefined : loadDockerConfig(dockerConfigPath, (p) => read(p));
  return {
    resolvConf, resolvConfPath, hosts, ca, auths, dockerConfigPath,
    containerdConfigPath: opts.containerdConfigPath ?? [],
    platform: opts.platform ?? hostPlatform(),
  };
}
