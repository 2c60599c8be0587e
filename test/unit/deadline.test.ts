import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stageDeadline } from '../../src/net/deadline.js';
import { silentLog, type ProbeContext } from '../../src/model/types.js';
import { FakeTime } from '../support/fake-time.js';

function ctx(time: FakeTime, timeoutMs: number, signal = new AbortController().signal): ProbeContext {
  return { signal, deadlineAt: time.now() + timeoutMs, clock: time, timers: time, log: silentLog, wallNow: () => 0 };
}

test('stageDeadline fires once, after its own time or at the probe deadline, whichever is first', () => {
  const time = new FakeTime();
  let own = 0;
  const a = stageDeadline(ctx(time, 10_000), 200, () => own++);
  let capped = 0;
  const b = stageDeadline(ctx(time, 150), 30_000, () => capped++);
  time.advance(149);
  assert.deepEqual([own, capped, a.timedOut(), b.timedOut()], [0, 0, false, false]);
  time.advance(1);
  assert.deepEqual([own, capped, b.timedOut()], [0, 1, true]);
  time.advance(50);
  time.advance(1000);
  assert.deepEqual([own, capped, a.timedOut()], [1, 1, true]);
});

test('stageDeadline: dispose() stops it; a probe aborted later fires it at once', () => {
  const time = new FakeTime();
  let fired = 0;
  stageDeadline(ctx(time, 10_000), 100, () => fired++).dispose();
  time.advance(1000);
  assert.equal(fired, 0);
  const probe = new AbortController();
  const d = stageDeadline(ctx(time, 10_000, probe.signal), 100, () => fired++);
  probe.abort();
  assert.equal(fired, 1);
  assert.equal(d.timedOut(), true);
  time.advance(1000);
  assert.equal(fired, 1, 'once');
});

test('stageDeadline on a probe already aborted fires in a microtask, never inside the call', async () => {
  const time = new FakeTime();
  const probe = new AbortController();
  probe.abort();
  let fired = 0;
  stageDeadline(ctx(time, 10_000, probe.signal), 100, () => fired++);
  assert.equal(fired, 0, 'not inside the call: the caller is still setting up');
  await Promise.resolve();
  assert.equal(fired, 1);
  let disposedFired = 0;
  stageDeadline(ctx(time, 10_000, probe.signal), 100, () => disposedFired++).dispose();
  await Promise.resolve();
  assert.equal(disposedFired, 0, 'disposed before the microtask');
});
