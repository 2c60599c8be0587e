import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseResolvConf, usedNameservers } from '../../src/node-config/resolv-conf.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/resolv/${name}`, import.meta.url), 'utf8');

test('node resolv.conf: nameservers (IPv6 too), search, options across lines', () => {
  const conf = parseResolvConf(fixture('node-ec2.conf'));
  assert.deepEqual(
    conf.nameservers.map((n) => [n.address, n.port, n.used]),
    [
      ['10.231.0.2', 53, true],
      ['10.231.100.53', 53, true],
      ['fd00:ec2::253', 53, true],
      ['10.231.200.53', 53, false],
    ],
  );
  assert.deepEqual(
    usedNameservers(conf).map((n) => n.address),
    ['10.231.0.2', '10.231.100.53', 'fd00:ec2::253'],
  );
  assert.deepEqual(conf.search, ['eu-west-1.compute.internal', 'lab.test']);
  assert.equal(conf.ndots, 2);
  assert.equal(conf.timeoutSeconds, 2);
  assert.equal(conf.attempts, 3);
  assert.equal(conf.rotate, true);
  assert.equal(conf.defaultNameserver, false);
  assert.equal(conf.warnings.length, 1, 'only the 4th nameserver is worth a warning');
});

test('defaults when options are absent', () => {
  const conf = parseResolvConf('nameserver 10.0.0.2\n');
  assert.equal(conf.ndots, 1);
  assert.equal(conf.timeoutSeconds, 5);
  assert.equal(conf.attempts, 2);
  assert.equal(conf.rotate, false);
  assert.deepEqual(conf.search, []);
  assert.deepEqual(conf.warnings, []);
});

test('domain and search replace each other; the last one wins', () => {
  assert.deepEqual(parseResolvConf('search a.test b.test\ndomain c.test extra\n').search, ['c.test']);
  assert.deepEqual(parseResolvConf('domain c.test\nsearch a.test\tb.test\n').search, ['a.test', 'b.test']);
  // an empty search line is ignored, as glibc ignores it
  assert.deepEqual(parseResolvConf('search a.test\nsearch \n').search, ['a.test']);
});

test('comments only in the first column; a search line keeps inline "#" words as glibc does', () => {
  const conf = parseResolvConf('#nameserver 1.1.1.1\n;nameserver 8.8.8.8\nnameserver 10.0.0.2 # main\nsearch a.test # corp\n');
  assert.deepEqual(
    conf.nameservers.map((n) => n.address),
    ['10.0.0.2'],
  );
  assert.deepEqual(conf.search, ['a.test', '#', 'corp']);
  assert.equal(conf.warnings.length, 1);
});

test('option values are read with atoi and capped like glibc', () => {
  const conf = parseResolvConf('nameserver 10.0.0.2\noptions ndots:20 timeout:60 attempts:9\n');
  assert.equal(conf.ndots, 15);
  assert.equal(conf.timeoutSeconds, 30);
  assert.equal(conf.attempts, 5);
  const odd = parseResolvConf('nameserver 10.0.0.2\noptions ndots:3x attempts:abc no-tld-query bogus-opt\n');
  assert.equal(odd.ndots, 3);
  assert.equal(odd.attempts, 0);
  assert.equal(odd.noTldQuery, true);
  assert.equal(odd.warnings.length, 2, 'attempts:0 and the unknown option');
  assert.equal(parseResolvConf('options ndots:0\n').ndots, 0);
});

test('invalid nameserver is skipped; no nameserver falls back to 127.0.0.1', () => {
  const conf = parseResolvConf('nameserver resolver.lab.test\nnameserver\n');
  assert.deepEqual(conf.nameservers, [{ address: '127.0.0.1', port: 53, used: true }]);
  assert.equal(conf.defaultNameserver, true);
  assert.equal(conf.warnings.length, 3);
});

test('keywords must start the line (glibc ignores indented lines) and need a blank after them', () => {
  const conf = parseResolvConf('  nameserver 10.0.0.9\nnameserver10.0.0.8\nnameserver 10.0.0.2\n');
  assert.deepEqual(
    conf.nameservers.map((n) => n.address),
    ['10.0.0.2'],
  );
  assert.equal(conf.warnings.length, 2);
});

test('CRLF lines are read and flagged', () => {
  const conf = parseResolvConf('nameserver 10.0.0.2\r\nsearch a.test\r\n');
  assert.deepEqual(conf.search, ['a.test']);
  assert.deepEqual(
    conf.nameservers.map((n) => n.address),
    ['10.0.0.2'],
  );
  assert.equal(conf.warnings.length, 2);
});

test('IPv6 nameserver with a zone id is accepted', () => {
  const conf = parseResolvConf('nameserver fe80::1%eth0\n');
  assert.equal(conf.nameservers[0]?.address, 'fe80::1%eth0');
  assert.equal(conf.defaultNameserver, false);
});

test("no search or domain line: the search domain is the host name's domain, as glibc takes it from gethostname()", () => {
  const conf = parseResolvConf('nameserver 10.0.0.2\n', { hostname: 'ip-10-0-1-7.eu-west-1.compute.internal' });
  assert.deepEqual(conf.search, ['eu-west-1.compute.internal']);
  assert.equal(conf.searchFromHostname, true);
  assert.deepEqual(parseResolvConf('nameserver 10.0.0.2\n', { hostname: 'node7' }).search, [], 'no dot: no domain');
  assert.deepEqual(parseResolvConf('search a.test\n', { hostname: 'n.b.test' }).search, ['a.test'], 'a search line wins');
  assert.deepEqual(parseResolvConf('domain c.test\n', { hostname: 'n.b.test' }).search, ['c.test'], 'a domain line wins');
  assert.deepEqual(parseResolvConf('search \n', { hostname: 'n.b.test' }).search, ['b.test'], 'an empty search line sets nothing');
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

test('10 MB inputs parse in well under a second, warnings capped', () => {
  const inputs: Record<string, string> = {
    'CRLF nameserver lines': fill('nameserver 10.0.0.1\r\n'),
    'junk lines': fill('zzzz\n'),
    'option lines': fill(`options ${'ndots:1 attempts:x '.repeat(50)}\n`),
    'search lines': fill(`search ${'a.test '.repeat(500)}\n`),
    'blank lines': '\n'.repeat(TEN_MB),
  };
  for (const [name, text] of Object.entries(inputs)) {
    let conf = parseResolvConf('');
    const ms = cpuMs(() => {
      conf = parseResolvConf(text);
    });
    assert.ok(ms < 1000, `${name}: ${ms.toFixed(0)} ms of CPU`);
    assert.ok(conf.warnings.length <= 52, `${name}: ${conf.warnings.length} warnings`);
    assert.ok(conf.nameservers.length <= 32, name);
  }
});

test('100k-character lines parse in milliseconds', () => {
  const long = 100_000;
  const lines = [
    `nameserver ${'\t'.repeat(long)}10.0.0.1`,
    `search ${' '.repeat(long)}x`,
    `options ndots:${'9'.repeat(long)}`,
    `options timeout:${' '.repeat(long)}`,
    `search ${'.'.repeat(long)}`,
    `${' \t'.repeat(long / 2)}x`,
    `nameserver ${'1'.repeat(long)}`,
  ];
  for (const line of lines) {
    const ms = cpuMs(() => parseResolvConf(`${line}\n`.repeat(20)));
    assert.ok(ms < 300, `${line.slice(0, 20)}…: ${ms.toFixed(0)} ms`);
  }
  assert.equal(parseResolvConf(`options ndots:${'9'.repeat(long)}\n`).ndots, 15);
  assert.deepEqual(
    parseResolvConf(`nameserver ${'\t'.repeat(long)}10.0.0.1\n`).nameservers.map((n) => n.address),
    ['10.0.0.1'],
  );
});
