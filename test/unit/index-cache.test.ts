/**
 * IndexCache.exclusive: index reads of one owner never overlap, so a run that
 * probes many targets holds at most one index body and its parse at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IndexCache } from '../../src/probe/index-cache.js';

test('exclusive: reads of one owner run one at a time, in order, and a failing read does not block the next', async () => {
  const cache = new IndexCache();
  let running = 0;
  let most = 0;
  const order: number[] = [];
  const read =
    (i: number, fail = false) =>
    async (): Promise<number> => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setImmediate(r));
      order.push(i);
      running--;
      if (fail) throw new Error(`read ${i} failed`);
      return i;
    };
  const results = await Promise.allSettled([
    cache.exclusive(read(1)),
    cache.exclusive(read(2, true)),
    cache.exclusive(read(3)),
    cache.exclusive(read(4)),
  ]);
  assert.equal(most, 1, 'two reads overlapped');
  assert.deepEqual(order, [1, 2, 3, 4]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  // Another owner is not held up by this one.
  const other = new IndexCache();
  assert.equal(await other.exclusive(() => Promise.resolve('free')), 'free');
});
