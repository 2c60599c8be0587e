import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SingleFlight } from '../../src/agent/single-flight.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function fakeClock(): { now(): number; t: number } {
  return {
    t: 0,
    now() {
      return this.t;
    },
  };
}

test('concurrent calls for one key share one call', async () => {
  const sf = new SingleFlight<number>();
  const d = deferred<number>();
  let calls = 0;
  const fn = (): Promise<number> => {
    calls++;
    return d.promise;
  };
  const a = sf.do('k', fn);
  const b = sf.do('k', fn);
  const other = sf.do('other', () => Promise.resolve(7));
  d.resolve(42);
  assert.deepEqual(await a, { value: 42, shared: false, cached: false });
  assert.deepEqual(await b, { value: 42, shared: true, cached: false });
  assert.deepEqual(await other, { value: 7, shared: false, cached: false });
  assert.equal(calls, 1);
  assert.deepEqual(sf.sizes(), { inflight: 0, cached: 0 });
});

test('a fulfilled value is cached for cacheMs, then fetched again', async () => {
  const clock = fakeClock();
  const sf = new SingleFlight<number>({ cacheMs: 1000, clock });
  let calls = 0;
  const fn = (): Promise<number> => Promise.resolve(++calls);
  assert.deepEqual(await sf.do('k', fn), { value: 1, shared: false, cached: false });
  clock.t = 999;
  assert.deepEqual(await sf.do('k', fn), { value: 1, shared: false, cached: true });
  clock.t = 1000;
  assert.deepEqual(await sf.do('k', fn), { value: 2, shared: false, cached: false });
  assert.equal(calls, 2);
});

test('a rejection reaches every joined caller and is not cached', async () => {
  const clock = fakeClock();
  const sf = new SingleFlight<number>({ cacheMs: 60_000, clock });
  const d = deferred<number>();
  let calls = 0;
  const a = sf.do('k', () => {
    calls++;
    return d.promise;
  });
  const b = sf.do('k', () => Promise.resolve(0));
  d.reject(Object.assign(new Error('boom'), { code: 'EBOOM' }));
  await assert.rejects(a, { code: 'EBOOM' });
  await assert.rejects(b, { code: 'EBOOM' });
  assert.deepEqual(sf.sizes(), { inflight: 0, cached: 0 });
  const again = await sf.do('k', () => {
    calls++;
    return Promise.resolve(5);
  });
  assert.deepEqual(again, { value: 5, shared: false, cached: false });
  assert.equal(calls, 2);
});

test('a synchronous throw in fn becomes a rejection and frees the key', async () => {
  const sf = new SingleFlight<number>();
  await assert.rejects(
    sf.do('k', () => {
      throw Object.assign(new Error('sync'), { code: 'ESYNC' });
    }),
    { code: 'ESYNC' },
  );
  assert.equal(sf.sizes().inflight, 0);
  assert.equal((await sf.do('k', () => Promise.resolve(1))).value, 1);
});

test('the cache is bounded: the oldest entry is evicted', async () => {
  const clock = fakeClock();
  const sf = new SingleFlight<string>({ cacheMs: 60_000, maxEntries: 3, clock });
  for (let i = 0; i < 5; i++) {
    clock.t = i;
    await sf.do(`k${i}`, () => Promise.resolve(`v${i}`));
  }
  assert.equal(sf.sizes().cached, 3);
  assert.equal((await sf.do('k4', () => Promise.resolve('fresh'))).cached, true);
  assert.equal((await sf.do('k2', () => Promise.resolve('fresh'))).cached, true);
  assert.deepEqual(await sf.do('k0', () => Promise.resolve('fresh')), { value: 'fresh', shared: false, cached: false });
});

test('expired entries are swept on insert, so many keys over time do not pile up', async () => {
  const clock = fakeClock();
  const sf = new SingleFlight<number>({ cacheMs: 100, maxEntries: 1000, clock });
  for (let i = 0; i < 5000; i++) {
    clock.t = i * 10;
    await sf.do(`k${i}`, () => Promise.resolve(i));
  }
  // Only entries younger than cacheMs (100 ms / 10 ms per insert) survive.
  assert.ok(sf.sizes().cached <= 10, String(sf.sizes().cached));
});

test('forget drops one cached value', async () => {
  const sf = new SingleFlight<number>({ cacheMs: 60_000, clock: fakeClock() });
  await sf.do('k', () => Promise.resolve(1));
  sf.forget('k');
  assert.equal((await sf.do('k', () => Promise.resolve(2))).value, 2);
});
