import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  headerValues,
  MAX_REGISTRY_ERRORS,
  parseRegistryErrors,
  ratelimitFromHeaders,
  retryAfterSeconds,
} from '../../src/net/registry-errors.js';

test('parseRegistryErrors: distribution bodies', () => {
  assert.deepEqual(parseRegistryErrors('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}'), [
    { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' },
  ]);
  assert.deepEqual(
    parseRegistryErrors('{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."},{"code":"denied"}]}'),
    [
      { code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' },
      { code: 'DENIED', message: '' },
    ],
  );
});

test('parseRegistryErrors: tolerant of junk', () => {
  for (const junk of [
    '',
    '<html>502 Bad Gateway</html>',
    'null',
    '42',
    '[]',
    '{"errors":"nope"}',
    '{"details":"x"}',
    '{"errors":[null,1,{"message":"no code"},{"code":""}]}',
  ]) {
    assert.deepEqual(parseRegistryErrors(junk), [], junk);
  }
});

test('ratelimitFromHeaders: Docker Hub headers', () => {
  assert.deepEqual(
    ratelimitFromHeaders({
      'ratelimit-limit': '100;w=21600',
      'ratelimit-remaining': '20;w=21600',
      'docker-ratelimit-source': '192.0.2.1',
    }),
    { limit: 100, remaining: 20, windowSeconds: 21600, source: '192.0.2.1' },
  );
  assert.deepEqual(ratelimitFromHeaders({ 'ratelimit-remaining': '0; w=3600' }), { remaining: 0, windowSeconds: 3600 });
  assert.deepEqual(ratelimitFromHeaders({}), {});
  assert.deepEqual(ratelimitFromHeaders({ 'ratelimit-limit': 'lots' }), {});
});

test('retryAfterSeconds: delta seconds and HTTP-date', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(retryAfterSeconds({ 'retry-after': '30' }, now), 30);
  assert.equal(retryAfterSeconds({ 'retry-after': 'Wed, 01 Jan 2025 00:02:00 GMT' }, now), 120);
  assert.equal(retryAfterSeconds({ 'retry-after': 'Tue, 31 Dec 2024 00:00:00 GMT' }, now), 0);
  assert.equal(retryAfterSeconds({ 'retry-after': 'soon' }, now), undefined);
  assert.equal(retryAfterSeconds({}, now), undefined);
});

test('headerValues: string, array, missing', () => {
  assert.deepEqual(headerValues({ 'www-authenticate': ['a', 'b'] }, 'WWW-Authenticate'), ['a', 'b']);
  assert.deepEqual(headerValues({ 'www-authenticate': 'a' }, 'www-authenticate'), ['a']);
  assert.deepEqual(headerValues({}, 'www-authenticate'), []);
});

test('parseRegistryErrors: bounded entries and lengths, linear on pathological bodies', () => {
  const many = JSON.stringify({ errors: Array.from({ length: 20_000 }, (_, i) => ({ code: `C${i}`, message: 'm' })) });
  const parsed = parseRegistryErrors(many);
  assert.equal(parsed.length, MAX_REGISTRY_ERRORS);
  const long = parseRegistryErrors(JSON.stringify({ errors: [{ code: 'X'.repeat(100_000), message: 'y'.repeat(1_000_000) }] }));
  assert.ok((long[0]?.code.length ?? 0) <= 64 && (long[0]?.message.length ?? 0) <= 1024);
  for (const body of ['['.repeat(1_000_000), '{"errors":['.repeat(100_000), `{"errors":[{"code":"${'\\'.repeat(500_000)}"}]}`]) {
    const t = process.cpuUsage();
    assert.doesNotThrow(() => parseRegistryErrors(body));
    const used = process.cpuUsage(t);
    assert.ok((used.user + used.system) / 1000 < 3000, `${(used.user + used.system) / 1000} ms`);
  }
  const t = process.cpuUsage();
  ratelimitFromHeaders({
    'ratelimit-limit': `${'1'.repeat(1_000_000)}${' '.repeat(1_000_000)}x`,
    'ratelimit-remaining': `0${';w='.repeat(300_000)}`,
  });
  retryAfterSeconds({ 'retry-after': `${'9'.repeat(1_000_000)}x` }, 0);
  const used = process.cpuUsage(t);
  assert.ok((used.user + used.system) / 1000 < 3000, `${(used.user + used.system) / 1000} ms`);
});
