/**
 * `pullprobe why` end to end: the real kubectl (/usr/bin/kubectl) talks to
 * the loopback fake API server through a temp kubeconfig (https URL, CA,
 * token); the command runs in-process with an injected clock. Assertions
 * are on the JSON; a canary password checks that no secret reaches stdout
 * or stderr.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, type TestCA } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { runWhyCommand, type WhyIo } from '../../src/commands/why-command.js';
import type { WhyReport } from '../../src/why/types.js';

const KUBECTL = '/usr/bin/kubectl';
const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const TOKEN = 'why-test-token-4e1f';
const CANARY = 'CANARY-pw-7731e0c4';
const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const MSG = JSON.parse(readFileSync(new URL('../fixtures/why/events.json', import.meta.url), 'utf8')) as Record<string, string>;

let ca: TestCA;
let dir: string;
let api: FakeApiServer;
let env: NodeJS.ProcessEnv;

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function msg(kind: string, image: string): string {
  const [host, rest] = [image.split('/')[0] ?? '', image.split('/').slice(1).join('/')];
  const [repo, tag] = rest.split(':');
  return (MSG[kind] ?? '')
    .replaceAll('IMAGE', image)
    .replaceAll('HOST', host)
    .replaceAll('REPO', repo ?? '')
    .replaceAll('TAG', tag ?? '');
}

function dockerSecret(ns: string, name: string, server: string, password: string): Record<string, unknown> {
  const cfg = { auths: { [server]: { username: 'robot', password, auth: b64(`robot:${password}`) } } };
  return {
    kind: 'Secret',
    metadata: { name, namespace: ns },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64(JSON.stringify(cfg)) },
  };
}

interface PodSpec {
  ns?: string;
  name: string;
  image: string;
  state: string;
  statusMessage?: string;
  event?: string;
  secrets?: string[];
  node?: string | null;
  sa?: string;
  init?: boolean;
}

function putPod(p: PodSpec): void {
  const ns = p.ns ?? 'prod';
  const container = { name: 'app', image: p.image };
  const waiting =
    p.state === 'running'
      ? { running: { startedAt: iso(NOW - 60_000) } }
      : { waiting: { reason: p.state, ...(p.statusMessage ? { message: p.statusMessage } : {}) } };
  const status = [{ name: 'app', image: p.image, ready: p.state === 'running', restartCount: 0, state: waiting }];
  api.put({
    kind: 'Pod',
    metadata: { name: p.name, namespace: ns },
    spec: {
      ...(p.init
        ? { initContainers: [container], containers: [{ name: 'main', image: 'registry.lab.test/app/main:v1' }] }
        : { containers: [container] }),
      ...(p.secrets ? { imagePullSecrets: p.secrets.map((name) => ({ name })) } : {}),
      ...(p.node !== null ? { nodeName: p.node ?? 'node-plain' } : {}),
      serviceAccountName: p.sa ?? 'default',
    },
    status: { phase: 'Pending', ...(p.init ? { initContainerStatuses: status } : { containerStatuses: status }) },
  });
  if (p.event) {
    api.put({
      kind: 'Event',
      metadata: { name: `${p.name}.1`, namespace: ns },
      involvedObject: { kind: 'Pod', name: p.name, namespace: ns, fieldPath: `spec.${p.init ? 'initContainers' : 'containers'}{app}` },
      reason: 'Failed',
      type: 'Warning',
      message: p.event,
      lastTimestamp: iso(NOW - 30_000),
    });
  }
}

function annotated(
  name: string,
  subnet: string,
  registry: string,
  state: { ok: boolean; stage?: string; reason?: string; cause?: string },
  atMs = NOW - 120_000,
): Record<string, unknown> {
  const value = { v: 1, at: iso(atMs), subnet, zone: 'z1', registries: { [registry]: { ...state, since: iso(NOW - 2 * 3_600_000) } } };
  return { kind: 'Node', metadata: { name, annotations: { 'pullprobe.dev/status': JSON.stringify(value) } } };
}

async function why(args: string[]): Promise<{ code: number; out: string; err: string; json: WhyReport | null }> {
  let out = '';
  let err = '';
  const io: WhyIo = {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    isTTY: false,
    env,
    now: () => NOW,
  };
  const code = await runWhyCommand([...args, '--kubectl', KUBECTL], io);
  for (const secret of [CANARY, b64(`robot:${CANARY}`)]) {
    assert.ok(!out.includes(secret) && !err.includes(secret), `a secret reached the output of why ${args.join(' ')}`);
  }
  return { code, out, err, json: args.includes('--json') && out.trim() !== '' ? (JSON.parse(out) as WhyReport) : null };
}

/** The first container of a --json answer (each test pod has one); fails the test when there is none. */
function firstContainer(r: { json: WhyReport | null }): WhyReport['containers'][number] {
  const c = r.json?.containers[0];
  assert.ok(c, 'a container in the --json answer');
  return c;
}

/** Its first pull secret; fails the test when there is none. */
function firstSecret(r: { json: WhyReport | null }): WhyReport['containers'][number]['pullSecrets'][number] {
  const s = firstContainer(r).pullSecrets[0];
  assert.ok(s, 'a pull secret in the --json answer');
  return s;
}

before(async () => {
  assert.ok(existsSync(KUBECTL), `${KUBECTL} is required for these tests`);
  ca = createCA();
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-why-'));
  writeFileSync(join(dir, 'token'), TOKEN);
  api = await FakeApiServer.start({ ca, tokenFile: join(dir, 'token'), nodes: [] });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'lab',
      clusters: [{ name: 'lab', cluster: { server: api.url, 'certificate-authority-data': b64(ca.cert) } }],
      users: [{ name: 'u', user: { token: TOKEN } }],
      contexts: [{ name: 'lab', context: { cluster: 'lab', user: 'u', namespace: 'prod' } }],
    }),
  );
  env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: kubeconfig };

  api.put({ kind: 'Node', metadata: { name: 'node-plain' } });
  api.put(annotated('node-a1', '10.0.1.0/24', 'registry.lab.test', { ok: false, stage: 'tcp', reason: 'tcp_refused', cause: 'network' }));
  api.put(annotated('node-a2', '10.0.1.0/24', 'registry.lab.test', { ok: false, stage: 'tcp', reason: 'tcp_refused', cause: 'network' }));
  api.put(annotated('node-b1', '10.0.2.0/24', 'registry.lab.test', { ok: true }));
  api.put({ kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'prod' } });
  api.put({ kind: 'ServiceAccount', metadata: { name: 'puller', namespace: 'prod' }, imagePullSecrets: [{ name: 'good-cred' }] });
  api.put(dockerSecret('default', 'regcred', 'registry.lab.test', CANARY));
  api.put(dockerSecret('prod', 'ghcr-cred', 'ghcr.io', CANARY));
  api.put(dockerSecret('prod', 'good-cred', 'https://registry.lab.test/v2/', CANARY));
  const ecrToken = b64(
    JSON.stringify({
      payload: 'x'.repeat(24),
      datakey: 'y'.repeat(24),
      version: '2',
      type: 'DATA_KEY',
      expiration: Math.floor((NOW - 3_600_000) / 1000),
    }),
  );
  api.put(dockerSecret('prod', 'ecr-cred', `https://${ECR}`, ecrToken));
});

after(async () => {
  // Unset when before() failed.
  await (api as FakeApiServer | undefined)?.close();
  (ca as TestCA | undefined)?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('secret in the wrong namespace: found in default, not in prod; message from the events when the status only backs off', async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({
    name: 'wrong-ns',
    image,
    state: 'ImagePullBackOff',
    statusMessage: msg('backOff', image),
    event: msg('unauthorized', image),
    secrets: ['regcred'],
  });
  const r = await why(['wrong-ns', '-n', 'prod', '--json']);
  assert.equal(r.code, 1);
  const c = firstContainer(r);
  assert.equal(c.state, 'ImagePullBackOff');
  assert.equal(c.explained?.reason, 'auth_required');
  assert.match(c.kubeletMessage ?? '', /401 Unauthorized/);
  assert.deepEqual(
    c.pullSecrets.map((s) => [s.name, s.found, s.foundIn]),
    [['regcred', false, ['default']]],
  );
  assert.equal(c.conclusion.cause, 'credentials');
  assert.match(c.conclusion.summary, /default/);
  assert.match(c.conclusion.fix ?? '', /namespace/);
});

test('secret present but for another registry', async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({ name: 'other-reg', image, state: 'ErrImagePull', statusMessage: msg('unauthorized', image), secrets: ['ghcr-cred'] });
  const r = await why(['other-reg', '-n', 'prod', '--json']);
  assert.equal(r.code, 1);
  const s = firstSecret(r);
  assert.deepEqual([s.found, s.type, s.registries, s.matchesImage], [true, 'kubernetes.io/dockerconfigjson', ['ghcr.io'], false]);
  assert.equal(firstContainer(r).conclusion.cause, 'credentials');
  assert.match(firstContainer(r).conclusion.fix ?? '', /registry\.lab\.test/);
});

test('secret with an expired ECR token: the expiry is read from the token', async () => {
  const image = `${ECR}/api:v2.5.1`;
  putPod({ name: 'ecr-expired', image, state: 'ErrImagePull', statusMessage: msg('unauthorized', image), secrets: ['ecr-cred'] });
  const r = await why(['ecr-expired', '-n', 'prod', '--json']);
  const s = firstSecret(r);
  assert.equal(s.matchesImage, true);
  assert.equal(s.expiresAt, iso(Math.floor((NOW - 3_600_000) / 1000) * 1000));
  assert.match(s.problem ?? '', /expired/);
  assert.equal(firstContainer(r).conclusion.cause, 'credentials');
  assert.match(firstContainer(r).conclusion.fix ?? '', /Refresh/);
});

test('no secret and a 401', async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({ name: 'no-secret', image, state: 'ErrImagePull', statusMessage: msg('unauthorized', image) });
  const r = await why(['no-secret', '-n', 'prod', '--json']);
  const c = firstContainer(r);
  assert.deepEqual(c.pullSecrets, []);
  assert.deepEqual([c.conclusion.cause, c.conclusion.reason], ['credentials', 'auth_required']);
  assert.match(c.conclusion.summary, /no pull secret/);
});

test('invalid image name, in an init container', async () => {
  const image = 'registry.lab.test/App/api:v1';
  putPod({ name: 'bad-name', image, state: 'InvalidImageName', statusMessage: msg('invalidName', image), init: true });
  const r = await why(['bad-name', '-n', 'prod', '--json']);
  assert.equal(r.code, 1);
  const c = firstContainer(r);
  assert.equal(r.json?.containers.length, 1);
  assert.deepEqual([c.name, c.conclusion.cause, c.conclusion.reason], ['app', 'name', 'invalid_reference']);
  assert.equal(c.nodeVerdict, null);
});

test('manifest unknown', async () => {
  const image = 'registry.lab.test/app/api:v9.9.9';
  putPod({ name: 'no-tag', image, state: 'ErrImagePull', statusMessage: msg('notFound', image), node: 'node-b1' });
  const r = await why(['no-tag', '-n', 'prod', '--json']);
  const c = firstContainer(r);
  assert.deepEqual([c.explained?.reason, c.conclusion.cause, c.conclusion.reason], ['manifest_unknown', 'missing', 'manifest_unknown']);
  assert.equal(c.nodeVerdict?.ok, true);
});

test('node annotation showing tcp_refused subnet-wide', async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({ name: 'refused', image, state: 'ImagePullBackOff', event: msg('refused', image), node: 'node-a1' });
  const r = await why(['refused', '-n', 'prod', '--json']);
  const c = firstContainer(r);
  assert.equal(r.json?.node, 'node-a1');
  assert.deepEqual(c.nodeVerdict, {
    ok: false,
    stage: 'tcp',
    reason: 'tcp_refused',
    since: iso(NOW - 2 * 3_600_000),
    subnet: '10.0.1.0/24',
    subnetVerdict: 'subnet-wide',
  });
  assert.deepEqual([c.conclusion.cause, c.conclusion.reason], ['network', 'tcp_refused']);
  assert.match(c.conclusion.summary, /subnet-wide/);
  const human = await why(['refused', '-n', 'prod']);
  assert.match(human.out, /✗ 4\. Node: tcp\/tcp_refused for 2h/);
  assert.match(human.out, /subnet 10\.0\.1\.0\/24: subnet-wide/);
});

test('node without annotation: no agent on this node; the kubelet message decides', async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({ name: 'plain-node', image, state: 'ErrImagePull', statusMessage: msg('refused', image), node: 'node-plain' });
  const r = await why(['plain-node', '-n', 'prod', '--json']);
  const c = firstContainer(r);
  assert.equal(c.nodeVerdict, null);
  assert.deepEqual([c.conclusion.cause, c.conclusion.reason], ['network', 'tcp_refused']);
  assert.match(c.conclusion.summary, /no agent on this node/);
  const human = await why(['plain-node', '-n', 'prod']);
  assert.match(human.out, /4\. Node: no agent on this node/);
});

test('conflicting evidence: 401 while the service account secret matches and decodes', async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({ name: 'conflict', image, state: 'ErrImagePull', statusMessage: msg('unauthorized', image), sa: 'puller' });
  const r = await why(['conflict', '-n', 'prod', '--json']);
  assert.equal(r.code, 1);
  const c = firstContainer(r);
  assert.deepEqual(
    c.pullSecrets.map((s) => [s.name, s.found, s.matchesImage, s.problem]),
    [['good-cred', true, true, null]],
  );
  assert.deepEqual([c.conclusion.cause, c.conclusion.reason], [null, null]);
  assert.match(c.conclusion.summary, /conflicting evidence/);
  const human = await why(['conflict']); // namespace from the kubeconfig context
  assert.match(human.out, /✓ 3\. Pull secret good-cred/);
  assert.match(human.out, /No single cause: conflicting evidence/);
});

test('a pod that is fine exits 0; --all lists its running container', async () => {
  putPod({ name: 'fine', image: 'registry.lab.test/app/api:v2.5.1', state: 'running', node: 'node-b1' });
  const r = await why(['fine', '-n', 'prod', '--json']);
  assert.equal(r.code, 0);
  assert.deepEqual(r.json, { pod: 'fine', namespace: 'prod', node: 'node-b1', containers: [] });
  const all = await why(['fine', '-n', 'prod', '--json', '--all']);
  assert.equal(all.code, 0);
  assert.deepEqual(
    all.json?.containers.map((c) => [c.name, c.state, c.conclusion.cause]),
    [['app', 'running', null]],
  );
});

test('usage and kubectl errors exit 2 with nothing on stdout', async () => {
  const missing = await why(['nope', '-n', 'prod', '--json']);
  assert.deepEqual([missing.code, missing.out], [2, '']);
  assert.match(missing.err, /pod nope not found in namespace prod/);
  let err = '';
  const io: WhyIo = {
    stdout: () => {
      throw new Error('stdout written');
    },
    stderr: (s) => {
      err += s;
    },
    isTTY: false,
    env,
    now: () => NOW,
  };
  assert.equal(await runWhyCommand(['x', '--kubectl', join(dir, 'no-such-kubectl')], io), 2);
  assert.match(err, /not found \(use --kubectl PATH\)/);
});

test('listing secrets across namespaces forbidden: says it could not check', async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({ name: 'forbidden', image, state: 'ErrImagePull', statusMessage: msg('unauthorized', image), secrets: ['lost'] });
  api.deny('GET', /^\/api\/v1\/secrets$/);
  const r = await why(['forbidden', '-n', 'prod', '--json']);
  const s = firstSecret(r);
  assert.deepEqual([s.found, s.foundIn], [false, []]);
  assert.match(s.problem ?? '', /could not check the other namespaces/);
  assert.match(r.err, /could not look for secret lost in other namespaces/);
});

test("--probe: the image is probed with the pod secrets in memory, and the output says the network is not the node's", async () => {
  const image = 'registry.lab.test/app/api:v2.5.1';
  putPod({ name: 'probed', image, state: 'ErrImagePull', statusMessage: msg('unauthorized', image), sa: 'puller' });
  const seen: Array<{ image: string; user: string | undefined; hasPassword: boolean }> = [];
  let out = '';
  const io: WhyIo = {
    stdout: (s) => {
      out += s;
    },
    stderr: () => {},
    isTTY: false,
    env,
    now: () => NOW,
    probe: (img, auths) => {
      const e = auths?.entries.find((x) => x.host === 'registry.lab.test');
      seen.push({ image: img, user: e?.username, hasPassword: e?.password === CANARY });
      return Promise.resolve({
        target: img,
        image: img,
        registry: 'registry.lab.test',
        ok: false,
        stage: 'auth',
        reason: 'auth_rejected',
        cause: 'credentials',
        host: 'registry.lab.test',
        message: `rejected ${CANARY}`,
        hint: null,
        degraded: false,
        seconds: 0,
        steps: [],
      });
    },
  };
  assert.equal(await runWhyCommand(['probed', '-n', 'prod', '--probe', '--kubectl', KUBECTL], io), 1);
  assert.deepEqual(seen, [{ image, user: 'robot', hasPassword: true }]);
  assert.match(out, /Probe from here .*auth\/auth_rejected/);
  assert.match(out, /reachability from here is not the node's/);
  assert.ok(!out.includes(CANARY), 'a secret echoed by the probe was masked');
});
