/**
 * The agent with `discover.pods: true` against the loopback API server: the
 * registries of the node's pods become probe targets, show in /metrics
 * (`pullprobe_discovered_images`) and on the status page apart from the
 * configured ones, and leave when their pods go; a failing pull gets one
 * PullProbeDiagnosis Event; without RBAC the agent runs on and says once
 * that discovery is off. All registries are loopback addresses.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { until, within } from '../support/within.js';
import { Agent } from '../../src/agent/agent.js';

let dir: string;
let ca: TestCA;
let leaf: CertPair;
let closedA: number;
let closedB: number;
const TOKEN = 'agent-discovery-token';

async function freePort(): Promise<number> {
  const s = createServer();
  await within(new Promise<void>((r) => s.listen(0, '127.0.0.1', r)), 5000, 'listen');
  const port = (s.address() as { port: number }).port;
  await within(new Promise<void>((r) => s.close(() => r())), 5000, 'close');
  return port;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-agent-discovery-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n');
  ca = createCA();
  leaf = ca.issue('apiserver', { sans: ['127.0.0.1', 'localhost'] });
  mkdirSync(join(dir, 'sa'));
  writeFileSync(join(dir, 'sa', 'token'), `${TOKEN}\n`);
  writeFileSync(join(dir, 'sa', 'ca.crt'), ca.cert);
  closedA = await freePort();
  closedB = await freePort();
});
after(() => {
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function config(port: number, discover: boolean): string {
  return [
    `listen: "127.0.0.1:${port}"`,
    'interval: 1s',
    'timeout: 900ms',
    'jitter: 0',
    'node: node-a',
    'subnet: 10.0.1.0/24',
    'targets:',
    `  - registry: "127.0.0.1:${closedA}"`,
    'dns:',
    `  resolvConf: ${join(dir, 'resolv.conf')}`,
    `  hosts: ${join(dir, 'hosts')}`,
    'containerd:',
    '  configPath: ""',
    'outputs:',
    '  annotation: false',
    '  condition: false',
    '  events: false',
    ...(discover ? ['discover:', '  pods: true'] : []),
    '',
  ].join('\n');
}

function pod(name: string, node: string, image: string, waiting?: { reason: string; message: string }): Record<string, unknown> {
  return {
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid: `uid-${name}` },
    spec: { nodeName: node, containers: [{ name: 'app', image }] },
    status: { containerStatuses: [{ name: 'app', image, state: waiting ? { waiting } : { running: {} } }] },
  };
}

async function startAgent(fake: FakeApiServer, discover: boolean, lines: string[]): Promise<{ agent: Agent; port: number }> {
  const port = await freePort();
  const path = join(dir, `agent-${port}.yaml`);
  writeFileSync(path, config(port, discover));
  const u = new URL(fake.url);
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-a' },
    processEnv: {},
    inCluster: { env: { KUBERNETES_SERVICE_HOST: u.hostname, KUBERNETES_SERVICE_PORT: u.port }, saDir: join(dir, 'sa') },
    log: pino(
      { level: 'debug' },
      new Writable({
        write(c, _e, cb) {
          lines.push(String(c));
          cb();
        },
      }),
    ),
    reloadCheckMs: 0,
    stopGraceMs: 2000,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return { agent: r.agent, port };
}

const get = async (port: number, path: string): Promise<string> => (await fetch(`http://127.0.0.1:${port}${path}`)).text();

async function apiServer(): Promise<FakeApiServer> {
  return FakeApiServer.start({
    ca,
    leaf,
    tokenFile: join(dir, 'sa', 'token'),
    nodes: [{ metadata: { name: 'node-a', uid: 'uid-node-a' }, status: { addresses: [{ type: 'InternalIP', address: '10.0.1.5' }] } }],
  });
}

test('discovered registries are probed, shown apart, counted in /metrics, and leave with their pods; one event for a failing pull', async () => {
  const fake = await apiServer();
  const img = `127.0.0.1:${closedB}/shop/web:v1`;
  fake.put(pod('web', 'node-a', img));
  fake.put(pod('elsewhere', 'node-b', '127.0.0.1:9/other/x:v1', { reason: 'ImagePullBackOff', message: 'Back-off pulling image' }));
  const lines: string[] = [];
  const { agent, port } = await startAgent(fake, true, lines);
  try {
    const reg = `127.0.0.1:${closedB}`;
    await until(() => agent.discovered.includes(reg), 8000, 'the registry discovered');
    assert.deepEqual(agent.discovered, [reg], "the other node's pod is not discovered");
    await until(() => agent.store.get(reg)?.result != null, 8000, 'the discovered registry probed');
    const metrics = await get(port, '/metrics');
    assert.match(metrics, new RegExp(`pullprobe_discovered_images\\{registry="127\\.0\\.0\\.1:${closedB}"\\} 1`));
    assert.match(metrics, new RegExp(`pullprobe_registry_up\\{registry="${reg}",target="${reg}"\\} 0`));
    const page = await get(port, '/');
    assert.match(page, new RegExp(`Discovered from this node's pods[\\s\\S]*<code>${reg.replace(/\./g, '\\.')}</code>`));

    // The container starts failing to pull: one Warning event on the pod naming the reason.
    fake.put(pod('web', 'node-a', img, { reason: 'ErrImagePull', message: 'dial tcp: connection refused' }));
    fake.put(pod('web', 'node-a', img, { reason: 'ImagePullBackOff', message: 'Back-off pulling image' }));
    await until(() => fake.events.some((e) => e.reason === 'PullProbeDiagnosis'), 8000, 'the diagnosis event');
    fake.put(pod('web', 'node-a', img, { reason: 'ErrImagePull', message: 'dial tcp: connection refused' }));
    await new Promise((r) => setTimeout(r, 300));
    const diag = fake.events.filter((e) => e.reason === 'PullProbeDiagnosis');
    assert.equal(diag.length, 1);
    const [first] = diag;
    assert.ok(first);
    assert.equal(first.type, 'Warning');
    assert.match(String(first.message), /tcp_refused/);
    assert.equal((first.involvedObject as { name: string }).name, 'web');

    fake.deletePod('shop', 'web');
    await until(() => agent.discovered.length === 0, 8000, 'the registry gone');
    const after = await get(port, '/metrics');
    assert.doesNotMatch(after, /pullprobe_discovered_images\{/);
    assert.doesNotMatch(after, new RegExp(`target="${reg}"`));
    assert.match(after, new RegExp(`target="127\\.0\\.0\\.1:${closedA}"`), 'the configured target stays');
  } finally {
    await agent.stop();
    await fake.close();
  }
});

test('without RBAC for pods: the agent runs on and says once that discovery is off', async () => {
  const fake = await apiServer();
  fake.deny('GET', /^\/api\/v1\/pods$/);
  const lines: string[] = [];
  const { agent, port } = await startAgent(fake, true, lines);
  try {
    await until(() => lines.some((l) => l.includes('pod discovery off')), 8000, 'discovery off said');
    await until(() => agent.store.get(`127.0.0.1:${closedA}`)?.result != null, 8000, 'configured target probed');
    assert.equal(lines.filter((l) => l.includes('pod discovery off')).length, 1);
    assert.equal(fake.requests.filter((r) => r.path === '/api/v1/pods').length, 1, 'no retry loop on 403');
    assert.match(await get(port, '/metrics'), /pullprobe_registry_up/);
  } finally {
    await agent.stop();
    await fake.close();
  }
});

test('discovery is off by default: no pod is listed', async () => {
  const fake = await apiServer();
  const lines: string[] = [];
  const { agent } = await startAgent(fake, false, lines);
  try {
    await until(() => agent.store.get(`127.0.0.1:${closedA}`)?.result != null, 8000, 'configured target probed');
    assert.equal(fake.requests.filter((r) => r.path === '/api/v1/pods').length, 0);
  } finally {
    await agent.stop();
    await fake.close();
  }
});
