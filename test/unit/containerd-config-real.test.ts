/**
 * parseContainerdConfig against the machine's real containerd (Debian's 1.6.20, installed for
 * the lab): `containerd config dump` for what it reads from each file shape (and which files
 * stop it from starting), and a real start-up for which files leave it without its CRI plugin.
 * No network: containerd runs with its root, state, sockets and opt directory in a temporary
 * directory, no CNI, and is stopped (SIGTERM to its own pid) as soon as it has booted.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { parseContainerdConfig } from '../../src/node-config/containerd-config.js';

const CONTAINERD = '/usr/bin/containerd';
const V2 = 'plugins."io.containerd.grpc.v1.cri".registry';
const dir = mkdtempSync(join(tmpdir(), 'pullprobe-containerd-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const lines = (...ls: string[]): string => `${ls.join('\n')}\n`;

type Table = Record<string, unknown>;
const table = (v: unknown): Table => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Table) : {});

/** What containerd's own dump says the CRI registry settings are, or null when it refuses the file. */
function dump(name: string, text: string): { configPath: string; mirrors: Record<string, unknown>; authHosts: string[] } | null {
  const file = join(dir, `${name}.toml`);
  writeFileSync(file, text);
  const r = spawnSync(CONTAINERD, ['--config', file, 'config', 'dump'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.error, undefined, `${CONTAINERD} config dump could not run`);
  if (r.status !== 0) return null;
  const reg = table(table(table(table(parse(r.stdout))['plugins'])['io.containerd.grpc.v1.cri'])['registry']);
  const mirrors = Object.fromEntries(Object.entries(table(reg['mirrors'])).map(([k, v]) => [k, table(v)['endpoint']]));
  const authHosts = Object.entries(table(reg['configs']))
    .filter(([, v]) => table(v)['auth'] !== undefined)
    .map(([k]) => k);
  return { configPath: typeof reg['config_path'] === 'string' ? reg['config_path'] : '', mirrors, authHosts };
}

describe('containerd 1.6.20 `config dump` reads what parseContainerdConfig reads', () => {
  const cases: Array<[string, string]> = [
    [
      'v1-short-key',
      lines(
        '[plugins.cri.registry]',
        '  config_path = "/v1"',
        '[plugins.cri.registry.mirrors."docker.io"]',
        '  endpoint = ["https://m.test"]',
      ),
    ],
    ['v1-long-key-ignored', lines(`[${V2}]`, '  config_path = "/long"')],
    [
      'v2',
      lines(
        'version = 2',
        `[${V2}]`,
        '  config_path = "/a:/b"',
        `[${V2}.configs."r.test".auth]`,
        '  username = "u"',
        `[${V2}.mirrors."*"]`,
        '  endpoint = ["https://w.test"]',
      ),
    ],
    ['v2-short-key-refused', lines('version = 2', '[plugins.cri.registry]', '  config_path = "/short"')],
    ['v3-unknown-to-1.6', lines('version = 3', '[plugins."io.containerd.cri.v1.images".registry]', '  config_path = "/v3"')],
    ['wrong-type-config-path', lines('version = 2', `[${V2}]`, '  config_path = 5')],
    ['wrong-type-endpoint', lines('version = 2', `[${V2}.mirrors."docker.io"]`, '  endpoint = "https://m.test"')],
    ['wrong-type-header', lines('version = 2', `[${V2}.headers]`, '  X-One = "a"')],
    ['wrong-type-skip-verify', lines('version = 2', `[${V2}.configs."r".tls]`, '  insecure_skip_verify = "yes"')],
    ['bad-toml', lines('version = 2', `[${V2}`, '  config_path = "/x"')],
  ];
  for (const [name, text] of cases) {
    it(name, () => {
      const real = dump(name, text);
      const ours = parseContainerdConfig(text, `${name}.toml`);
      const refused = ours.problems.filter((p) => /does not start with this file/.test(p));
      if (real === null) {
        assert.equal(refused.length, 1, `containerd refuses ${name}; pullprobe says: ${ours.problems.join(' | ')}`);
        return;
      }
      assert.deepEqual(refused, [], `containerd accepts ${name}`);
      if (ours.version === 3) {
        // containerd 1.x does not know version 3 and reads nothing from it; containerd 2.x does.
        assert.equal(real.configPath, '');
        assert.deepEqual(ours.configPath, ['/v3']);
        return;
      }
      assert.deepEqual(ours.configPath ?? [], real.configPath === '' ? [] : real.configPath.split(':'));
      assert.deepEqual(ours.mirrors, real.mirrors);
      assert.deepEqual(
        Object.keys(ours.configs).filter((h) => ours.configs[h]?.auth !== undefined),
        real.authHosts,
      );
    });
  }
});

/** Start containerd on `registry` settings, wait until it has booted (or exited), stop it; its log. */
async function boot(name: string, registry: string): Promise<string> {
  const base = join(dir, name);
  const config = join(base, 'config.toml');
  mkdirSync(base, { recursive: true });
  writeFileSync(
    config,
    lines(
      'version = 2',
      `root = "${base}/root"`,
      `state = "${base}/state"`,
      'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",',
      '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.overlayfs"]',
      `[grpc]`,
      `  address = "${base}/c.sock"`,
      `[ttrpc]`,
      `  address = "${base}/c.sock.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${base}/opt"`,
      '[plugins."io.containerd.grpc.v1.cri".containerd]',
      '  snapshotter = "native"',
      '[plugins."io.containerd.grpc.v1.cri".cni]',
      `  bin_dir = "${base}/cni-bin"`,
      `  conf_dir = "${base}/cni-conf"`,
      registry,
    ),
  );
  const child = spawn(CONTAINERD, ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
  let log = '';
  await new Promise<void>((resolve) => {
    const guard = setTimeout(resolve, 20_000);
    const done = (): void => {
      clearTimeout(guard);
      resolve();
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      log += d;
      if (log.includes('containerd successfully booted')) done();
    });
    child.on('exit', done);
  });
  if (child.exitCode === null && child.pid !== undefined) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  assert.match(log, /containerd successfully booted/, `${name}: containerd did not boot:\n${log.slice(-2000)}`);
  return log;
}

describe('containerd 1.6.20 start-up: criDisabled exactly when the CRI plugin does not load', () => {
  const cases: Array<[string, string]> = [
    [
      'mirrors-with-config-path',
      lines(`[${V2}]`, '  config_path = "/c"', `[${V2}.mirrors."docker.io"]`, '  endpoint = ["https://m.test"]'),
    ],
    ['tls-with-config-path', lines(`[${V2}]`, '  config_path = "/c"', `[${V2}.configs."r.test".tls]`)],
    ['auth-with-config-path', lines(`[${V2}]`, '  config_path = "/c"', `[${V2}.configs."r.test".auth]`, '  username = "u"')],
  ];
  for (const [name, registry] of cases) {
    it(name, async () => {
      const log = await boot(name, registry);
      const failed = /failed to load plugin io\.containerd\.grpc\.v1\.cri" error="invalid plugin config: ([^"]+)"/.exec(log);
      const ours = parseContainerdConfig(lines('version = 2', registry), `${name}.toml`);
      if (failed) {
        assert.ok(ours.criDisabled, `containerd: ${failed[1]}`);
        assert.ok(ours.criDisabled.includes(failed[1] ?? '?'), ours.criDisabled);
      } else {
        assert.match(log, /Start cri plugin with config/);
        assert.equal(ours.criDisabled, null);
      }
    });
  }
});
