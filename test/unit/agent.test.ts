/**
 * The agent process wired together, outside a cluster, against loopback
 * registries on IP-literal hosts: startup validation, probing, reload that
 * keeps the old config when the new one is invalid, logs without secrets,
 * and a clean stop. The in-cluster path runs in test/lab/agent-lab.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeRegistry, DOCKER_MANIFEST } from '../support/fake-registry.js';
import { Agent } from '../../src/agent/agent.js';
import { within } from '../support/within.js';

const CANARY = 'canary-Secret-9f1c2e';
let ca: TestCA;
let leaf: CertPair;
let dir: string;
let reg: FakeRegistry;
const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    logLines.push(String(chunk));
    cb();
  },
});
const log = pino({ level: 'debug' }, sink);

before(async () => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-agent-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  reg = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key }, auth: 'basic', users: { alice: CANARY } });
  reg.addRepo('team/app', { users: ['alice'] });
  reg.putManifest(
    'team/app',
    { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'c'.repeat(64)}` }, layers: [] },
    DOCKER_MANIFEST,
    'v1',
  );
  const auth = Buffer.from(`alice:${CANARY}`).toString('base64');
  writeFileSync(join(dir, 'docker.json'), JSON.stringify({ auths: { [`127.0.0.1:${reg.port}`]: { auth } } }));
});
after(async () => {
  await reg.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await within(new Promise<void>((r) => s.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
  const port = (s.address() as { port: number }).port;
  await within(new Promise<void>((r) => s.close(() => r())), 5000, 'the server to close');
  return port;
}

function config(port: number, targets: string[], extra = ''): string {
  return [
    `listen: "127.0.0.1:${port}"`,
    'interval: 1s',
    'timeout: 900ms',
    'jitter: 0',
    'targets:',
    ...targets,
    'dns:',
    `  resolvConf: ${join(dir, 'resolv.conf')}`,
    `  hosts: ${join(dir, 'hosts')}`,
    'tls:',
    `  caFiles: [${join(dir, 'ca.crt')}]`,
    'credentials:',
    `  dockerConfig: ${join(dir, 'docker.json')}`,
    'containerd:',
    '  configPath: ""',
    extra,
    '',
  ].join('\n');
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const inClusterOff = { env: {} as Record<string, string | undefined> };

test('a config with errors: every error named by its path, nothing probed', async () => {
  const path = join(dir, 'bad.yaml');
  writeFileSync(
    path,
    config(await freePort(), ['  - image: 127.0.0.1:1/Team/App:v1', '  - registry: ghcr.io', '    interval: 5x'], 'colour: blue'),
  );
  const before = reg.requests.length;
  const r = await Agent.start({ configPath: path, env: { hostname: 'n1' }, processEnv: {}, inCluster: inClusterOff, log });
  assert.equal(r.ok, false);
  assert.ok(
    r.errors.some((e) => e.startsWith('targets[0].image:')),
    r.errors.join('\n'),
  );
  assert.ok(
    r.errors.some((e) => e.startsWith('targets[1].interval:')),
    r.errors.join('\n'),
  );
  assert.ok(
    r.errors.some((e) => e.startsWith('colour:')),
    r.errors.join('\n'),
  );
  assert.equal(reg.requests.length, before, 'nothing was probed');
});

test('probes, reloads (keeping the old config when the new one is invalid), never logs the credential, stops cleanly', async () => {
  const port = await freePort();
  const path = join(dir, 'agent.yaml');
  const image = `127.0.0.1:${reg.port}/team/app:v1`;
  writeFileSync(path, config(port, [`  - image: ${image}`]));
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-1' },
    processEnv: {},
    inCluster: inClusterOff,
    log,
    reloadCheckMs: 0,
    stopGraceMs: 2000,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  const agent = r.agent;
  try {
    assert.equal(agent.writer.enabled, false, 'outside a cluster the node writer is off');
    // Ready means serving with the first probes scheduled; the first result comes after.
    await until('ready', async () => (await get(port, '/readyz')).status === 200);
    const up = new RegExp(`pullprobe_registry_up\\{registry="127.0.0.1:${reg.port}",target="${image.replace(/[.]/g, '\\.')}"\\} 1`);
    await until('the first result', async () => up.test((await get(port, '/metrics')).body));
    let m = (await get(port, '/metrics')).body;
    assert.match(m, up);
    assert.match(m, /pullprobe_config_reload_success 1/);

    // Invalid new config: refused, old config kept and still probed, said in the log and the metric.
    writeFileSync(path, config(port, [`  - image: ${image}`, '  - registry: [not, a, host]']));
    const heads = reg.count('HEAD', /manifests\/v1/);
    const bad = await agent.reload();
    assert.equal(bad.ok, false);
    assert.ok(
      bad.errors?.some((e) => e.startsWith('targets[1].registry:')),
      bad.errors?.join('\n'),
    );
    m = (await get(port, '/metrics')).body;
    assert.match(m, /pullprobe_config_reload_success 0/);
    assert.ok(logLines.some((l) => /config reload failed; keeping the previous config/.test(l)));
    assert.deepEqual(
      agent.config.targets.map((t) => t.target),
      [image],
    );
    await until('probing continues on the old config', () => reg.count('HEAD', /manifests\/v1/) > heads);

    // Valid new config: a registry target added; applied without a restart.
    writeFileSync(path, config(port, [`  - image: ${image}`, `  - registry: 127.0.0.1:${reg.port}`]));
    const good = await agent.reload();
    assert.equal(good.ok, true);
    await until('new target probed', async () =>
      /pullprobe_registry_up\{registry="127\.0\.0\.1:\d+",target="127\.0\.0\.1:\d+"\} 1/.test((await get(port, '/metrics')).body),
    );
    assert.match((await get(port, '/metrics')).body, /pullprobe_config_reload_success 1/);

    // /probe for a configured image, fresh, as JSON.
    const pr = await get(port, `/probe?image=${encodeURIComponent(image)}&format=json`);
    assert.equal(pr.status, 200);
    assert.equal((JSON.parse(pr.body) as { ok: boolean }).ok, true);
  } finally {
    await agent.stop();
  }
  await assert.rejects(get(port, '/healthz'), 'server closed after stop');
  const all = logLines.join('');
  assert.ok(!all.includes(CANARY), 'the password never reaches the logs');
  assert.ok(!all.includes(Buffer.from(`alice:${CANARY}`).toString('base64')), 'nor the auth string');
});

test('a changed config file is picked up without SIGHUP (ConfigMap updates), once per change', async () => {
  const port = await freePort();
  const path = join(dir, 'watched.yaml');
  const image = `127.0.0.1:${reg.port}/team/app:v1`;
  writeFileSync(path, config(port, [`  - image: ${image}`]));
  const lines: string[] = [];
  const own = pino(
    { level: 'info' },
    new Writable({
      write(c, _e, cb) {
        lines.push(String(c));
        cb();
      },
    }),
  );
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-2' },
    processEnv: {},
    inCluster: inClusterOff,
    log: own,
    reloadCheckMs: 100,
  });
  assert.ok(r.ok);
  try {
    await until('ready', async () => (await get(port, '/readyz')).status === 200);
    await new Promise((res) => setTimeout(res, 250)); // let the poll record the current text
    writeFileSync(path, config(port, [`  - image: ${image}`, `  - registry: 127.0.0.1:${reg.port}`]));
    await until('reloaded', () => r.agent.config.targets.length === 2);
    await new Promise((res) => setTimeout(res, 500)); // several more polls of the same text
    assert.equal(lines.filter((l) => l.includes('"msg":"config reloaded"')).length, 1);
  } finally {
    await r.agent.stop();
  }
});

test("containerd's config.toml that does not parse: named once in the log (file and line), the probes go on without it", async () => {
  const port = await freePort();
  const path = join(dir, 'agent-bad-toml.yaml');
  const toml = join(dir, 'bad-config.toml');
  writeFileSync(toml, 'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry\n');
  const image = `127.0.0.1:${reg.port}/team/app:v1`;
  writeFileSync(path, config(port, [`  - image: ${image}`]).replace('  configPath: ""', `  configPath: ""\n  config: ${toml}`));
  const lines: string[] = [];
  const own = pino(
    { level: 'info' },
    new Writable({
      write(c, _e, cb) {
        lines.push(String(c));
        cb();
      },
    }),
  );
  const r = await Agent.start({ configPath: path, env: { hostname: 'node-3' }, processEnv: {}, inCluster: inClusterOff, log: own });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  try {
    const up = new RegExp(`pullprobe_registry_up\\{registry="127.0.0.1:${reg.port}",target="[^"]+"\\} 1`);
    await until('two probes done', async () => {
      const m = (await get(port, '/metrics')).body;
      return up.test(m) && /pullprobe_probes_total\{[^}]*\} [2-9]/.test(m);
    });
    const warned = lines.filter((l) => l.includes('"msg":"node runtime configuration problems"'));
    assert.equal(warned.length, 1, lines.join(''));
    assert.match(warned[0] ?? '', /bad-config\.toml: not valid TOML at line 2/);
  } finally {
    await r.agent.stop();
  }
});
