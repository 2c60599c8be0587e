import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { FakeTime, track } from '../support/fake-time.js';
import { until, within } from '../support/within.js';
import { loadInClusterConfig, TokenSource } from '../../src/kube/in-cluster.js';
import { createKubeClient, KubeApiError, type KubeClient, type KubeNode } from '../../src/kube/client.js';
import { NodeWriter, type NodeWriterOptions, type Timers } from '../../src/kube/node-writer.js';
import { ANNOTATION_KEY } from '../../src/kube/patches.js';
import type { Log, ProbeResult } from '../../src/model/types.js';
import { causeOf, stageOf, type Reason } from '../../src/diagnosis/catalog.js';

const T0 = Date.UTC(2025, 4, 1, 12, 0, 0);
const TOKEN = 'tok-canary-5f0c1d2e3b4a-SECRET';
const HB = 10 * 60_000;

let ca: TestCA;
let leaf: CertPair;
before(() => {
  ca = createCA();
  leaf = ca.issue('apiserver', { sans: ['127.0.0.1', 'localhost'] });
});
after(() => ca.cleanup());

class FakeTimers implements Timers {
  now = T0;
  readonly delays: number[] = [];
  private seq = 0;
  private list: { id: number; at: number; fn: () => void }[] = [];
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.delays.push(ms);
    this.list.push({ id, at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.list = this.list.filter((t) => t.id !== h);
  }
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = this.list.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.list = this.list.filter((t) => t !== due);
      this.now = due.at;
      due.fn();
    }
    this.now = end;
  }
  get pending(): number {
    return this.list.length;
  }
}

function captureLog(): { log: Log; lines: { level: string; obj: object; msg?: string | undefined }[] } {
  const lines: { level: string; obj: object; msg?: string | undefined }[] = [];
  const mk =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return { log: { debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error') }, lines };
}

function result(target: string, registry: string, reason: Reason | null): ProbeResult {
  return {
    target,
    image: null,
    registry,
    ok: reason === null,
    stage: reason ? stageOf(reason) : null,
    reason,
    cause: reason ? causeOf(reason) : null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0.01,
    steps: [],
  };
}

function baseNode(): KubeNode {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: 'node-a',
      uid: 'uid-node-a',
      labels: { 'topology.kubernetes.io/zone': 'zone-a' },
      annotations: { 'other.io/keep': 'yes' },
    },
    spec: { podCIDR: '10.244.1.0/24' },
    status: {
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
          lastHeartbeatTime: '2025-05-01T11:00:00Z',
          lastTransitionTime: '2025-04-01T00:00:00Z',
        },
        {
          type: 'MemoryPressure',
          status: 'False',
          reason: 'KubeletHasSufficientMemory',
          message: 'ok',
          lastHeartbeatTime: '2025-05-01T11:00:00Z',
          lastTransitionTime: '2025-04-01T00:00:00Z',
        },
      ],
    },
  };
}

interface Env {
  fake: FakeApiServer;
  client: KubeClient;
  tokenFile: string;
  dir: string;
  tokens: TokenSource;
}

async function setup(
  t: TestContext,
  opts: { node?: KubeNode; timeoutMs?: number; serverTokenFile?: string; timers?: Timers } = {},
): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-kube-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const fake = await FakeApiServer.start({ ca, tokenFile: opts.serverTokenFile ?? tokenFile, nodes: [opts.node ?? baseNode()], leaf });
  const tokens = new TokenSource(tokenFile, { clock: { now: () => 0 } });
  const client = createKubeClient({
    server: fake.url,
    caPem: ca.cert,
    tokens,
    timeoutMs: opts.timeoutMs ?? 2000,
    ...(opts.timers ? { timers: opts.timers } : {}),
  });
  t.after(async () => {
    await client.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fake, client, tokenFile, dir, tokens };
}

function writer(env: Env, timers: FakeTimers, extra: Partial<NodeWriterOptions> = {}): NodeWriter {
  const w = new NodeWriter({
    client: env.client,
    node: 'node-a',
    subnet: '10.231.1.0/24',
    zone: 'zone-a',
    outputs: { heartbeatMs: HB },
    wallNow: () => timers.now,
    timers,
    random: () => 0.5,
    backoff: { initialMs: 1000, maxMs: 60_000 },
    ...extra,
  });
  return w;
}

interface StatusAnnotation {
  at: string;
  registries: Record<string, { ok: boolean; reason?: string; since: string }>;
}

function annotation(fake: FakeApiServer): StatusAnnotation | null {
  const raw = fake.node('node-a')?.metadata.annotations?.[ANNOTATION_KEY];
  return raw ? (JSON.parse(raw) as StatusAnnotation) : null;
}

function ourCondition(fake: FakeApiServer) {
  return fake.node('node-a')?.status?.conditions?.find((c) => c.type === 'RegistryReachable');
}

// ---- in-cluster config and token source ----

test('in-cluster config reads env, CA and token; outside a cluster says so', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-sa-'));
  try {
    mkdirSync(join(dir, 'sa'));
    writeFileSync(join(dir, 'sa', 'ca.crt'), ca.cert);
    writeFileSync(join(dir, 'sa', 'token'), TOKEN);
    const ok = loadInClusterConfig({
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      saDir: join(dir, 'sa'),
    });
    assert.ok(ok.ok);
    assert.equal(ok.config.server, 'https://10.96.0.1:443');
    assert.equal(ok.config.caPem, ca.cert);
    assert.equal(ok.config.tokenFile, join(dir, 'sa', 'token'));
    assert.ok(!JSON.stringify(ok).includes(TOKEN), 'config does not carry the token');
    const v6 = loadInClusterConfig({
      env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
      saDir: join(dir, 'sa'),
    });
    assert.ok(v6.ok && v6.config.server === 'https://[fd00::1]:6443');
    const out = loadInClusterConfig({ env: {}, saDir: join(dir, 'sa') });
    assert.ok(!out.ok && out.code === 'not_in_cluster');
    const noCa = loadInClusterConfig({ env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }, saDir: join(dir, 'nope') });
    assert.ok(!noCa.ok && noCa.code === 'unreadable');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('token source re-reads after its period and after invalidate, keeps the old token if a re-read fails', () => {
  let now = 0;
  let content: string | Error = 'one';
  const ts = new TokenSource('/x/token', {
    clock: { now: () => now },
    periodMs: 60_000,
    readFile: () => {
      if (content instanceof Error) throw content;
      return `${content}\n`;
    },
  });
  assert.equal(ts.token(), 'one');
  content = 'two';
  now = 59_000;
  assert.equal(ts.token(), 'one');
  now = 60_000;
  assert.equal(ts.token(), 'two');
  content = 'three';
  ts.invalidate();
  assert.equal(ts.token(), 'three');
  content = Object.assign(new Error('gone'), { code: 'ENOENT' });
  ts.invalidate();
  assert.equal(ts.token(), 'three');
  const fresh = new TokenSource('/x/token', {
    readFile: () => {
      throw Object.assign(new Error('x'), { code: 'EACCES' });
    },
  });
  assert.throws(() => fresh.token(), { code: 'PULLPROBE_KUBE_TOKEN' });
});

// ---- client ----

test('client: rotated token → 401 → re-read → success', async (t) => {
  const env = await setup(t);
  await env.client.getNode('node-a');
  writeFileSync(env.tokenFile, 'rotated-token-2\n');
  const node = await env.client.getNode('node-a');
  assert.equal(node.metadata.uid, 'uid-node-a');
  const gets = env.fake.requests.filter((r) => r.method === 'GET');
  assert.deepEqual(
    gets.map((r) => [r.token, r.status]),
    [
      [TOKEN, 200],
      [TOKEN, 401],
      ['rotated-token-2', 200],
    ],
  );
});

test('client: patch content types; the fake answers 415 for the wrong one', async (t) => {
  const env = await setup(t);
  await env.client.patchNode('node-a', { metadata: { labels: { x: 'y' } } });
  await env.client.patchNodeStatus('node-a', { status: { conditions: [] } });
  assert.deepEqual(
    env.fake.requests.map((r) => [r.path, r.contentType, r.status]),
    [
      ['/api/v1/nodes/node-a', 'application/merge-patch+json', 200],
      ['/api/v1/nodes/node-a/status', 'application/strategic-merge-patch+json', 200],
    ],
  );
  const res = await request(`${env.fake.url}/api/v1/nodes/node-a/status`, {
    method: 'PATCH',
    body: '{}',
    headers: { 'content-type': 'application/merge-patch+json', authorization: `Bearer ${TOKEN}` },
    dispatcher: new (await import('undici')).Agent({ connect: { ca: ca.cert } }),
  });
  await res.body.text();
  assert.equal(res.statusCode, 415);
});

test('client: API errors carry status and code; a hang times out', async (t) => {
  const time = new FakeTime();
  const env = await setup(t, { timeoutMs: 300, timers: time });
  env.fake.inject(1, { status: 403 });
  await assert.rejects(env.client.getNode('node-a'), (e: unknown) => {
    assert.ok(e instanceof KubeApiError);
    assert.equal(e.status, 403);
    assert.equal(e.code, 'PULLPROBE_KUBE_API');
    return true;
  });
  env.fake.inject(1, { status: 429, retryAfterSeconds: 7 });
  await assert.rejects(env.client.getNode('node-a'), (e: unknown) => e instanceof KubeApiError && e.retryAfterMs === 7000);
  await assert.rejects(env.client.getNode('missing'), { status: 404 });
  env.fake.inject(1, { hang: true });
  const seen = env.fake.requests.length;
  const call = track(env.client.getNode('node-a'));
  await until(() => env.fake.requests.length > seen, 5000, 'the hanging request at the API server');
  time.advance(299);
  await new Promise((r) => setImmediate(r));
  assert.equal(call.settled(), false, 'still waiting 1 ms before the call timeout');
  time.advance(1);
  await within(
    assert.rejects(call.p, { code: 'PULLPROBE_KUBE_TIMEOUT', message: 'GET /api/v1/nodes/node-a: no answer within 300ms' }),
    5000,
    'the call to time out',
  );
});

// ---- writer ----

test('writer: condition Unknown until the first cycle, then True; only our condition type is touched', async (t) => {
  const env = await setup(t);
  const timers = new FakeTimers();
  const w = writer(env, timers, { expectedTargets: ['ghcr.io/a/b:1', 'docker.io/library/nginx:latest'] });
  t.after(() => w.stop());
  w.start();
  await w.whenIdle();
  assert.equal(ourCondition(env.fake)?.status, 'Unknown');
  assert.equal(ourCondition(env.fake)?.reason, 'NoProbeYet');
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', null)]);
  await w.whenIdle();
  assert.equal(ourCondition(env.fake)?.status, 'Unknown', 'one of two targets is not a cycle');
  assert.equal(annotation(env.fake), null);
  timers.advance(5000);
  w.update([result('docker.io/library/nginx:latest', 'docker.io', null)]);
  await w.whenIdle();
  const cond = ourCondition(env.fake);
  assert.ok(cond, 'our condition');
  assert.equal(cond.status, 'True');
  assert.equal(cond.reason, 'AllRegistriesReachable');
  assert.equal(cond.lastTransitionTime, '2025-05-01T12:00:05Z');
  const node = env.fake.node('node-a');
  const others = node?.status?.conditions?.filter((c) => c.type !== 'RegistryReachable');
  assert.deepEqual(others, baseNode().status?.conditions);
  assert.equal(node?.metadata.annotations?.['other.io/keep'], 'yes');
  assert.deepEqual(Object.keys(annotation(env.fake)?.registries ?? {}).sort(), ['docker.io', 'ghcr.io']);
});

test('writer: writes only on change, plus a heartbeat', async (t) => {
  const env = await setup(t);
  const timers = new FakeTimers();
  const w = writer(env, timers);
  t.after(() => w.stop());
  const okRes = [result('ghcr.io/a/b:1', 'ghcr.io', null)];
  w.update(okRes);
  await w.whenIdle();
  for (let i = 0; i < 5; i++) {
    timers.advance(60_000);
    w.update(okRes);
    await w.whenIdle();
  }
  assert.equal(env.fake.succeeded('PATCH', '/nodes/node-a').length, 1);
  assert.equal(env.fake.succeeded('PATCH', '/status').length, 1);
  const first = annotation(env.fake);
  timers.advance(HB - 5 * 60_000);
  await w.whenIdle();
  assert.equal(env.fake.succeeded('PATCH', '/nodes/node-a').length, 2, 'heartbeat annotation');
  assert.equal(env.fake.succeeded('PATCH', '/status').length, 2, 'heartbeat condition');
  const second = annotation(env.fake);
  assert.notEqual(second?.at, first?.at);
  assert.equal(second?.registries['ghcr.io']?.since, first?.registries['ghcr.io']?.since);
  assert.equal(ourCondition(env.fake)?.lastHeartbeatTime, '2025-05-01T12:10:00Z');
  assert.equal(ourCondition(env.fake)?.lastTransitionTime, '2025-05-01T12:00:00Z');
  timers.advance(1000);
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_refused')]);
  await w.whenIdle();
  assert.equal(env.fake.succeeded('PATCH', '/nodes/node-a').length, 3);
  const third = annotation(env.fake)?.registries['ghcr.io'];
  assert.ok(third, 'ghcr.io in the annotation');
  assert.equal(third.reason, 'tcp_refused');
  assert.equal(third.since, '2025-05-01T12:10:01Z');
  assert.equal(ourCondition(env.fake)?.reason, 'TcpRefused');
  assert.equal(ourCondition(env.fake)?.lastTransitionTime, '2025-05-01T12:10:01Z');
});

test('writer: during an outage the latest state wins, written once after recovery; backoff grows', async (t) => {
  const env = await setup(t);
  const timers = new FakeTimers();
  const w = writer(env, timers, { outputs: { condition: false, events: false, heartbeatMs: HB } });
  t.after(() => w.stop());
  env.fake.inject(3, { status: 500 });
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'dns_nxdomain')]);
  await w.whenIdle();
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_timeout')]);
  await w.whenIdle();
  assert.equal(env.fake.requests.length, 1, 'no second write while backing off');
  timers.advance(750);
  await w.whenIdle();
  timers.advance(1500);
  await w.whenIdle();
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', null)]);
  timers.advance(3000);
  await w.whenIdle();
  assert.deepEqual(timers.delays.slice(0, 3), [750, 1500, 3000]);
  assert.deepEqual(
    env.fake.requests.map((r) => r.status),
    [500, 500, 500, 200],
  );
  const ok = env.fake.succeeded('PATCH', '/nodes/node-a');
  assert.equal(ok.length, 1);
  assert.equal(annotation(env.fake)?.registries['ghcr.io']?.ok, true);
  assert.ok(w.stats().failures === 3);
});

test('writer: 403 and 429 never throw; Retry-After is honoured; a hang times out and is retried', async (t) => {
  const env = await setup(t, { timeoutMs: 250 });
  const timers = new FakeTimers();
  const { log, lines } = captureLog();
  const w = writer(env, timers, { log, outputs: { condition: false, events: false, heartbeatMs: HB } });
  t.after(() => w.stop());
  env.fake.inject(1, { status: 403 });
  env.fake.inject(1, { status: 429, retryAfterSeconds: 20 });
  env.fake.inject(1, { hang: true });
  assert.doesNotThrow(() => w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_refused')]));
  await w.whenIdle();
  timers.advance(750);
  await w.whenIdle();
  assert.equal(timers.delays[1], 20_000, 'Retry-After wins over a shorter backoff');
  timers.advance(20_000);
  await w.whenIdle();
  assert.equal(env.fake.requests.length, 3);
  timers.advance(60_000);
  await w.whenIdle();
  assert.equal(env.fake.succeeded('PATCH', '/nodes/node-a').length, 1);
  assert.equal(annotation(env.fake)?.registries['ghcr.io']?.reason, 'tcp_refused');
  assert.equal(lines.filter((l) => l.level === 'warn').length, 1, 'one warning per outage');
  assert.equal(lines.filter((l) => l.level === 'info').length, 1, 'one recovery line');
});

test('writer: events per transition, rate-limited per registry, on the Node', async (t) => {
  const env = await setup(t);
  const timers = new FakeTimers();
  const w = writer(env, timers, {
    outputs: { annotation: false, condition: false, heartbeatMs: HB },
    events: { burst: 2, refillMs: 30_000 },
    uid: 'uid-node-a',
  });
  t.after(() => w.stop());
  w.update([result('docker.io/x/y:1', 'docker.io', null)]);
  await w.whenIdle();
  assert.equal(env.fake.events.length, 0, 'first ok verdict is not a transition');
  for (const reason of ['tcp_refused', null, 'tcp_refused', null] as const) {
    timers.advance(1000);
    w.update([result('docker.io/x/y:1', 'docker.io', reason)]);
    await w.whenIdle();
  }
  assert.deepEqual(
    env.fake.events.map((e) => [e.type, e.reason]),
    [
      ['Warning', 'RegistryUnreachable'],
      ['Normal', 'RegistryReachable'],
    ],
  );
  assert.equal(w.stats().eventsDropped, 2);
  const e = env.fake.events[0] as { involvedObject: object; source: object; metadata: { namespace: string } };
  assert.deepEqual(e.involvedObject, { apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: 'uid-node-a' });
  assert.deepEqual(e.source, { component: 'pullprobe', host: 'node-a' });
  assert.equal(e.metadata.namespace, 'default');
  timers.advance(30_000);
  w.update([result('docker.io/x/y:1', 'docker.io', 'dns_nxdomain')]);
  await w.whenIdle();
  assert.equal(env.fake.events.length, 3, 'bucket refilled');
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_refused')]);
  await w.whenIdle();
  assert.equal(env.fake.events.length, 4, 'another registry has its own bucket');
});

test('writer: a restart keeps since and does not re-announce an unchanged failure', async (t) => {
  const node = baseNode();
  node.metadata.annotations = {
    [ANNOTATION_KEY]: JSON.stringify({
      v: 1,
      at: '2025-05-01T11:50:00Z',
      subnet: null,
      zone: null,
      registries: { 'ghcr.io': { ok: false, stage: 'tcp', reason: 'tcp_refused', cause: 'network', since: '2025-05-01T09:00:00Z' } },
    }),
  };
  const env = await setup(t, { node });
  const timers = new FakeTimers();
  const w = writer(env, timers, { initialNode: node });
  t.after(() => w.stop());
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_refused')]);
  await w.whenIdle();
  assert.equal(annotation(env.fake)?.registries['ghcr.io']?.since, '2025-05-01T09:00:00Z');
  assert.equal(env.fake.events.length, 0);
});

test('writer out of cluster: disabled, says so once, never throws', () => {
  const { log, lines } = captureLog();
  const w = new NodeWriter({ client: null, node: 'n', log });
  w.start();
  for (let i = 0; i < 5; i++) w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_refused')]);
  assert.equal(w.enabled, false);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]?.level, 'info');
});

test('the token never appears in logs or errors (canary)', async (t) => {
  const otherFile = join(mkdtempSync(join(tmpdir(), 'pullprobe-other-')), 'token');
  writeFileSync(otherFile, 'server-side-token');
  t.after(() => rmSync(join(otherFile, '..'), { recursive: true, force: true }));
  const env = await setup(t, { serverTokenFile: otherFile, timeoutMs: 200 });
  const errors: unknown[] = [];
  await env.client.getNode('node-a').catch((e: unknown) => errors.push(e));
  writeFileSync(otherFile, TOKEN);
  const echo = { status: 500, message: `proxy saw Authorization: Bearer ${TOKEN}` } as const;
  for (const fault of [{ status: 403 }, echo, { hang: true }] as const) {
    env.fake.inject(1, fault);
    await env.client.patchNode('node-a', {}).catch((e: unknown) => errors.push(e));
  }
  assert.equal(errors.length, 4);
  assert.equal((errors[0] as KubeApiError).status, 401);
  const { log, lines } = captureLog();
  const timers = new FakeTimers();
  const w = writer(env, timers, { log });
  t.after(() => w.stop());
  writeFileSync(otherFile, 'server-side-token');
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_refused')]);
  await w.whenIdle();
  timers.advance(1000);
  await w.whenIdle();
  assert.ok(lines.length > 0);
  const dump = JSON.stringify(lines) + errors.map((e) => `${String(e)} ${(e as Error).stack} ${JSON.stringify(e)}`).join('\n');
  assert.ok(!dump.includes(TOKEN), 'token leaked');
  assert.ok(!dump.includes('canary-5f0c'), 'token fragment leaked');
});
