import { parseArgs } from 'node:util';
import { loadEnvironment, type StrictFile } from '../node-config/environment.js';
import { probeTargets } from '../probe/chain.js';
import { normaliseRoot } from '../node-config/host-root.js';
import { parsePlatform } from '../model/platform.js';
import { parseDuration } from '../shared/duration.js';
import { formatHuman } from '../output/format-human.js';
import { DEFAULT_CONFIG_PATH } from '../node-config/hosts-toml.js';
import { UsageError, useColor, type Io } from './io.js';

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
      'containerd-config-path': { type: 'string', default: DEFAULT_CONFIG_PATH },
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
    containerdConfigPath: values['containerd-config-path'].split(':').filter((d) => d !== ''),
    ...(platform ? { platform } : {}),
  });
  const results = await probeTargets(positionals, env, { timeoutMs }, concurrency);
  if (values.json) io.stdout(JSON.stringify(results, null, 2) + '\n');
  else io.stdout(formatHuman(results, { color: useColor(io) }));
  return results.every((r) => r.ok) ? 0 : 1;
}
