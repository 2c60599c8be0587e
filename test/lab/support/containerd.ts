/**
 * Optional containerd 1.6 per node (Lab.up({ containerd: true })): native
 * snapshotter, root/state/socket under <run>/nodes/<node>/containerd, no CNI,
 * registry hosts from <run>/nodes/<node>/certs.d. Each up starts from an empty
 * root, so pulls really fetch.
 *
 * hosts.toml (lab-notes gotcha 2): top-level `server` and `ca` plus an EMPTY
 * `[host]` table. A `[host."…"]` table would make containerd try the server
 * twice; no `[host]` table at all fails to decode.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PLAIN_REGISTRY, REGISTRY_HOSTS } from './addresses.js';
import { spawnInNs, type Daemon } from './daemons.js';
import { isAlive } from './netns.js';

export interface ContainerdPaths {
  socket: string;
  configPath: string;
  config: string;
}

export function hostsToml(host: string, caFile: string): string {
  return `server = "https://${host}"\nca = "${caFile}"\n\n[host]\n`;
}

/** What a node's config.toml says about registries (Lab.restartContainerd). */
export interface ContainerdRegistryOptions {
  /** Keep `registry.config_path` = the node's certs.d (default true). */
  configPath?: boolean;
  /**
   * Extra TOML appended to the file, e.g. a \`[plugins."io.containerd.grpc.v1.cri".registry.configs."basic.lab.test".auth]\`
   * table or \`registry.mirrors\` (without config_path: 1.6 rejects both together).
   */
  extra?: string;
}

export function writeContainerdFiles(nodeDir: string, caFile: string): ContainerdPaths {
  const base = join(nodeDir, 'containerd');
  const configPath = join(nodeDir, 'certs.d');
  for (const d of [base, configPath]) mkdirSync(d, { recursive: true });
  for (const host of REGISTRY_HOSTS) {
    mkdirSync(join(configPath, host), { recursive: true });
    writeFileSync(join(configPath, host, 'hosts.toml'), hostsToml(host, caFile));
  }
  // The plain-http registry: containerd goes to a non-localhost host in http only when hosts.toml says so.
  mkdirSync(join(configPath, PLAIN_REGISTRY), { recursive: true });
  writeFileSync(join(configPath, PLAIN_REGISTRY, 'hosts.toml'), `server = "http://${PLAIN_REGISTRY}"\n\n[host]\n`);
  const socket = join(base, 'containerd.sock');
  const config = join(base, 'config.toml');
  writeContainerdConfig(nodeDir);
  return { socket, configPath, config };
}

/** (Re)write <node>/containerd/config.toml; the root stays the same, so images survive a restart. */
export function writeContainerdConfig(nodeDir: string, opts: ContainerdRegistryOptions = {}): string {
  const base = join(nodeDir, 'containerd');
  const configPath = join(nodeDir, 'certs.d');
  const socket = join(base, 'containerd.sock');
  const config = join(base, 'config.toml');
  const registry = opts.configPath === false ? '' : `  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "${configPath}"\n`;
  writeFileSync(
    config,
    `version = 2
root = "${join(base, 'root')}"
state = "${join(base, 'state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.overlayfs"]

[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${join(base, 'opt')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.lab.test/lab/pause:none"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
${registry}  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${join(base, 'cni-bin')}"
    conf_dir = "${join(base, 'cni-conf')}"
${opts.extra ?? ''}`,
    { mode: 0o600 },
  );
  return config;
}

/** containerd starts with no proxy unless a test gives one (Lab.restartContainerd). */
export const NO_PROXY_ENV = { HTTPS_PROXY: '', HTTP_PROXY: '', NO_PROXY: '', https_proxy: '', http_proxy: '', no_proxy: '' } as const;

const BIND = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"';

/** Start containerd inside a node namespace with that node's resolv.conf/hosts. */
export async function startContainerd(
  ns: string,
  name: string,
  paths: ContainerdPaths,
  etc: { resolvConf: string; hosts: string },
  logDir: string,
  onStart: (d: Daemon) => void,
  timeoutMs = 8000,
  env: Record<string, string> = {},
): Promise<void> {
  const d = spawnInNs(
    ns,
    name,
    ['/bin/sh', '-c', BIND, 'sh', etc.resolvConf, etc.hosts, '/usr/bin/containerd', '--config', paths.config],
    logDir,
    { ...NO_PROXY_ENV, ...env },
  );
  onStart(d);
  const until = Date.now() + timeoutMs;
  while (!existsSync(paths.socket)) {
    if (!isAlive(d.pid)) throw new Error(`${name} exited during startup (see ${d.log})`);
    if (Date.now() > until) throw new Error(`${name} socket not up after ${timeoutMs} ms (see ${d.log})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
