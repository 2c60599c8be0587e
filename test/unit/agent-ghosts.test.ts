/**
 * No ghosts after a reload: a target removed while its probe was in flight
 * must not come back in the metrics, the status store or the node's
 * annotation and condition when that probe's result arrives late; and the
 * node writer's set of targets follows reloads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { StatusStore } from '../../src/agent/status-store.js';
import { NodeWriter, type Timers } from '../../src/kube/node-writer.js';
import type { KubeClient, KubeNode } from '../../src/kube/client.js';
import { ANNOTATION_KEY, CONDITION_TYPE, type NodeCondition } from '../../src/kube/patches.js';
import { causeOf, stageOf, type Reason } from '../../src/diagnosis/catalog.js';
import type { ProbeResult } from '../../src/model/types.js';

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
    steps: reason ? [{ stage: stageOf(reason) ?? 'tcp', ok: false, seconds: 0.01, reason }] : [],
  };
}

/** An in-memory API server for one node: merge patch on annotations, conditions merged by type. */
class MemoryKube implements KubeClient {
  annotations: Record<string, string> = {};
  conditions: NodeCondition[] = [];
  patches = 0;
  getNode(): Promise<KubeNode> {
    return Promise.resolve(this.node());
  }
  patchNode(_name: string, patch: object): Promise<KubeNode> {
    this.patches++;
    const ann = (patch as { metadata?: { annotations?: Record<string, string | null> } }).metadata?.annotations ?? {};
    const next = new Map(Object.entries(this.annotations));
    for (const [k, v] of Object.entries(ann)) {
      if (v === null) next.delete(k);
      else next.set(k, v);
    }
    this.annotations = Object.fromEntries(next);
    return Promise.resolve(this.node());
  }
  patchNodeStatus(_name: string, patch: object): Promise<KubeNode> {
    for (const c of (patch as { status: { conditions: NodeCondition[] } }).status.conditions) {
      this.conditions = [...this.conditions.filter((x) => x.type !== c.type), { ...this.conditions.find((x) => x.type === c.type), ...c }];
    }
    return Promise.resolve(this.node());
  }
  async createEvent(): Promise<void> {}
  async close(): Promise<void> {}
  registries(): string[] {
    const raw = this.annotations[ANNOTATION_KEY];
    return raw ? Object.keys((JSON.parse(raw) as { registries: object }).registries).sort() : [];
  }
  condition(): NodeCondition | undefined {
    return this.conditions.find((c) => c.type === CONDITION_TYPE);
  }
  private node(): KubeNode {
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n', annotations: { ...this.annotations } },
      status: { conditions: this.conditions },
    };
  }
}

const noTimers: Timers = { setTimeout: () => 0, clearTimeout: () => undefined };

test('metrics: a result for a target removed by reload does not bring its series back', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.setTargets(['ghcr.io', 'quay.io']);
  m.record('ghcr.io', result('ghcr.io', 'ghcr.io', 'tcp_refused'), 1000);
  m.record('quay.io', result('quay.io', 'quay.io', null), 1000);
  assert.match(await m.text(), /pullprobe_failure_info\{registry="ghcr\.io",target="ghcr\.io"[^}]*\} 1/);

  m.setTargets(['quay.io']);
  assert.doesNotMatch(await m.text(), /target="ghcr\.io"/, 'removed by reload');
  // The probe that was in flight during the reload finishes now.
  assert.equal(m.record('ghcr.io', result('ghcr.io', 'ghcr.io', 'tcp_refused'), 1060), false);
  const text = await m.text();
  assert.doesNotMatch(text, /target="ghcr\.io"/, 'no ghost series, no alert that never clears');
  assert.match(text, /pullprobe_registry_up\{registry="quay\.io",target="quay\.io"\} 1/);

  // Added back by a later reload: recorded again.
  m.setTargets(['quay.io', 'ghcr.io']);
  assert.equal(m.record('ghcr.io', result('ghcr.io', 'ghcr.io', null), 1120), true);
  assert.match(await m.text(), /pullprobe_registry_up\{registry="ghcr\.io",target="ghcr\.io"\} 1/);
});

test('status store: a late result for a removed target is dropped', () => {
  const store = new StatusStore({ wallNow: () => 5000 });
  store.setTargets(['ghcr.io', 'quay.io']);
  store.update('ghcr.io', result('ghcr.io', 'ghcr.io', 'tcp_refused'));
  store.setTargets(['quay.io']);
  const late = store.update('ghcr.io', result('ghcr.io', 'ghcr.io', 'tcp_refused'));
  assert.deepEqual(late, { changed: false, recorded: false });
  const snap = store.snapshot();
  assert.deepEqual(
    snap.targets.map((t) => t.target),
    ['quay.io'],
  );
  assert.ok(
    snap.recentFailures.every((f) => f.clearedAt !== null),
    'the removed target has no open failure',
  );
  assert.equal(store.get('ghcr.io'), undefined);
});

test('node writer: a reload that removes a registry removes it from the annotation and the condition', async () => {
  const kube = new MemoryKube();
  let now = Date.UTC(2025, 4, 1);
  const w = new NodeWriter({
    client: kube,
    node: 'n',
    wallNow: () => now,
    timers: noTimers,
    random: () => 0.5,
    outputs: { events: false },
    expectedTargets: ['ghcr.io/a/b:1', 'quay.io/c/d:1'],
  });
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', null), result('quay.io/c/d:1', 'quay.io', 'tcp_refused')]);
  await w.whenIdle();
  assert.deepEqual(kube.registries(), ['ghcr.io', 'quay.io']);
  assert.equal(kube.condition()?.status, 'False');

  now += 1000;
  w.setTargets(['ghcr.io/a/b:1']);
  await w.whenIdle();
  assert.deepEqual(kube.registries(), ['ghcr.io'], 'the removed registry is really gone from the annotation');
  assert.equal(kube.condition()?.status, 'True');
  assert.doesNotMatch(kube.condition()?.message ?? '', /quay/);

  // The in-flight probe of the removed target finishes after the reload.
  now += 1000;
  w.update([result('quay.io/c/d:1', 'quay.io', 'tcp_refused')]);
  await w.whenIdle();
  assert.deepEqual(kube.registries(), ['ghcr.io']);
  assert.equal(kube.condition()?.status, 'True');
  await w.stop();
});

test('node writer: a target added by reload does not hold back later writes', async () => {
  const kube = new MemoryKube();
  let now = Date.UTC(2025, 4, 1);
  const w = new NodeWriter({
    client: kube,
    node: 'n',
    wallNow: () => now,
    timers: noTimers,
    random: () => 0.5,
    outputs: { events: false },
    expectedTargets: ['ghcr.io/a/b:1'],
  });
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', null)]);
  await w.whenIdle();
  w.setTargets(['ghcr.io/a/b:1', 'quay.io/c/d:1']);
  now += 1000;
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', 'tcp_refused')]);
  await w.whenIdle();
  assert.equal(kube.condition()?.status, 'False', 'ghcr.io failing is written without waiting for quay.io');
  now += 1000;
  w.update([result('quay.io/c/d:1', 'quay.io', null)]);
  await w.whenIdle();
  assert.deepEqual(kube.registries(), ['ghcr.io', 'quay.io']);
  await w.stop();
});

test('node writer: removing the target still awaited before the first write lets the first write go out', async () => {
  const kube = new MemoryKube();
  const w = new NodeWriter({
    client: kube,
    node: 'n',
    wallNow: () => Date.UTC(2025, 4, 1),
    timers: noTimers,
    random: () => 0.5,
    outputs: { events: false },
    expectedTargets: ['ghcr.io/a/b:1', 'quay.io/c/d:1'],
  });
  w.update([result('ghcr.io/a/b:1', 'ghcr.io', null)]);
  await w.whenIdle();
  assert.deepEqual(kube.registries(), []);
  w.setTargets(['ghcr.io/a/b:1']);
  await w.whenIdle();
  assert.deepEqual(kube.registries(), ['ghcr.io']);
  await w.stop();
});
