import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { until } from '../support/within.js';
import { createKubeClient, type KubeClient, type KubeReader } from '../../src/kube/client.js';
import { TokenSource } from '../../src/kube/in-cluster.js';
import { PodWatch, type KubePod } from '../../src/kube/pod-watch.js';
import type { Timers } from '../../src/shared/timers.js';

const TOKEN = 'pod-watch-token';
let ca: TestCA;
let leaf: CertPair;
before(() => {
  ca = createCA();
  leaf = ca.issue('apiserver-pod-watch', { sans: ['127.0.0.1', 'localhost'] });
});
after(() => {
  ca.cleanup();
});

export function pod(name: string, node: string, images: string[], ns = 'default'): Record<string, unknown> {
  return {
    kind: 'Pod',
    metadata: { name, namespace: ns, uid: `uid-${ns}-${name}` },
    spec: { nodeName: node, containers: images.map((image, i) => ({ name: `c${i}`, image })) },
    status: {},
  };
}

/** Timers that fire on the next turn and remember every delay asked for. */
function recordingTimers(): Timers & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    setTimeout(fn, ms) {
      delays.push(ms);
      return setImmediate(fn);
    },
    clearTimeout(h) {
      clearImmediate(h as ReturnType<typeof setImmediate>);
    },
  };
}

interface Env {
  fake: FakeApiServer;
  client: KubeClient & KubeReader;
  watches: PodWatch[];
}

async function setup(t: TestContext, timeoutMs = 2000): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-podwatch-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const fake = await FakeApiServer.start({ ca, tokenFile, nodes: [], leaf });
  const client = createKubeClient({
    server: fake.url,
    caPem: ca.cert,
    tokens: new TokenSource(tokenFile, { clock: { now: () => 0 } }),
    timeoutMs,
  });
  const watches: PodWatch[] = [];
  t.after(async () => {
    // Stop the watches first: closing the client waits for its open requests.
    await Promise.all(watches.map((w) => w.stop()));
    await client.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fake, client, watches };
}

function names(pods: ReadonlyMap<string, KubePod>): string[] {
  return [...pods.keys()].sort();
}

function start(env: Env, extra: { timers?: Timers; onForbidden?: (m: string) => void } = {}): { w: PodWatch; changes: string[][] } {
  const changes: string[][] = [];
  const w = new PodWatch({
    reader: env.client,
    node: 'node-a',
    onChange: (p) => changes.push(names(p)),
    timers: extra.timers ?? recordingTimers(),
    initialBackoffMs: 100,
    maxBackoffMs: 800,
    ...(extra.onForbidden ? { onForbidden: extra.onForbidden } : {}),
  });
  w.start();
  env.watches.push(w);
  return { w, changes };
}

const watchCount = (fake: FakeApiServer): number => fake.requests.filter((r) => r.path === '/api/v1/pods' && r.status === 200).length;

test('lists only the pods bound to the node, then follows the watch (add, change, delete)', async (t) => {
  const env = await setup(t);
  env.fake.put(pod('a', 'node-a', ['registry.one.test/x:1']));
  env.fake.put(pod('b', 'node-b', ['registry.two.test/y:1']));
  const { w } = start(env);
  await until(() => env.fake.openWatches === 1, 5000, 'watch open');
  assert.deepEqual(names(w.current()), ['default/a']);
  const list = env.fake.requests.find((r) => r.path === '/api/v1/pods');
  assert.ok(list);
  env.fake.put(pod('c', 'node-a', ['registry.three.test/z:1']));
  env.fake.put(pod('d', 'node-b', ['registry.four.test/z:1']));
  await until(() => w.current().size === 2, 5000, 'c added');
  env.fake.deletePod('default', 'a');
  await until(() => !w.current().has('default/a'), 5000, 'a deleted');
  assert.deepEqual(names(w.current()), ['default/c']);
  assert.deepEqual(w.history, ['list', 'watch']);
});

test('a watch the server closes is resumed from the last resourceVersion, without a relist', async (t) => {
  const env = await setup(t);
  env.fake.put(pod('a', 'node-a', ['one.test/x:1']));
  const { w } = start(env);
  await until(() => env.fake.openWatches === 1, 5000, 'watch open');
  env.fake.put(pod('b', 'node-a', ['one.test/x:1']));
  await until(() => w.current().size === 2, 5000, 'b added');
  env.fake.closeWatches();
  // A change while no watch is open must still arrive: the next watch starts from the last version seen.
  env.fake.put(pod('c', 'node-a', ['one.test/x:1']));
  await until(() => w.current().size === 3, 5000, 'c added after re-watch');
  assert.equal(w.history.filter((h) => h === 'list' || h === 'relist').length, 1, w.history.join(' '));
  assert.ok(w.history.filter((h) => h === 'watch').length >= 2);
});

test('410 Gone on the watch forces a relist, and the relist backs off', async (t) => {
  const env = await setup(t);
  env.fake.put(pod('a', 'node-a', ['one.test/x:1']));
  const timers = recordingTimers();
  const { w } = start(env, { timers });
  await until(() => env.fake.openWatches === 1, 5000, 'watch open');
  env.fake.put(pod('b', 'node-a', ['one.test/x:1']));
  await until(() => w.current().size === 2, 5000, 'b');
  // While no watch is open, a is deleted and the history compacted: resuming from the last version seen is impossible.
  env.fake.closeWatches();
  env.fake.deletePod('default', 'a');
  env.fake.compactPods();
  await until(() => w.history.includes('relist') && env.fake.openWatches === 1, 5000, 'relisted');
  assert.deepEqual(names(w.current()), ['default/b']);
  const i = w.history.indexOf('relist');
  assert.match(w.history[i - 1] ?? '', /^backoff:\d+$/, 'a relist waits first');
});

test('relist backoff doubles and stays bounded while the server keeps failing', async (t) => {
  const env = await setup(t);
  env.fake.inject(6, { status: 500 });
  const timers = recordingTimers();
  const { w } = start(env, { timers });
  await until(() => env.fake.openWatches === 1, 5000, 'watch open after errors');
  assert.deepEqual(timers.delays, [100, 200, 400, 800, 800, 800]);
  assert.equal(w.history.filter((h) => h === 'list').length, 7);
});

test('a slow server: a list that never answers times out and is retried', async (t) => {
  const env = await setup(t, 300);
  env.fake.put(pod('a', 'node-a', ['one.test/x:1']));
  env.fake.inject(1, { hang: true });
  env.fake.inject(1, { delayMs: 50 });
  const { w } = start(env);
  await until(() => env.fake.openWatches === 1, 5000, 'watch open');
  assert.deepEqual(names(w.current()), ['default/a']);
  assert.ok(w.history.some((h) => h.startsWith('backoff:')));
});

test('403 on the list: onForbidden once, the loop stops', async (t) => {
  const env = await setup(t);
  env.fake.deny('GET', /^\/api\/v1\/pods$/);
  const said: string[] = [];
  const { w } = start(env, { onForbidden: (m) => said.push(m) });
  await until(() => said.length === 1, 5000, 'forbidden reported');
  await w.stop();
  assert.equal(said.length, 1);
  assert.equal(watchCount(env.fake), 0);
  assert.doesNotMatch(said[0] ?? '', new RegExp(TOKEN));
});

test('stop() ends an open watch', async (t) => {
  const env = await setup(t);
  const { w } = start(env);
  await until(() => env.fake.openWatches === 1, 5000, 'watch open');
  await w.stop();
  await until(() => env.fake.openWatches === 0, 5000, 'watch closed');
});
