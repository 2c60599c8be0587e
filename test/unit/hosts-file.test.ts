import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { lookupHosts, parseHosts } from '../../src/node-config/hosts-file.js';

const table = parseHosts(readFileSync(new URL('../fixtures/resolv/hosts', import.meta.url), 'utf8'));

test('every matching line counts, IPv4 first then IPv6, case-insensitive', () => {
  assert.deepEqual(lookupHosts(table, 'registry.lab.test'), ['10.231.100.10', '10.231.100.11', 'fd00::10']);
  assert.deepEqual(lookupHosts(table, 'REGISTRY.lab.TEST.'), ['10.231.100.10', '10.231.100.11', 'fd00::10']);
});

test('aliases resolve; inline comments are not names', () => {
  assert.deepEqual(lookupHosts(table, 'registry'), ['10.231.100.10']);
  assert.deepEqual(lookupHosts(table, 'mirror.lab.test'), ['10.231.100.11']);
  assert.deepEqual(lookupHosts(table, 'primary'), []);
  assert.deepEqual(lookupHosts(table, 'ip6-loopback'), ['::1']);
  assert.deepEqual(lookupHosts(table, 'localhost'), ['127.0.0.1', '::1']);
});

test('bad lines are skipped with a warning; unknown names give nothing', () => {
  assert.deepEqual(lookupHosts(table, 'broken.lab.test'), []);
  assert.equal(table.warnings.length, 2);
  assert.deepEqual(lookupHosts(table, 'other.lab.test'), []);
  assert.deepEqual(parseHosts('').entries, []);
});

test('duplicate addresses are listed once', () => {
  const t = parseHosts('10.0.0.1 a.test\n10.0.0.1 a.test b.test\n');
  assert.deepEqual(lookupHosts(t, 'a.test'), ['10.0.0.1']);
  assert.equal(t.entries.length, 2);
});

test('trailing dots and separators: names match whole words only', () => {
  const t = parseHosts('10.0.0.1\tregistry.lab.test.\tr\r\n10.0.0.2 xregistry.lab.test registry.lab.testx\n');
  assert.deepEqual(lookupHosts(t, 'registry.lab.test'), ['10.0.0.1']);
  assert.deepEqual(lookupHosts(t, 'r'), ['10.0.0.1']);
  assert.deepEqual(lookupHosts(t, 'lab.test'), []);
  assert.deepEqual(lookupHosts(t, 'registry.lab.test registry.lab.testx'), []);
});

// ---- pathological input: one pass, bounded warnings (issue 6) ----

function cpuMs(f: () => void): number {
  const t = process.cpuUsage();
  f();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1000;
}

const TEN_MB = 10 * 1024 * 1024;
const fill = (line: string): string => line.repeat(Math.ceil(TEN_MB / line.length));

test('10 MB hosts files parse in well under a second, warnings capped', () => {
  const inputs: Record<string, string> = {
    'junk lines': fill('zzzz\n'),
    'CRLF entries with aliases': fill('10.0.0.1 a.test b.test c.test d.test\r\n'),
    'address-only lines': fill('10.0.0.1\n'),
    'blank lines': '\n'.repeat(TEN_MB),
  };
  for (const [name, text] of Object.entries(inputs)) {
    let table = parseHosts('');
    const ms = cpuMs(() => {
      table = parseHosts(text);
    });
    assert.ok(ms < 1000, `${name}: ${ms.toFixed(0)} ms of CPU`);
    assert.ok(table.warnings.length <= 51, `${name}: ${table.warnings.length} warnings`);
  }
  const big = parseHosts(fill('10.0.0.1 a.test b.test c.test d.test\n'));
  const ms = cpuMs(() => assert.deepEqual(lookupHosts(big, 'D.test.'), ['10.0.0.1']));
  assert.ok(ms < 500, `lookup in a 10 MB table: ${ms.toFixed(0)} ms`);
});

test('100k-character lines parse in milliseconds', () => {
  const long = 100_000;
  for (const line of [`10.0.0.1${' \t\r'.repeat(long / 3)}#`, `10.0.0.1 ${'a'.repeat(long)}`, '#'.repeat(long), ' '.repeat(long) + 'x']) {
    const ms = cpuMs(() => parseHosts(`${line}\n`.repeat(20)));
    assert.ok(ms < 300, `${line.slice(0, 12)}…: ${ms.toFixed(0)} ms`);
  }
});
