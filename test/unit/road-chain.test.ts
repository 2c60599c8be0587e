/**
 * The chain on the runtime's road (road.ts + probe/endpoints.ts + probe/road-steps.ts),
 * against a loopback Basic-auth registry and a node filesystem under a temporary host
 * root: which credential source the kubelet or containerd would use (and that the result
 * names it, never the secret), containerd's own config.toml auth, a credential-provider
 * plugin, a CRI plugin that config.toml disables, and `--pull` with no runtime listening.
 * The real CRI pulls are in test/lab/runtime-parity-lab.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeRegistry, DOCKER_MANIFEST } from '../support/fake-registry.js';
import { probeTarget } from '../../src/probe/chain.js';
import { loadEnvironment, type ProbeEnvironment } from '../../src/node-config/environment.js';
import { RoadCache, type RoadOptions } from '../../src/node-config/road.js';

const PASSWORD = 'canary-s3cret-7f3a';
const NOW = Date.parse('2026-11-29T12:00:00Z');
let ca: TestCA;
let leaf: CertPair;
let dir: string;
let reg: FakeRegistry;
let image: string;
let hostKey: string;

before(async () => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['registry.test'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-road-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  // A name, not 127.0.0.1: containerd talks plain http to a loopback address it finds in no config (hosts file → loopback).
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 registry.test\n');
  reg = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key }, auth: 'basic', users: { alice: PASSWORD } });
  reg.addRepo('team/app', { users: ['alice'] });
  reg.putManifest(
    'team/app',
    { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'a'.repeat(64)}` }, layers: [] },
    DOCKER_MANIFEST,
    'v1',
  );
  hostKey = `registry.test:${reg.port}`;
  image = `${hostKey}/team/app:v1`;
});
after(async () => {
  await reg.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A fresh host root holding `files` (node paths → text). */
function hostRoot(files: Record<string, string>): string {
  const root = join(dir, `root-${n++}`);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function envFor(root: string, road: RoadOptions = {}): ProbeEnvironment {
  const env = loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: join(dir, 'hosts'),
    caFiles: [join(dir, 'ca.crt')],
    containerdConfigPath: [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
  env.road = new RoadCache({ wallNow: () => NOW, env: { PATH: process.env['PATH'] } }).load({
    hostRoot: root,
    proxy: 'none',
    criEndpoint: `unix://${join(dir, 'no-runtime.sock')}`,
    ...road,
  });
  return env;
}

const v2Auth = (user: string, password: string): string =>
  [
    'version = 2',
    `[plugins."io.containerd.grpc.v1.cri".registry.configs."${hostKey}".auth]`,
    `  username = "${user}"`,
    `  password = "${password}"`,
  ].join('\n');

const dockerConfig = (user: string, password: string): string =>
  JSON.stringify({ auths: { [hostKey]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });

describe('credentials on the runtime road', () => {
  test('none anywhere: auth_required, credentials null', async () => {
    const r = await probeTarget(image, envFor(hostRoot({})), { timeoutMs: 5000 });
    assert.equal(r.reason, 'auth_required', JSON.stringify(r.steps));
    assert.equal(r.credentials, null);
    assert.equal(r.proxy, null);
  });

  test("only containerd's config.toml registry.configs auth: ok, and the result names config.toml", async () => {
    const root = hostRoot({ '/etc/containerd/config.toml': v2Auth('alice', PASSWORD) });
    const r = await probeTarget(image, envFor(root), { timeoutMs: 5000 });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.credentials, { source: 'containerd-config', name: join(root, '/etc/containerd/config.toml'), expiresAt: null });
    assert.ok(!JSON.stringify(r).includes(PASSWORD));
  });

  test("the kubelet's node docker config comes before containerd's own (which is then never used)", async () => {
    const root = hostRoot({
      '/etc/containerd/config.toml': v2Auth('alice', 'wrong-password'),
      '/var/lib/kubelet/config.json': dockerConfig('alice', PASSWORD),
    });
    const r = await probeTarget(image, envFor(root), { timeoutMs: 5000 });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.credentials, { source: 'docker-config', name: '/var/lib/kubelet/config.json', expiresAt: null });
    // And the other way round: a wrong keyring credential is what the pull gets, so the registry refuses it.
    const wrong = hostRoot({
      '/etc/containerd/config.toml': v2Auth('alice', PASSWORD),
      '/var/lib/kubelet/config.json': dockerConfig('alice', 'wrong-password'),
    });
    const w = await probeTarget(image, envFor(wrong), { timeoutMs: 5000 });
    assert.equal(w.reason, 'auth_rejected', JSON.stringify(w.steps));
    assert.equal(w.credentials?.source, 'docker-config');
  });

  test('a credential-provider plugin: its credentials, its name, and when they expire (its cacheDuration)', async () => {
    const answer = JSON.stringify({
      apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      kind: 'CredentialProviderResponse',
      cacheKeyType: 'Registry',
      cacheDuration: '1h',
      auth: { [hostKey]: { username: 'alice', password: PASSWORD } },
    });
    const root = hostRoot({
      '/etc/kubernetes/providers.yaml': [
        'apiVersion: kubelet.config.k8s.io/v1',
        'kind: CredentialProviderConfig',
        'providers:',
        '  - name: lab-provider',
        `    matchImages: ["${hostKey}"]`,
        '    defaultCacheDuration: 10m',
        '    apiVersion: credentialprovider.kubelet.k8s.io/v1',
      ].join('\n'),
      '/usr/libexec/providers/lab-provider': `#!/bin/sh\ncat >/dev/null\nprintf '%s' '${answer}'\n`,
    });
    chmodSync(join(root, '/usr/libexec/providers/lab-provider'), 0o755);
    const env = envFor(root, {
      providerConfig: join(root, '/etc/kubernetes/providers.yaml'),
      providerBinDir: join(root, '/usr/libexec/providers'),
    });
    const r = await probeTarget(image, env, { timeoutMs: 5000 });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.credentials, {
      source: 'credential-provider',
      name: 'lab-provider',
      expiresAt: new Date(NOW + 3_600_000).toISOString().replace('.000Z', 'Z'),
    });
    assert.ok(!JSON.stringify(r).includes(PASSWORD));
  });

  test('a hanging plugin: the probe does not spend its deadline on it — no credentials, the plugin named, as the kubelet ends up', async () => {
    const root = hostRoot({
      '/etc/kubernetes/providers.yaml': [
        'apiVersion: kubelet.config.k8s.io/v1',
        'kind: CredentialProviderConfig',
        'providers:',
        '  - name: lab-hanging',
        `    matchImages: ["${hostKey}"]`,
        '    defaultCacheDuration: 10m',
        '    apiVersion: credentialprovider.kubelet.k8s.io/v1',
      ].join('\n'),
      '/usr/libexec/providers/lab-hanging': '#!/bin/sh\nexec sleep 600\n',
    });
    chmodSync(join(root, '/usr/libexec/providers/lab-hanging'), 0o755);
    const env = envFor(root, {
      providerConfig: join(root, '/etc/kubernetes/providers.yaml'),
      providerBinDir: join(root, '/usr/libexec/providers'),
    });
    const r = await probeTarget(image, env, { timeoutMs: 1500 });
    assert.equal(r.reason, 'auth_required', JSON.stringify(r));
    assert.equal(r.credentials, null);
    assert.match(r.message ?? '', /lab-hanging/);
  });
});

describe('the runtime step', () => {
  test('--pull with no runtime on the socket: the path is fine, the verdict is the runtime (cause node)', async () => {
    const r = await probeTarget(image, envFor(hostRoot({ '/var/lib/kubelet/config.json': dockerConfig('alice', PASSWORD) })), {
      timeoutMs: 5000,
      pull: true,
    });
    const last = r.steps.at(-1);
    assert.equal(last?.stage, 'runtime');
    assert.equal(r.reason, 'runtime_unavailable', JSON.stringify(r));
    assert.equal(r.cause, 'node');
    assert.match(r.message ?? '', /no CRI socket/);
    assert.ok(r.steps.filter((s) => s.stage !== 'runtime').every((s) => s.ok));
  });

  test('a config.toml that disables the CRI plugin fails the probe loudly, without --pull', async () => {
    const root = hostRoot({
      '/etc/containerd/config.toml': [
        'version = 2',
        '[plugins."io.containerd.grpc.v1.cri".registry]',
        '  config_path = "/etc/containerd/certs.d"',
        '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]',
        '  endpoint = ["https://mirror.example"]',
      ].join('\n'),
      '/var/lib/kubelet/config.json': dockerConfig('alice', PASSWORD),
    });
    const r = await probeTarget(image, envFor(root), { timeoutMs: 5000 });
    assert.equal(r.ok, false);
    assert.equal(r.stage, 'runtime');
    assert.equal(r.reason, 'runtime_unavailable');
    assert.match(r.message ?? '', /config\.toml/);
    assert.match(r.message ?? '', /mirrors/);
  });
});
