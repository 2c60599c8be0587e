import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { until } from '../support/within.js';
import { createKubeClient } from '../../src/kube/client.js';
import { TokenSource } from '../../src/kube/in-cluster.js';
import { PodWatch, type KubePod } from '../../src/kube/pod-watch.js';
import { DIAGNOSIS_REASON, PodDiscovery, imagesByRegistry, pullFailures } from '../../src/agent/discovery.js';
import type { ProbeResult } from '../../src/model/types.js';

function pod(
  name: string,
  images: string[],
  waiting: Record<string, { reason: string; message?: string }> = {},
  uid = `uid-${name}`,
): KubePod {
  return {
    metadata: { name, namespace: 'shop', uid },
    spec: { nodeName: 'node-a', containers: images.map((image, i) => ({ name: `c${i}`, image })) },
    status: {
      containerStatuses: images.map((image, i) => {
        const w = waiting[`c${i}`];
        return { name: `c${i}`, image, state: w ? { waiting: w } : {} };
      }),
    },
  };
}

const pods = (...ps: KubePod[]): Map<string, KubePod> => new Map(ps.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));

function refused(image: string): ProbeResult {
  return {
    target: image,
    image,
    registry: 'registry.lab.test',
    ok: false,
    stage: 'tcp',
    reason: 'tcp_refused',
    cause: 'network',
    host: 'registry.lab.test:443',
    message: 'connection refused',
    hint: 'Registry unreachable on port 443 from this node.',
    degraded: false,
    seconds: 0.01,
    steps: [],
  };
}
function fine(image: string): ProbeResult {
  return { ...refused(image), ok: true, stage: null, reason: null, cause: null, message: null, hint: null };
}

interface Harness {
  d: PodDiscovery;
  probes: string[];
  events: Array<{ ns: string; ev: Record<string, unknown> }>;
  regs: Array<Map<string, number>>;
  clock: { t: number };
}

function harness(answer: (image: string) => ProbeResult = refused, gate?: Promise<void>): Harness {
  const probes: string[] = [];
  const events: Harness['events'] = [];
  const regs: Array<Map<string, number>> = [];
  const clock = { t: Date.UTC(2026, 0, 1) };
  const d = new PodDiscovery({
    node: 'node-a',
    subnet: '10.0.1.0/24',
    now: () => clock.t,
    probeImage: async (image) => {
      probes.push(image);
      await gate;
      return answer(image);
    },
    createEvent: (ns, ev) => {
      events.push({ ns, ev: ev as Record<string, unknown> });
      return Promise.resolve();
    },
    onRegistries: (c) => regs.push(new Map(c)),
  });
  return { d, probes, events, regs, clock };
}

const failing = { c0: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "registry.lab.test/app:1"' } };

test('registries, not tags: many tags of one registry are one registry; unparsable images are left out', () => {
  const counts = imagesByRegistry([
    pod('a', ['registry.lab.test/app:1', 'registry.lab.test/app:2', 'nginx']),
    pod('b', ['registry.lab.test/app:1', 'ghcr.io/x/y@sha256:' + 'a'.repeat(64), 'Bad Image']),
  ]);
  assert.deepEqual([...counts].sort(), [
    ['docker.io', 1],
    ['ghcr.io', 1],
    ['registry.lab.test', 2],
  ]);
});

test('cardinality stays bounded: 500 pods with distinct tags on two registries give two registries', () => {
  const h = harness();
  const many = [];
  for (let i = 0; i < 500; i++) many.push(pod(`p${i}`, [`registry.lab.test/app:v${i}`, `ghcr.io/org/tool:${i}`]));
  h.d.update(pods(...many));
  assert.deepEqual([...h.d.registries().keys()].sort(), ['ghcr.io', 'registry.lab.test']);
  assert.equal(h.regs.length, 1);
});

test('registries leave when their pods go', () => {
  const h = harness();
  h.d.update(pods(pod('a', ['registry.lab.test/app:1']), pod('b', ['ghcr.io/x/y:1'])));
  h.d.update(pods(pod('a', ['registry.lab.test/app:1'])));
  assert.deepEqual([...h.d.registries().keys()], ['registry.lab.test']);
  assert.equal(h.regs.length, 2);
});

test('only ErrImagePull / ImagePullBackOff containers are pull failures; init containers count', () => {
  const p = pod('a', ['x.test/a:1', 'x.test/b:1'], { c0: { reason: 'ErrImagePull', message: 'm' }, c1: { reason: 'CrashLoopBackOff' } });
  if (p.spec) p.spec.initContainers = [{ name: 'init', image: 'x.test/i:1' }];
  if (p.status) p.status.initContainerStatuses = [{ name: 'init', state: { waiting: { reason: 'ImagePullBackOff' } } }];
  assert.deepEqual(
    pullFailures(p).map((f) => [f.image, f.init]),
    [
      ['x.test/i:1', true],
      ['x.test/a:1', false],
    ],
  );
});

test('a failing pull gets one Warning event on the pod naming stage, reason, subnet and fix', async () => {
  const h = harness();
  h.d.update(pods(pod('web', ['registry.lab.test/app:1'], failing)));
  await h.d.settle();
  assert.equal(h.events.length, 1);
  const { ns, ev } = h.events[0] ?? { ns: '', ev: {} };
  assert.equal(ns, 'shop');
  assert.equal(ev.reason, DIAGNOSIS_REASON);
  assert.equal(ev.type, 'Warning');
  assert.deepEqual(ev.involvedObject, {
    apiVersion: 'v1',
    kind: 'Pod',
    name: 'web',
    namespace: 'shop',
    uid: 'uid-web',
    fieldPath: 'spec.containers{c0}',
  });
  assert.match(String(ev.message), /tcp_refused/);
  assert.match(String(ev.message), /stage tcp/);
  assert.match(String(ev.message), /10\.0\.1\.0\/24/);
  assert.match(String(ev.message), /Fix: Registry unreachable/);
});

test('when the node reaches the registry: Normal, the network is not the cause, and the kubelet message classified', async () => {
  const h = harness(fine);
  h.d.update(
    pods(
      pod('web', ['registry.lab.test/app:1'], {
        c0: {
          reason: 'ErrImagePull',
          message:
            'failed to pull and unpack image "registry.lab.test/app:1": failed to resolve reference "registry.lab.test/app:1": registry.lab.test/app:1: not found',
        },
      }),
    ),
  );
  await h.d.settle();
  assert.equal(h.events.length, 1);
  const ev = h.events[0]?.ev ?? {};
  assert.equal(ev.type, 'Normal');
  assert.match(String(ev.message), /network is not the cause/);
  assert.match(String(ev.message), /manifest_unknown/);
});

test('rate limit: one probe per image per minute (single-flight), one event per pod per image per verdict', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let verdict: (image: string) => ProbeResult = refused;
  const h = harness((image) => verdict(image), gate);
  const a = pod('a', ['registry.lab.test/app:1'], failing);
  const b = pod('b', ['registry.lab.test/app:1'], failing);
  // Many watch updates while the first probe is still running: one probe.
  for (let i = 0; i < 5; i++) h.d.update(pods(a, b));
  release();
  await h.d.settle();
  assert.deepEqual(h.probes, ['registry.lab.test/app:1']);
  assert.deepEqual(h.events.map((e) => (e.ev.involvedObject as { name: string }).name).sort(), ['a', 'b']);
  // Same verdict, later updates within and after the minute: no new event.
  for (let i = 0; i < 5; i++) h.d.update(pods(a, b));
  await h.d.settle();
  assert.equal(h.probes.length, 1, 'no probe within the minute');
  h.clock.t += 61_000;
  h.d.update(pods(a, b));
  await h.d.settle();
  assert.equal(h.probes.length, 2, 'probed again after a minute');
  assert.equal(h.events.length, 2, 'same verdict: no new event');
  // The verdict changes: one more event per pod.
  verdict = fine;
  h.clock.t += 61_000;
  h.d.update(pods(a, b));
  await h.d.settle();
  assert.equal(h.events.length, 4);
  assert.deepEqual(
    h.events.slice(2).map((e) => e.ev.type),
    ['Normal', 'Normal'],
  );
});

test('a pod whose containers pull fine gets no event and no probe', async () => {
  const h = harness();
  h.d.update(pods(pod('ok', ['registry.lab.test/app:1'])));
  await h.d.settle();
  assert.equal(h.events.length, 0);
  assert.equal(h.probes.length, 0);
});

// End to end against the loopback API server: watch → discovery → Event stored on the pod.
let ca: TestCA;
let leaf: CertPair;
before(() => {
  ca = createCA();
  leaf = ca.issue('apiserver', { sans: ['127.0.0.1', 'localhost'] });
});
after(() => ca.cleanup());

test('through the API server: a pod on this node that starts failing gets exactly one event; a pod on another node none', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-discovery-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'discovery-token\n');
  const fake = await FakeApiServer.start({ ca, tokenFile, nodes: [], leaf });
  const client = createKubeClient({
    server: fake.url,
    caPem: ca.cert,
    tokens: new TokenSource(tokenFile, { clock: { now: () => 0 } }),
    timeoutMs: 2000,
  });
  const d = new PodDiscovery({
    node: 'node-a',
    subnet: '10.0.1.0/24',
    probeImage: (image) => Promise.resolve(refused(image)),
    createEvent: (ns, ev) => client.createEvent(ns, ev),
    onRegistries: () => undefined,
  });
  const w = new PodWatch({ reader: client, node: 'node-a', onChange: (p) => d.update(p) });
  t.after(async () => {
    await w.stop();
    await client.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const onA = pod('web', ['registry.lab.test/app:1']);
  const onB = {
    ...pod('other', ['registry.lab.test/app:1'], failing),
    spec: { nodeName: 'node-b', containers: [{ name: 'c0', image: 'registry.lab.test/app:1' }] },
  };
  fake.put({ kind: 'Pod', ...onA });
  fake.put({ kind: 'Pod', ...onB });
  w.start();
  await until(() => fake.openWatches === 1, 5000, 'watch open');
  const failingA = pod('web', ['registry.lab.test/app:1'], failing);
  fake.put({ kind: 'Pod', ...failingA });
  fake.put({ kind: 'Pod', ...failingA });
  await until(() => fake.events.length >= 1, 5000, 'event stored');
  await d.settle();
  await new Promise((r) => setTimeout(r, 50));
  await d.settle();
  const mine = fake.events.filter((e) => e.reason === DIAGNOSIS_REASON);
  assert.equal(mine.length, 1);
  assert.equal((mine[0]?.involvedObject as { name: string }).name, 'web');
});
