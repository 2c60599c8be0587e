/**
 * `listen: "${HOST_IP}:9808"` (the shipped ConfigMap's default): the agent
 * listens on the node's address from the downward API, not on every
 * interface of a hostNetwork pod; a missing or bad HOST_IP is a config error
 * naming `listen`, never a silent fall-back to all interfaces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type ConfigEnv } from '../../src/agent/config.js';

const TARGETS = 'targets:\n  - registry: registry.k8s.io\n';

function listenWith(listen: string, env: Partial<ConfigEnv>): ReturnType<typeof parseConfig> {
  return parseConfig(`listen: ${JSON.stringify(listen)}\n${TARGETS}`, 'config.yaml', { hostname: 'n', ...env });
}

test('${HOST_IP} in listen becomes the node address (IPv4 as is, IPv6 in brackets)', () => {
  const v4 = listenWith('${HOST_IP}:9808', { HOST_IP: '10.0.1.7' });
  assert.ok(v4.ok, v4.ok ? '' : v4.errors.join('\n'));
  assert.deepEqual(v4.config.listen, { host: '10.0.1.7', port: 9808 });
  const v6 = listenWith('${HOST_IP}:9808', { HOST_IP: 'fd00:10::7' });
  assert.ok(v6.ok, v6.ok ? '' : v6.errors.join('\n'));
  assert.deepEqual(v6.config.listen, { host: 'fd00:10::7', port: 9808 });
});

test('${HOST_IP} unset or not an address is an error on listen, not all interfaces', () => {
  for (const env of [{}, { HOST_IP: '' }, { HOST_IP: 'node-a' }]) {
    const r = listenWith('${HOST_IP}:9808', env);
    assert.equal(r.ok, false, JSON.stringify(env));
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0] ?? '', /^listen: uses \$\{HOST_IP\} but the environment variable HOST_IP is (not set|not an IP address)/);
  }
});

test('a listen without ${HOST_IP} ignores HOST_IP', () => {
  const r = listenWith(':9808', { HOST_IP: '10.0.1.7' });
  assert.ok(r.ok);
  assert.deepEqual(r.config.listen, { host: '', port: 9808 });
});
