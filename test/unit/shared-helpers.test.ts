/** The small shared helpers that exist once: host:port, RFC 3339, plain-object guard, CIDR. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinHostPort, splitHostPort } from '../../src/shared/host-port.js';
import { rfc3339 } from '../../src/shared/rfc3339.js';
import { isPlainObject } from '../../src/shared/guards.js';
import { networkOf, prefixOfMask, sameAddress } from '../../src/shared/cidr.js';
import { joinHostPort as tcpJoin } from '../../src/probe/stages/tcp.js';
import { rfc3339 as patchesRfc3339 } from '../../src/kube/patches.js';

test("host:port: IPv6 in brackets; split reads Go's forms, a bare IPv6 literal has no port", () => {
  assert.equal(joinHostPort('::1', 5000), '[::1]:5000');
  assert.equal(joinHostPort('reg.test', '443'), 'reg.test:443');
  assert.deepEqual(splitHostPort('[::1]:5000'), { host: '::1', port: '5000' });
  assert.deepEqual(splitHostPort('reg.test:5000'), { host: 'reg.test', port: '5000' });
  assert.deepEqual(splitHostPort('reg.test'), { host: 'reg.test', port: '' });
  assert.deepEqual(splitHostPort('::1'), { host: '::1', port: '' });
  assert.equal(tcpJoin, joinHostPort, 'the TCP stage uses this one');
});

test('rfc3339: UTC to the second, no milliseconds', () => {
  assert.equal(rfc3339(Date.UTC(2024, 4, 1, 12, 0, 7, 999)), '2024-05-01T12:00:07Z');
  assert.equal(patchesRfc3339, rfc3339, 'kube patches use this one');
});

test('isPlainObject: objects only, not null, arrays or primitives', () => {
  assert.ok(isPlainObject({}));
  for (const v of [null, [], 'x', 1, undefined]) assert.ok(!isPlainObject(v), String(v));
});

test('cidr: masks, prefix of a netmask, address equality across notations', () => {
  assert.equal(networkOf('192.168.77.130/26'), '192.168.77.128/26');
  assert.equal(prefixOfMask('255.255.255.192'), 26);
  assert.equal(prefixOfMask('255.0.255.0'), null);
  assert.ok(sameAddress('fd00:231:1:0:0:0:0:10', 'fd00:231:1::10'));
  assert.ok(!sameAddress('10.0.0.1', '::ffff:10.0.0.1'), 'families differ');
});
