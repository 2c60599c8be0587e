import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigHolder, loadConfig, parseConfig, type AgentConfig, type ConfigResult } from '../../src/agent/config.js';
import { formatDuration, parseDuration } from '../../src/shared/duration.js';

const FIXTURES = new URL('../fixtures/config/', import.meta.url);
const ENV = { hostname: 'host-1' };

function fixture(name: string): ConfigResult {
  return parseConfig(readFileSync(new URL(name, FIXTURES), 'utf8'), name, ENV);
}

function errorsOf(r: ConfigResult): string[] {
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.errors;
}

test('duration: Go syntax', () => {
  assert.equal(parseDuration('60s'), 60_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('2h45m10s'), 9_910_000);
  assert.equal(parseDuration('1500us'), 1.5);
  assert.equal(parseDuration('-1s'), -1000);
  for (const bad of ['60', '0', '', 's', '5x', '1m30', '1.5.3s', 'm5', '1 m', '--1s', '1S']) {
    assert.equal(parseDuration(bad), null, bad);
  }
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(500), '500ms');
  assert.equal(formatDuration(3_600_000), '1h');
});

test('valid full fixture parses into the exact config', () => {
  const r = fixture('valid-full.yaml');
  assert.ok(r.ok, JSON.stringify(r));
  const expected: AgentConfig = {
    listen: { host: '127.0.0.1', port: 9900 },
    intervalMs: 120_000,
    timeoutMs: 15_000,
    jitter: 0.25,
    concurrency: 4,
    node: 'node-a.lab.test',
    subnet: '10.231.1.0/24',
    logLevel: 'debug',
    targets: [
      { target: 'registry.lab.test/app/api:v2.5.1', kind: 'image', intervalMs: 120_000, timeoutMs: 15_000, jitter: 0.25 },
      { target: 'nginx', kind: 'image', intervalMs: 90_000, timeoutMs: 5_000, jitter: 0.25, pull: true },
      { target: 'ghcr.io', kind: 'registry', intervalMs: 30_000, timeoutMs: 15_000, jitter: 0 },
      {
        target: 'registry.lab.test:5000/team/tool@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        kind: 'image',
        intervalMs: 120_000,
        timeoutMs: 15_000,
        jitter: 0.25,
      },
    ],
    dns: { resolvConf: '/host/etc/resolv.conf', hosts: '/host/etc/hosts' },
    tls: { caFiles: ['/etc/pullprobe/ca/lab.crt', '/etc/pullprobe/ca/proxy.crt'] },
    credentials: {
      dockerConfig: '/etc/pullprobe/docker/config.json',
      providerConfig: '/host/etc/kubernetes/credential-providers.yaml',
      providerBinDir: '/host/usr/libexec/kubernetes/credential-providers',
    },
    containerd: {
      configPath: ['/host/etc/containerd/certs.d', '/host/etc/docker/certs.d'],
      configPathSet: true,
      config: '/host/etc/containerd/config.toml',
    },
    runtime: { endpoint: 'unix:///host/run/containerd/containerd.sock', proxy: 'env' },
    outputs: { annotation: true, condition: false, events: false, heartbeatMs: 300_000 },
  };
  assert.deepEqual(r.config, expected);
});

test('minimal fixture gets the documented defaults', () => {
  const r = fixture('valid-minimal.yaml');
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.config, {
    listen: { host: '', port: 9808 },
    intervalMs: 60_000,
    timeoutMs: 10_000,
    jitter: 0.1,
    concurrency: 8,
    node: 'host-1',
    subnet: null,
    logLevel: 'info',
    targets: [
      { target: 'registry.example.com/team/app:v1.2.3', kind: 'image', intervalMs: 60_000, timeoutMs: 10_000, jitter: 0.1 },
      { target: 'ghcr.io', kind: 'registry', intervalMs: 30_000, timeoutMs: 10_000, jitter: 0.1 },
    ],
    dns: { resolvConf: '/etc/resolv.conf', hosts: '/etc/hosts' },
    tls: { caFiles: [] },
    credentials: { dockerConfig: null, providerConfig: null, providerBinDir: null },
    containerd: {
      configPath: ['/etc/containerd/certs.d', '/etc/docker/certs.d'],
      configPathSet: false,
      config: '/etc/containerd/config.toml',
    },
    runtime: { endpoint: 'unix:///run/containerd/containerd.sock', proxy: 'runtime' },
    outputs: { annotation: true, condition: true, events: true, heartbeatMs: 600_000 },
  } satisfies AgentConfig);
});

/** fixture → the path prefix of its one error. */
const REJECTED: Record<string, string> = {
  'unknown-key.yaml': 'intervall',
  'unknown-key-nested.yaml': 'outputs.foo',
  'unknown-key-target.yaml': 'targets[1].tag',
  'bad-duration.yaml': 'interval',
  'duration-without-unit.yaml': 'timeout',
  'target-bad-duration.yaml': 'targets[1].interval',
  'interval-too-short.yaml': 'interval',
  'bad-heartbeat.yaml': 'outputs.heartbeat',
  'bad-image.yaml': 'targets[2].image',
  'bad-tag.yaml': 'targets[0].image',
  'image-is-registry.yaml': 'targets[0].image',
  'registry-is-image.yaml': 'targets[0].registry',
  'bad-registry.yaml': 'targets[0].registry',
  'both-image-registry.yaml': 'targets[0]',
  'neither-image-registry.yaml': 'targets[0]',
  'target-not-mapping.yaml': 'targets[0]',
  'no-targets.yaml': 'targets',
  'empty-targets.yaml': 'targets',
  'targets-not-list.yaml': 'targets',
  'duplicate-target.yaml': 'targets[1].image',
  'duplicate-registry.yaml': 'targets[1].registry',
  'jitter-range.yaml': 'jitter',
  'target-jitter-range.yaml': 'targets[0].jitter',
  'jitter-type.yaml': 'jitter',
  'concurrency-zero.yaml': 'concurrency',
  'concurrency-type.yaml': 'concurrency',
  'concurrency-fraction.yaml': 'concurrency',
  'timeout-exceeds-interval.yaml': 'timeout',
  'target-timeout-exceeds-interval.yaml': 'targets[0].timeout',
  'target-interval-below-timeout.yaml': 'targets[0].interval',
  'bad-port.yaml': 'listen',
  'bad-listen.yaml': 'listen',
  'listen-type.yaml': 'listen',
  'bad-subnet.yaml': 'subnet',
  'bad-log-level.yaml': 'logLevel',
  'bool-type.yaml': 'outputs.events',
  'section-type.yaml': 'dns',
  'ca-files-type.yaml': 'tls.caFiles',
  'ca-files-entry.yaml': 'tls.caFiles[1]',
  'docker-config-type.yaml': 'credentials.dockerConfig',
  'top-level-list.yaml': 'top-level-list.yaml',
  'pull-on-registry.yaml': 'targets[0].pull',
  'pull-type.yaml': 'targets[0].pull',
  'bad-proxy-mode.yaml': 'runtime.proxy',
  'bad-cri-endpoint.yaml': 'runtime.endpoint',
  'provider-without-bin-dir.yaml': 'credentials.providerBinDir',
};

for (const [name, path] of Object.entries(REJECTED)) {
  test(`rejects ${name} with one error at ${path}`, () => {
    const errors = errorsOf(fixture(name));
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.ok(errors[0]?.startsWith(`${path}: `), errors[0]);
  });
}

test('YAML syntax errors name source:line:col', () => {
  for (const [name, line] of [
    ['syntax-error.yaml', 3],
    ['duplicate-key.yaml', 4],
  ] as const) {
    const errors = errorsOf(fixture(name));
    assert.ok(errors.length >= 1);
    assert.match(errors[0] ?? '', new RegExp(`^${name.replace('.', '\\.')}:${line}:\\d+: `), errors[0]);
  }
});

test('an unresolved YAML tag is an error, not silently a string', () => {
  const errors = errorsOf(parseConfig('node: !secret x\ntargets:\n  - image: nginx\n', 'c.yaml', ENV));
  assert.match(errors[0] ?? '', /^c\.yaml:1:7: /);
});

test('every error is reported, not just the first', () => {
  const errors = errorsOf(fixture('multiple-errors.yaml'));
  const prefixes = ['interval', 'jitter', 'concurrency', 'targets[1].image', 'targets[2].timeout', 'outputs.foo'];
  for (const p of prefixes)
    assert.ok(
      errors.some((e) => e.startsWith(`${p}: `)),
      `${p} missing in:\n${errors.join('\n')}`,
    );
  assert.equal(errors.length, prefixes.length, errors.join('\n'));
});

test('an unknown key names the likely intended key', () => {
  const errors = errorsOf(parseConfig('targets:\n  - image: nginx\ndns:\n  resolv_conf: /x\n', 'c', ENV));
  assert.deepEqual(
    errors.map((e) => e.split(':')[0]),
    ['dns.resolv_conf'],
  );
  assert.ok(errors[0]?.includes('"resolvConf"'));
});

test('node: config value, else NODE_NAME, else hostname', () => {
  const base = 'targets:\n  - image: nginx\n';
  const node = (text: string, env: Parameters<typeof parseConfig>[2]): string => {
    const r = parseConfig(text, 'c', env);
    assert.ok(r.ok, JSON.stringify(r));
    return r.config.node;
  };
  assert.equal(node(base, { hostname: 'h' }), 'h');
  assert.equal(node(base, { hostname: 'h', NODE_NAME: '' }), 'h');
  assert.equal(node(base, { hostname: 'h', NODE_NAME: 'n1' }), 'n1');
  assert.equal(node(`node: pinned\n${base}`, { hostname: 'h', NODE_NAME: 'n1' }), 'pinned');
  assert.equal(node(`node: ""\n${base}`, { hostname: 'h', NODE_NAME: 'n1' }), 'n1');
});

test('LOG_LEVEL overrides logLevel; a bad LOG_LEVEL is an error', () => {
  const text = 'logLevel: warn\ntargets:\n  - image: nginx\n';
  const r = parseConfig(text, 'c', { hostname: 'h', LOG_LEVEL: 'trace' });
  assert.ok(r.ok);
  assert.equal(r.config.logLevel, 'trace');
  const errors = errorsOf(parseConfig(text, 'c', { hostname: 'h', LOG_LEVEL: 'chatty' }));
  assert.equal(errors.length, 1);
  assert.ok(errors[0]?.startsWith('LOG_LEVEL'));
});

test('listen forms: :port, host:port, [v6]:port', () => {
  const listen = (s: string): AgentConfig['listen'] => {
    const r = parseConfig(`listen: "${s}"\ntargets:\n  - image: nginx\n`, 'c', ENV);
    assert.ok(r.ok, JSON.stringify(r));
    return r.config.listen;
  };
  assert.deepEqual(listen(':1'), { host: '', port: 1 });
  assert.deepEqual(listen('0.0.0.0:65535'), { host: '0.0.0.0', port: 65535 });
  assert.deepEqual(listen('[::1]:9808'), { host: '::1', port: 9808 });
  assert.equal(errorsOf(parseConfig('listen: ":0"\ntargets:\n  - image: nginx\n', 'c', ENV)).length, 1);
  assert.equal(errorsOf(parseConfig('listen: "[nope]:80"\ntargets:\n  - image: nginx\n', 'c', ENV)).length, 1);
});

test('empty sections and null values fall back to defaults', () => {
  const r = parseConfig('dns:\ntls:\noutputs:\nsubnet:\ncredentials:\n  dockerConfig: ""\ntargets:\n  - image: nginx\n', 'c', ENV);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.config.dns.resolvConf, '/etc/resolv.conf');
  assert.equal(r.config.subnet, null);
  assert.equal(r.config.credentials.dockerConfig, null);
  assert.equal(r.config.outputs.events, true);
});

test('loadConfig: a missing file is one error naming the path and code', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pullprobe-config-'));
  try {
    const missing = join(dir, 'nope.yaml');
    const r = await loadConfig(missing, { env: ENV });
    assert.deepEqual(errorsOf(r), [`${missing}: cannot read: ENOENT`]);
    const good = join(dir, 'config.yaml');
    await writeFile(good, 'targets:\n  - image: nginx\n');
    const ok = await loadConfig(good, { env: ENV });
    assert.ok(ok.ok);
    const bad = await loadConfig(good, { env: ENV, readFile: () => Promise.resolve('interval: 1y\ntargets: []\n') });
    assert.equal(errorsOf(bad).length, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('ConfigHolder.reload keeps the old config when the new one is invalid', async () => {
  let text = 'targets:\n  - image: nginx\n';
  const opts = { env: ENV, readFile: () => Promise.resolve(text) };
  const first = await loadConfig('/cfg.yaml', opts);
  assert.ok(first.ok);
  const holder = new ConfigHolder('/cfg.yaml', first.config, opts);

  const same = await holder.reload();
  assert.ok(same.ok);
  assert.equal(same.changed, false);

  text = 'interval: nope\ntargets:\n  - image: nginx\n';
  const bad = await holder.reload();
  assert.equal(bad.ok, false);
  assert.ok(bad.errors[0]?.startsWith('interval: '));
  assert.equal(holder.current, first.config);
  assert.equal(bad.config, first.config);

  text = 'interval: 30s\ntargets:\n  - image: nginx\n';
  const good = await holder.reload();
  assert.ok(good.ok);
  assert.equal(good.changed, true);
  assert.equal(holder.current.intervalMs, 30_000);
});
