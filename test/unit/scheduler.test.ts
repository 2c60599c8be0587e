import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TargetConfig } from '../../src/agent/config.js';
import { jitterOffsetMs, RunAbortedError, Scheduler, type Timers } from '../../src/agent/scheduler.js';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A fake monotonic clock and timer queue; timers fire in time order, `lateMs` after they are due. */
class FakeTime implements Timers {
  t = 0;
  #seq = 0;
  readonly pending = new Map<number, { at: number; fn: () => void }>();
  constructor(readonly lateMs = 0) {}
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.#seq;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };
  /** Fire every timer due up to now + ms (letting promises settle in between). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.pending) {
        const fireAt = entry[1].at + this.lateMs;
        if (fireAt <= end && (!next || fireAt < next[1].at + this.lateMs)) next = entry;
      }
      if (!next) break;
      this.pending.delete(next[0]);
      this.t = Math.max(this.t, next[1].at + this.lateMs);
      next[1].fn();
    }
    this.t = end;
    await flush();
  }
}

function target(name: string, over: Partial<TargetConfig> = {}): TargetConfig {
  return { target: name, kind: 'image', intervalMs: 60_000, timeoutMs: 10_000, jitter: 0, ...over };
}

interface Recorder {
  starts: Record<string, number[]>;
  active: number;
  maxActive: number;
  activeByTarget: Map<string, number>;
  maxPerTarget: number;
}

/** The abort reason, to reject with (the scheduler aborts with a RunAbortedError). */
const abortReason = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error('aborted without an Error reason');

/** A run that takes durations[target] ms of fake time (default 10), recording starts and overlap. */
function timedRun(time: FakeTime, durations: Record<string, number> = {}) {
  const rec: Recorder = { starts: {}, active: 0, maxActive: 0, activeByTarget: new Map(), maxPerTarget: 0 };
  const run = (t: TargetConfig, signal: AbortSignal): Promise<void> => {
    (rec.starts[t.target] ??= []).push(time.now());
    rec.active++;
    rec.maxActive = Math.max(rec.maxActive, rec.active);
    const mine = (rec.activeByTarget.get(t.target) ?? 0) + 1;
    rec.activeByTarget.set(t.target, mine);
    rec.maxPerTarget = Math.max(rec.maxPerTarget, mine);
    const ms = durations[t.target] ?? 10;
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        rec.active--;
        rec.activeByTarget.set(t.target, (rec.activeByTarget.get(t.target) ?? 1) - 1);
      };
      if (ms === Infinity) {
        signal.addEventListener('abort', () => {
          done();
          reject(abortReason(signal));
        });
        return;
      }
      time.setTimeout(() => {
        done();
        resolve();
      }, ms);
    });
  };
  return { rec, run };
}

test('offsets are deterministic, inside the jitter window, and differ by node', () => {
  const t = target('registry.lab.test/app/api:v1', { intervalMs: 60_000, jitter: 0.1 });
  const offsets = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const o = jitterOffsetMs(`node-${i}`, t);
    assert.ok(o >= 0 && o < 6_000, String(o));
    assert.equal(jitterOffsetMs(`node-${i}`, t), o);
    offsets.add(o);
  }
  assert.ok(offsets.size > 190, `only ${offsets.size} distinct offsets`);
  // Spread over the window, not bunched at one end.
  const sorted = [...offsets].sort((a, b) => a - b);
  assert.ok((sorted[0] ?? 0) < 600 && (sorted.at(-1) ?? 0) > 5_400);
  assert.notEqual(jitterOffsetMs('node-a', t), jitterOffsetMs('node-a', target('ghcr.io', { jitter: 0.1 })));
  assert.equal(jitterOffsetMs('node-a', target('x', { jitter: 0 })), 0);
});

test('first run at the node offset, then every interval with no drift', async () => {
  const time = new FakeTime(7); // every timer fires 7 ms late
  const t = target('a', { intervalMs: 1_000, jitter: 0.5 });
  const { rec, run } = timedRun(time, { a: 100 });
  const s = new Scheduler({ targets: [t], concurrency: 1, node: 'node-x', run, clock: time, timers: time });
  s.start();
  const offset = jitterOffsetMs('node-x', t);
  assert.ok(offset > 0);
  await time.advance(1_000 * 500);
  const starts = rec.starts.a ?? [];
  assert.ok(starts.length >= 499);
  starts.forEach((at, k) => assert.equal(at, offset + k * 1_000 + 7, `run ${k}`));
  await s.stop(0);
});

test('at most `concurrency` runs in flight; the rest start as slots free up', async () => {
  const time = new FakeTime();
  const names = Array.from({ length: 10 }, (_, i) => `t${i}`);
  const { rec, run } = timedRun(time, Object.fromEntries(names.map((n) => [n, 1_000])));
  const s = new Scheduler({ targets: names.map((n) => target(n)), concurrency: 3, node: 'n', run, clock: time, timers: time });
  s.start();
  await time.advance(5_000);
  assert.equal(rec.maxActive, 3);
  const firstStarts = names.map((n) => rec.starts[n]?.[0]).sort((a, b) => (a ?? 0) - (b ?? 0));
  assert.deepEqual(firstStarts, [0, 0, 0, 1_000, 1_000, 1_000, 2_000, 2_000, 2_000, 3_000]);
  await s.stop(0);
});

test('one run per target in flight; slots missed while running are skipped, never queued', async () => {
  const time = new FakeTime();
  const { rec, run } = timedRun(time, { slow: 2_500 });
  const s = new Scheduler({
    targets: [target('slow', { intervalMs: 1_000, timeoutMs: 1_000 })],
    concurrency: 4,
    node: 'n',
    run,
    clock: time,
    timers: time,
    overrunGraceMs: 10_000,
  });
  s.start();
  await time.advance(9_000);
  assert.equal(rec.maxPerTarget, 1);
  // Runs 0..2500, then waits for the 3000 slot (not an immediate catch-up run).
  assert.deepEqual(rec.starts.slow, [0, 3_000, 6_000, 9_000]);
  assert.equal(s.stats()[0]?.skipped, 6);
  await s.stop(0);
});

test('a hung target does not delay the others', async () => {
  const time = new FakeTime();
  const { rec, run } = timedRun(time, { hung: Infinity, fast: 50 });
  const s = new Scheduler({
    targets: [target('hung', { intervalMs: 1_000, timeoutMs: 1_000 }), target('fast', { intervalMs: 1_000, timeoutMs: 1_000 })],
    concurrency: 2,
    node: 'n',
    run,
    clock: time,
    timers: time,
    overrunGraceMs: 1_000_000,
  });
  s.start();
  await time.advance(20_000);
  assert.deepEqual(rec.starts.hung, [0]);
  assert.deepEqual(
    rec.starts.fast,
    Array.from({ length: 21 }, (_, k) => k * 1_000),
  );
  await s.stop(0);
});

test('a run past its timeout + overrun grace has its signal aborted', async () => {
  const time = new FakeTime();
  const seen: { reason?: unknown } = {};
  const run = (_t: TargetConfig, signal: AbortSignal): Promise<void> =>
    new Promise((_, reject) => signal.addEventListener('abort', () => reject((seen.reason = abortReason(signal)))));
  const s = new Scheduler({
    targets: [target('a', { intervalMs: 60_000, timeoutMs: 10_000 })],
    concurrency: 1,
    node: 'n',
    run,
    clock: time,
    timers: time,
    overrunGraceMs: 2_000,
  });
  s.start();
  await time.advance(11_999);
  assert.ok(!('reason' in seen), 'not aborted before timeout + grace');
  assert.equal(s.stats()[0]?.inFlight, true);
  await time.advance(1);
  assert.ok(seen.reason instanceof RunAbortedError);
  assert.equal(seen.reason.why, 'overrun');
  assert.equal(s.stats()[0]?.inFlight, false);
  assert.equal(s.stats()[0]?.failures, 1);
  await s.stop(0);
});

test('a stalled process runs once on wake-up and skips the slots it slept through', async () => {
  const time = new FakeTime();
  const { rec, run } = timedRun(time);
  const s = new Scheduler({ targets: [target('a', { intervalMs: 1_000 })], concurrency: 1, node: 'n', run, clock: time, timers: time });
  s.start();
  await time.advance(500);
  time.t += 5_200; // the event loop was blocked: no timer fired
  await time.advance(0);
  assert.deepEqual(rec.starts.a, [0, 5_700]);
  assert.equal(s.stats()[0]?.skipped, 4);
  await time.advance(400);
  assert.deepEqual(rec.starts.a, [0, 5_700, 6_000]);
  await s.stop(0);
});

test('stop waits for in-flight runs up to the grace, then aborts the rest', async () => {
  const time = new FakeTime();
  const { rec, run } = timedRun(time, { quick: 500, hung: Infinity });
  const s = new Scheduler({
    targets: [target('quick'), target('hung'), target('later', { jitter: 0.5 })],
    concurrency: 4,
    node: 'n',
    run,
    clock: time,
    timers: time,
  });
  s.start();
  await time.advance(100);
  assert.equal(rec.active, 2);
  let result: { finished: number; aborted: number } | undefined;
  void s.stop(1_000).then((r) => (result = r));
  await time.advance(999);
  assert.equal(result, undefined);
  await time.advance(1);
  assert.deepEqual(result, { finished: 1, aborted: 1 });
  assert.equal(rec.active, 0);
  await time.advance(600_000);
  assert.equal(rec.starts.later, undefined, 'nothing scheduled after stop');
  assert.equal(time.pending.size, 0, 'no timers left behind');
});

test('stop resolves as soon as in-flight runs finish within the grace', async () => {
  const time = new FakeTime();
  const { run } = timedRun(time, { a: 300, b: 200 });
  const s = new Scheduler({ targets: [target('a'), target('b')], concurrency: 2, node: 'n', run, clock: time, timers: time });
  s.start();
  await time.advance(0);
  let result: { finished: number; aborted: number } | undefined;
  void s.stop(10_000).then((r) => (result = r));
  await time.advance(300);
  assert.deepEqual(result, { finished: 2, aborted: 0 });
  assert.equal(time.pending.size, 0);
  assert.deepEqual(await s.stop(10_000), { finished: 0, aborted: 0 });
});

test('updateTargets keeps unchanged targets, adds new ones and drops removed ones', async () => {
  const time = new FakeTime();
  const { rec, run } = timedRun(time);
  const keep = target('keep', { intervalMs: 1_000 });
  const s = new Scheduler({
    targets: [keep, target('drop', { intervalMs: 1_000 }), target('slower', { intervalMs: 1_000 })],
    concurrency: 4,
    node: 'n',
    run,
    clock: time,
    timers: time,
  });
  s.start();
  await time.advance(2_500);
  assert.equal(rec.starts.keep?.length, 3);
  s.updateTargets([{ ...keep }, target('slower', { intervalMs: 2_000 }), target('new', { intervalMs: 1_000 })]);
  await time.advance(4_000);
  assert.deepEqual(rec.starts.keep, [0, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000]);
  assert.deepEqual(rec.starts.drop, [0, 1_000, 2_000]);
  // Last slot 2000, next was 3000: with the new interval it is 2000 + 2000.
  assert.deepEqual(rec.starts.slower, [0, 1_000, 2_000, 4_000, 6_000]);
  assert.deepEqual(rec.starts.new, [2_500, 3_500, 4_500, 5_500, 6_500]);
  assert.deepEqual(
    s.stats().map((x) => [x.target, x.runs]),
    [
      ['keep', 7],
      ['slower', 5],
      ['new', 5],
    ],
  );
  assert.equal(s.sizes().entries, 3);
  await s.stop(0);
});

test('a target removed and re-added while running never runs twice at once', async () => {
  const time = new FakeTime();
  const { rec, run } = timedRun(time, { a: 1_500 });
  const a = target('a', { intervalMs: 1_000, timeoutMs: 1_000 });
  const s = new Scheduler({ targets: [a], concurrency: 4, node: 'n', run, clock: time, timers: time });
  s.start();
  await time.advance(100);
  s.updateTargets([]);
  s.updateTargets([a]);
  await time.advance(5_000);
  assert.equal(rec.maxPerTarget, 1);
  // Revived at 100 with its old run going until 1500: the 100 and 1100 slots are skipped.
  assert.deepEqual(rec.starts.a, [0, 2_100, 4_100]);
  assert.equal(s.stats().length, 1);
  await s.stop(0);
});

test('errors from run are caught and logged; the target keeps its schedule', async () => {
  const time = new FakeTime();
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const logged: object[] = [];
  const log = { debug() {}, info() {}, warn() {}, error: (o: object) => void logged.push(o) };
  let n = 0;
  const run = async (): Promise<void> => {
    n++;
    await Promise.resolve();
    throw new Error('async boom');
  };
  const syncThrow = (t: TargetConfig): Promise<void> => {
    if (t.target === 'sync') {
      n++;
      throw new Error('thrown before any promise');
    }
    return run();
  };
  try {
    const s = new Scheduler({
      targets: [target('sync', { intervalMs: 1_000 }), target('async', { intervalMs: 1_000 })],
      concurrency: 2,
      node: 'n',
      run: syncThrow,
      clock: time,
      timers: time,
      log,
    });
    s.start();
    await time.advance(2_500);
    await flush();
    assert.equal(n, 6);
    assert.deepEqual(
      s.stats().map((x) => x.failures),
      [3, 3],
    );
    assert.equal(logged.length, 6);
    assert.deepEqual(unhandled, []);
    await s.stop(0);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('many cycles do not grow internal structures or pending timers', async () => {
  const time = new FakeTime(3);
  const names = ['a', 'b', 'c', 'd', 'e'];
  const { rec, run } = timedRun(time, { a: 50, b: 1_500, c: 10, d: 900, e: 10 });
  const s = new Scheduler({
    targets: names.map((n, i) => target(n, { intervalMs: 1_000 + i * 7, timeoutMs: 1_000, jitter: 0.3 })),
    concurrency: 2,
    node: 'n',
    run,
    clock: time,
    timers: time,
  });
  s.start();
  await time.advance(10_000);
  const early = { sizes: s.sizes(), pending: time.pending.size };
  await time.advance(2_000_000);
  assert.ok((rec.starts.c?.length ?? 0) > 1_900);
  const late = s.sizes();
  assert.equal(late.entries, 5);
  assert.ok(late.queue <= 3 && late.running <= 2, JSON.stringify(late));
  assert.ok(late.timers <= 5 + 2 && time.pending.size <= early.pending + 4, `${late.timers} ${time.pending.size}`);
  assert.ok(early.sizes.timers <= 7);
  await s.stop(0);
});
