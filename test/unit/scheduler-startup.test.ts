/**
 * Start-up (issue 10): with 200 targets the first cycle is spread over the
 * jitter window, not started all at once, and the agent is ready — serving,
 * every first probe scheduled — before any probe has finished. Injected clock
 * and timers; the HTTP server is real, on loopback.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TargetConfig } from '../../src/agent/config.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { jitterOffsetMs, Scheduler } from '../../src/agent/scheduler.js';
import { createServer } from '../../src/agent/server.js';
import { StatusStore } from '../../src/agent/status-store.js';
import { silentLog, type ProbeResult } from '../../src/model/types.js';
import { FakeTime } from '../support/fake-time.js';

const INTERVAL = 60_000;
const JITTER = 0.1;
const WINDOW = INTERVAL * JITTER;

const targets: TargetConfig[] = Array.from({ length: 200 }, (_, i) => ({
  target: `registry.lab.test/team/app-${i}:v1`,
  kind: 'image',
  intervalMs: INTERVAL,
  timeoutMs: 10_000,
  jitter: JITTER,
}));

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Runs that take `ms` of fake time; first start and first finish per target recorded. */
function recorder(time: FakeTime, ms: number) {
  const firstStart = new Map<string, number>();
  const finished: string[] = [];
  const run = (t: TargetConfig): Promise<void> => {
    if (!firstStart.has(t.target)) firstStart.set(t.target, time.now());
    return new Promise((resolve) =>
      time.setTimeout(() => {
        finished.push(t.target);
        resolve();
      }, ms),
    );
  };
  return { firstStart, finished, run };
}

test('200 targets: the first cycle is spread across the jitter window, not started at once', async () => {
  const time = new FakeTime(0);
  const { firstStart, run } = recorder(time, 50);
  const s = new Scheduler({ targets, concurrency: 200, node: 'node-a', run, clock: time, timers: time });
  s.start();
  await flush();
  // start() runs nothing itself; a probe starts only when its slot comes.
  assert.ok(firstStart.size <= 1, `${firstStart.size} probes started inside start()`);
  // Every first slot lies in [start, start + window).
  for (const st of s.stats()) assert.ok(st.nextDue === null || (st.nextDue >= 0 && st.nextDue < WINDOW), `${st.target} due ${st.nextDue}`);
  time.advance(WINDOW);
  assert.equal(firstStart.size, 200, 'every target probed once within the window');
  const starts = [...firstStart.values()];
  for (const t of targets) assert.equal(firstStart.get(t.target), jitterOffsetMs('node-a', t), t.target);
  // Ten equal slices of the window each hold a share of the first probes (20 on average), none holds a pile.
  const slices = Array.from(
    { length: 10 },
    (_, k) => starts.filter((at) => at >= (k * WINDOW) / 10 && at < ((k + 1) * WINDOW) / 10).length,
  );
  for (const [k, n] of slices.entries())
    assert.ok(n >= 8 && n <= 40, `slice ${k} of the window has ${n} first probes: ${slices.join(' ')}`);
  // At most a handful start in the same 30 ms.
  const sorted = [...starts].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] ?? 0) - (sorted[j] ?? 0) >= 30) j++;
    most = Math.max(most, i - j + 1);
  }
  assert.ok(most <= 6, `${most} first probes within 30 ms`);
  await s.stop(0);
});

function result(target: string): ProbeResult {
  return {
    target,
    image: target,
    registry: 'registry.lab.test',
    ok: true,
    stage: null,
    reason: null,
    cause: null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0.01,
    steps: [],
  };
}

test('/readyz answers 200 as soon as the first probes are scheduled, before any probe finished', async () => {
  const time = new FakeTime(0);
  const { firstStart, finished, run } = recorder(time, 5_000);
  const s = new Scheduler({ targets, concurrency: 8, node: 'node-a', run, clock: time, timers: time });
  const server = createServer({
    metrics: new AgentMetrics({ defaultMetrics: false }),
    store: new StatusStore(),
    log: silentLog,
    allowed: () => targets,
    effectiveConfig: () => ({}),
    ready: () => s.scheduled,
    probeNow: (t) => Promise.resolve(result(t)),
  });
  const { port } = await server.listen('127.0.0.1', 0);
  const readyz = async (): Promise<number> => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
  try {
    assert.equal(await readyz(), 503, 'not ready before the scheduler started');
    s.start();
    assert.equal(await readyz(), 200);
    assert.equal(finished.length, 0, 'no probe has finished');
    time.advance(WINDOW / 2);
    assert.ok(firstStart.size > 0, 'probes have started');
    assert.deepEqual(finished, [], 'none has finished');
    assert.equal(await readyz(), 200);
    await s.stop(0);
    assert.equal(await readyz(), 503, 'not ready once stopping');
  } finally {
    await server.close();
  }
});
