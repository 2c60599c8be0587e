import { parseArgs } from 'node:util';
import { loadEnvironment, type StrictFile } from '../node-config/environment.js';
import { probeTargets } from '../probe/chain.js';
import { normaliseRoot } from '../node-config/host-root.js';
import { parsePlatform } from '../model/platform.js';
import { parseDuration } from '../shared/duration.js';
import { formatHuman } from '../output/format-human.js';
import { DEFAULT_CONFIG_PATH } from '../node-config/hosts-toml.js';
import { UsageError, useColor, type Io } from './io.js';
import { DEFAULT_CRI_ENDPOINT, RoadCache, type RoadOptions } from '../node-config/road.js';

interface RoadFlags {
  'containerd-config-path'?: string | undefined;
  'containerd-config'?: string | undefined;
  'credential-provider-config'?: string | undefined;
  'credential-provider-bin-dir'?: string | undefined;
  'proxy-from-pid'?: string | undefined;
  'no-proxy'?: boolean | undefined;
  'cri-endpoint'?: string | undefined;
}

/** The runtime-road flags (design.md, second round), checked: a usage error names the flag. */
function roadOptions(v: RoadFlags): RoadOptions {
  const o: RoadOptions = { strict: true, proxy: 'env' };
  if (v['containerd-config-path'] !== undefined) o.containerdConfigPath = v['containerd-config-path'].split(':').filter((d) => d !== '');
  if (v['containerd-config'] !== undefined) o.containerdConfig = v['containerd-config'] === '' ? null : v['containerd-config'];
  const providerConfig = v['credential-provider-config'];
  const binDir = v['credential-provider-bin-dir'];
  if ((providerConfig === undefined) !== (binDir === undefined))
    throw new UsageError('--credential-provider-config and --credential-provider-bin-dir go together (the kubelet needs both)');
  if (providerConfig !== undefined && binDir !== undefined) {
    o.providerConfig = providerConfig;
    o.providerBinDir = binDir;
  }
  const pid = v['proxy-from-pid'];
  if (pid !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(pid)) throw new UsageError(`--proxy-from-pid: expected a process id, got "${pid}"`);
    if (v['no-proxy'] === true) throw new UsageError('--proxy-from-pid and --no-proxy contradict each other');
    o.proxyPid = Number(pid);
  }
  if (v['no-proxy'] === true) o.proxy = 'none';
  const endpoint = v['cri-endpoint'] ?? DEFAULT_CRI_ENDPOINT;
  if (!/^unix:\/\/\/./.test(endpoint) && !endpoint.startsWith('/'))
    throw new UsageError(`--cri-endpoint: expected a unix socket like unix:///run/containerd/containerd.sock, got "${endpoint}"`);
  o.criEndpoint = endpoint;
  return o;
}

export async function runProbeCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '10s' },
      // No parseArgs defaults: a file the user names must be readable (exit 2),
      // while the node's own default files that are unreadable are reported in the result.
      'resolv-conf': { type: 'string' },
      hosts: { type: 'string' },
      'host-root': { type: 'string', default: '' },
      'ca-file': { type: 'string', multiple: true, default: [] },
      'docker-config': { type: 'string' },
      // No default: a path given explicitly wins over config.toml's config_path.
      'containerd-config-path': { type: 'string' },
      'containerd-config': { type: 'string' },
      'credential-provider-config': { type: 'string' },
      'credential-provider-bin-dir': { type: 'string' },
      'proxy-from-pid': { type: 'string' },
      'no-proxy': { type: 'boolean', default: false },
      'cri-endpoint': { type: 'string', default: DEFAULT_CRI_ENDPOINT },
      pull: { type: 'boolean', default: false },
      platform: { type: 'string' },
      concurrency: { type: 'string', default: '4' },
    },
  });
  if (positionals.length === 0) throw new UsageError('probe: no TARGET given', true);
  const timeoutMs = parseDuration(values.timeout);
  if (timeoutMs === null || timeoutMs <= 0) throw new UsageError(`--timeout: bad duration "${values.timeout}" (use e.g. 10s, 1500ms, 1m)`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`--concurrency: must be a positive integer, got "${values.concurrency}"`);
  let platform;
  if (values.platform !== undefined) {
    platform = parsePlatform(values.platform);
    if (!platform) throw new UsageError(`--platform: expected OS/ARCH[/VARIANT], got "${values.platform}"`);
  }
  const road = roadOptions(values);
  const strict: StrictFile[] = ['caFiles', 'dockerConfig'];
  if (values['resolv-conf'] !== undefined) strict.push('resolvConf');
  if (values.hosts !== undefined) strict.push('hosts');
  const hostRoot = normaliseRoot(values['host-root']);
  const env = loadEnvironment({
    resolvConfPath: values['resolv-conf'] ?? `${hostRoot}/etc/resolv.conf`,
    hostsPath: values.hosts ?? `${hostRoot}/etc/hosts`,
    hostRoot,
    strict,
    caFiles: values['ca-file'],
    dockerConfigPath: values['docker-config'] ?? null,
    containerdConfigPath: (values['containerd-config-path'] ?? DEFAULT_CONFIG_PATH).split(':').filter((d) => d !== ''),
    ...(platform ? { platform } : {}),
  });
  env.road = new RoadCache().load({ ...road, hostRoot });
  const results = await probeTargets(positionals, env, { timeoutMs, ...(values.pull ? { pull: true } : {}) }, concurrency);
  if (values.json) io.stdout(JSON.stringify(results, null, 2) + '\n');
  else io.stdout(formatHuman(results, { color: useColor(io) }));
  return results.every((r) => r.ok) ? 0 : 1;
}
