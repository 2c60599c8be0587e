import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { lookupHosts, parseHosts } from '../../src/probe/hosts-file.js';

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
