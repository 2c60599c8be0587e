/**
 * The rest of the road the node's runtime takes, beyond resolv.conf, hosts and
 * the trust store (environment.ts): containerd's config.toml (which certs.d
 * roots or deprecated mirrors it uses, its per-registry auth, whether its CRI
 * plugin loads at all), the kubelet's credential sources (its node-wide docker
 * config file, credential-provider plugins, plus a `--docker-config` the user
 * names, which stands where the kubelet puts a pod's pull secrets: first), the
 * proxy settings containerd pulls through, and the CRI socket.
 *
 * Nothing here stops a probe: an unreadable or broken file is a problem naming
 * the file, and the probe goes on with what could be read, as containerd and
 * the kubelet do. Only files the user named on the command line (`strict`) are
 * configuration errors.
 *
 * A RoadCache keeps the credential-provider plugins (and their credential
 * cache) as long as their config file is unchanged, and re-reads config.toml
 * and the docker config only when they change (file-cache.ts stamps).
 */
import type { DockerAuths } from './docker-config.js';
import { kubeletDockerConfigPaths, readKubeletDockerConfig } from './docker-config.js';
import {
  containerdAuth,
  effectiveConfigPath,
  parseContainerdConfig,
  type ConfigPathChoice,
  type ContainerdConfig,
} from './containerd-config.js';
import type { CredentialProviders } from './credential-provider.js';
import { loadCredentialProviders, type LoadedCredentialProviders } from './credential-provider-load.js';
import type { CredentialSources } from './kubelet-credentials.js';
import {
  findContainerdPid,
  loadProxyEnv,
  realProcFs,
  type LoadedProxyEnv,
  type ProcFs,
  type ProxyEnv,
  type ProxySourceMode,
} from './proxy-env.js';
import { containerdVersion, type ContainerdVersionResult } from './containerd-version.js';
import { FileCache, type CacheFs } from './file-cache.js';
import { normaliseRoot } from './host-root.js';

export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';
export const DEFAULT_CRI_ENDPOINT = 'unix:///run/containerd/containerd.sock';

export interface RoadOptions {
  /** Where the node's filesystem is mounted ("" = this one). Paths below are the node's own. */
  hostRoot?: string;
  /** containerd's config.toml (default /etc/containerd/config.toml; absent is fine); null: none. */
  containerdConfig?: string | null;
  /** certs.d roots the user set explicitly (they win over config.toml's config_path); null: not set. */
  containerdConfigPath?: string[] | null;
  /** The kubelet's CredentialProviderConfig and the executables' directory. */
  providerConfig?: string | null;
  providerBinDir?: string | null;
  /** Where the proxy settings come from (default 'env': this process's own). */
  proxy?: ProxySourceMode;
  /** Read the proxy settings of this process (CLI --proxy-from-pid). */
  proxyPid?: number;
  /** The CRI socket (unix:///…). */
  criEndpoint?: string;
  /** Read the kubelet's node-wide docker config files (default true). */
  kubeletDockerConfig?: boolean;
  /** The CLI: a provider config the user named that cannot be read or parsed is a configuration error (exit 2). */
  strict?: boolean;
}

export interface Road {
  /** The parsed config.toml, null when there is none. */
  containerd: ContainerdConfig | null;
  /** certs.d roots (or the deprecated mirrors) containerd uses for registry hosts. */
  configPath: ConfigPathChoice;
  /** The kubelet's credential sources, in its order (the user's --docker-config is added by the chain, first). */
  credentials: Omit<CredentialSources, 'dockerConfigs'> & { dockerConfigs: Array<{ file: string; auths: DockerAuths }> };
  /** The proxy settings containerd pulls through; null: no proxy. */
  proxy: ProxyEnv | null;
  criEndpoint: string;
  /** What could not be read or used, each naming the file; never a secret. */
  problems: string[];
  /** containerd's CRI plugin does not load with this config.toml: every kubelet pull on the node fails. */
  criDisabled: string | null;
  /** The running containerd's version, read from its binary on first use (containerd-version.ts). */
  containerdVersion: () => ContainerdVersionResult;
}

export interface RoadCacheOptions {
  fs?: CacheFs;
  procFs?: ProcFs;
  procRoot?: string;
  /** This process's environment (proxy 'env' mode, provider exec env). */
  env?: Record<string, string | undefined>;
  /** Wall clock (epoch ms), for the provider cache and the road's own refresh. */
  wallNow?: () => number;
  /**
   * A road is built again at most this often for the same options (default 5 s):
   * the agent probes many targets a cycle, and finding containerd's process
   * scans /proc. Files changed in between are seen at the next build.
   */
  maxAgeMs?: number;
  /**
   * When no containerd process was found in /proc, /proc is searched again only after this long
   * (default 60 s): a search reads two files per process of the node, and a node without a visible
   * containerd (no hostPID, another runtime) stays that way. A containerd that starts later is
   * found within this time.
   */
  noContainerdRecheckMs?: number;
}

/** Road built once per change of its files; the provider plugins outlive loads while their config is unchanged. */
export class RoadCache {
  readonly #files: FileCache;
  readonly #opts: RoadCacheOptions;
  #providers: { key: string; loaded: LoadedCredentialProviders } | null = null;
  #containerd: { file: string; text: string; config: ContainerdConfig } | null = null;
  #last: { key: string; at: number; road: Road } | null = null;
  /** When a search of /proc last found no containerd (null: it was found). */
  #noContainerdAt: number | null = null;

  constructor(opts: RoadCacheOptions = {}) {
    this.#opts = opts;
    this.#files = new FileCache(opts.fs ? { fs: opts.fs } : {});
  }

  load(o: RoadOptions = {}): Road {
    const now = (this.#opts.wallNow ?? Date.now)();
    const key = JSON.stringify(o);
    const last = this.#last;
    if (last?.key === key && now - last.at >= 0 && now - last.at < (this.#opts.maxAgeMs ?? 5000)) return last.road;
    const road = this.#build(o, now);
    this.#last = { key, at: now, road };
    return road;
  }

  /** A file's text, or null when it does not exist; throws other read errors. */
  #read(path: string): string | null {
    if (!this.#files.exists(path)) return null;
    return this.#files.read(path);
  }

  #build(o: RoadOptions, now: number): Road {
    const hostRoot = normaliseRoot(o.hostRoot);
    const problems: string[] = [];

    // Paths in the options are as this process sees them (a host root already in front, as for resolv.conf).
    let containerd: ContainerdConfig | null = null;
    const ctrFile = o.containerdConfig === undefined ? `${hostRoot}${DEFAULT_CONTAINERD_CONFIG}` : o.containerdConfig;
    if (ctrFile !== null && ctrFile !== '') {
      try {
        const text = this.#read(ctrFile);
        if (text !== null) {
          if (this.#containerd?.file !== ctrFile || this.#containerd.text !== text)
            this.#containerd = { file: ctrFile, text, config: parseContainerdConfig(text, ctrFile) };
          containerd = this.#containerd.config;
        }
      } catch (err) {
        problems.push(`${ctrFile}: cannot read containerd's config (${codeOf(err)}); probing without its registry settings`);
      }
    }
    if (containerd) problems.push(...containerd.problems);
    const configPath = effectiveConfigPath(containerd, o.containerdConfigPath ?? null, hostRoot);
    // Which containerd runs, read from its binary when a registry's endpoints depend on it, and then
    // once (probe/endpoints.ts): finding containerd reads /proc, which most CLI runs never need.
    let pid: number | null | undefined;
    const containerdPid = (): number | null => (pid === undefined ? (pid = this.#containerdPid(now)) : pid);
    let version: ContainerdVersionResult | undefined;
    const runningVersion = (): ContainerdVersionResult => (version ??= containerdVersion(containerdPid(), this.#opts.procRoot ?? '/proc'));

    // The kubelet's own docker config file: node paths, under the host root.
    const dockerConfigs: Array<{ file: string; auths: DockerAuths }> = [];
    if (o.kubeletDockerConfig ?? true) {
      const found = readKubeletDockerConfig(kubeletDockerConfigPaths(), hostRoot);
      problems.push(...found.problems);
      if (found.found) dockerConfigs.push({ file: found.found.source, auths: found.found });
    }

    let providers: CredentialProviders | undefined;
    if (o.providerConfig) {
      const configFile = o.providerConfig;
      const binDir = o.providerBinDir ?? '';
      const key = `${configFile}\0${binDir}\0${this.#files.stamp(configFile)}`;
      if (this.#providers?.key !== key) {
        const deps = {
          ...(this.#opts.env ? { env: this.#opts.env } : {}),
          ...(this.#opts.wallNow ? { wallNow: this.#opts.wallNow } : {}),
        };
        const loaded = loadCredentialProviders({ configFile, binDir, hostRoot, strict: o.strict === true, deps });
        this.#providers = { key, loaded };
      }
      providers = this.#providers.loaded.providers;
      problems.push(...this.#providers.loaded.problems);
    }

    const proxied = this.#proxy(o, o.proxy === 'runtime' && o.proxyPid === undefined ? containerdPid() : null);
    problems.push(...proxied.problems);

    const cfg = containerd;
    return {
      containerd,
      configPath,
      credentials: {
        dockerConfigs,
        ...(providers ? { providers } : {}),
        ...(cfg?.ok ? { containerd: { auths: (host: string) => containerdAuth(cfg, host) } } : {}),
      },
      proxy: proxied.env,
      criEndpoint: o.criEndpoint ?? DEFAULT_CRI_ENDPOINT,
      problems,
      criDisabled: containerd?.criDisabled ?? null,
      containerdVersion: runningVersion,
    };
  }

  /**
   * containerd's pid (its proxy settings and its version are read through it). With hostPID the
   * container's /proc lists the node's processes: not under the host root. A search of /proc that
   * found none is not repeated for noContainerdRecheckMs.
   */
  #containerdPid(now: number): number | null {
    const missed = this.#noContainerdAt;
    if (missed !== null && now - missed >= 0 && now - missed < (this.#opts.noContainerdRecheckMs ?? 60_000)) return null;
    const pid = findContainerdPid(this.#opts.procRoot ?? '/proc', this.#opts.procFs ?? realProcFs);
    this.#noContainerdAt = pid === null ? now : null;
    return pid;
  }

  /** The proxy settings, with containerd's pid as looked up for this road. */
  #proxy(o: RoadOptions, containerdPid: number | null): LoadedProxyEnv {
    return loadProxyEnv(o.proxy ?? 'env', {
      ...(o.proxyPid !== undefined ? { pid: o.proxyPid } : {}),
      containerdPid,
      ...(this.#opts.procRoot !== undefined ? { procRoot: this.#opts.procRoot } : {}),
      ...(this.#opts.procFs ? { fs: this.#opts.procFs } : {}),
      ...(this.#opts.env ? { env: this.#opts.env } : {}),
    });
  }
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
