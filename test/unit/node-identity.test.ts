import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { detectNodeAddress, networkOf, nodeName, resolveNodeIdentity, subnetFor, zoneOf } from '../../src/agent/node-identity.js';
import type { KubeClient, KubeNode } from '../../src/kube/client.js';

function v4(address: string, netmask: string, cidr: string | null): NetworkInterfaceInfo {
  return { address, netmask, family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr };
}
function v6(address: string, netmask: string, cidr: string | null): NetworkInterfaceInfo {
  return { address, netmask, family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr, scopeid: 0 };
}

const IFACES = {
  lo: [v4('127.0.0.1', '255.0.0.0', '127.0.0.1/8'), v6('::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::1/128')],
  eth0: [v4('10.231.1.10', '255.255.255.0', '10.231.1.10/24'), v6('fd00:231:1::10', 'ffff:ffff:ffff:ffff::', 'fd00:231:1::10/64')],
  eth1: [v4('192.168.77.130', '255.255.255.192', null)],
  cni0: [v4('10.244.0.1', '255.255.255.0', '10.244.0.1/24')],
};

const NODE: KubeNode = {
  metadata: { name: 'node-a', uid: 'uid-a', labels: { 'topology.kubernetes.io/zone': 'eu-west-1b' } },
  status: {
    addresses: [
      { type: 'Hostname', address: 'node-a' },
      { type: 'InternalIP', address: '10.231.1.10' },
    ],
  },
};

test('nodeName: configured, then NODE_NAME, then lowercased hostname', () => {
  assert.equal(
    nodeName({ NODE_NAME: 'from-env' }, () => 'Host', 'from-config'),
    'from-config',
  );
  assert.equal(
    nodeName({ NODE_NAME: 'from-env' }, () => 'Host'),
    'from-env',
  );
  assert.equal(
    nodeName({}, () => 'My-Host.Example '),
    'my-host.example',
  );
  assert.equal(
    nodeName({ NODE_NAME: '  ' }, () => 'h'),
    'h',
  );
});

test('networkOf masks host bits, IPv4 and IPv6 (RFC 5952 output)', () => {
  assert.equal(networkOf('10.231.1.10/24'), '10.231.1.0/24');
  assert.equal(networkOf('10.231.1.10/32'), '10.231.1.10/32');
  assert.equal(networkOf('10.231.1.10/0'), '0.0.0.0/0');
  assert.equal(networkOf('172.16.45.200/20'), '172.16.32.0/20');
  assert.equal(networkOf('fd00:231:1::10/64'), 'fd00:231:1::/64');
  assert.equal(networkOf('2001:db8:0:0:1:0:0:1/128'), '2001:db8::1:0:0:1/128');
  assert.equal(networkOf('2001:db8:abcd:12ff::1/56'), '2001:db8:abcd:1200::/56');
  assert.equal(networkOf('::ffff:10.1.2.3/120'), '::ffff:a01:200/120');
  assert.equal(networkOf('10.0.0.1/33'), null);
  assert.equal(networkOf('nonsense/8'), null);
  // ipaddr.js alone would read these loose IPv4 forms as addresses; a node's CIDR never is one.
  assert.equal(networkOf('10/8'), null);
  assert.equal(networkOf('0x0a.1.2.3/8'), null);
  assert.equal(networkOf('fe80::1%eth0/64'), 'fe80::/64', 'zone dropped');
});

test('subnetFor finds the interface carrying the address', () => {
  assert.equal(subnetFor('10.231.1.10', IFACES), '10.231.1.0/24');
  assert.equal(subnetFor('fd00:231:1:0:0:0:0:10', IFACES), 'fd00:231:1::/64');
  assert.equal(subnetFor('192.168.77.130', IFACES), '192.168.77.128/26', 'netmask used when cidr is null');
  assert.equal(subnetFor('10.231.1.11', IFACES), null);
  assert.equal(subnetFor('not-an-ip', IFACES), null);
});

test('detectNodeAddress: HOST_IP first, else InternalIP', () => {
  assert.equal(detectNodeAddress({ HOST_IP: '10.231.1.10' }, null), '10.231.1.10');
  assert.equal(detectNodeAddress({ HOST_IP: 'garbage' }, NODE), '10.231.1.10');
  assert.equal(detectNodeAddress({}, NODE), '10.231.1.10');
  assert.equal(detectNodeAddress({}, null), null);
});

test('zoneOf reads the topology label, legacy label as fallback', () => {
  assert.equal(zoneOf(NODE), 'eu-west-1b');
  assert.equal(zoneOf({ metadata: { name: 'x', labels: { 'failure-domain.beta.kubernetes.io/zone': 'old' } } }), 'old');
  assert.equal(zoneOf({ metadata: { name: 'x' } }), null);
  assert.equal(zoneOf(null), null);
});

function fakeClient(node: KubeNode | Error): KubeClient & { asked: string[] } {
  const asked: string[] = [];
  const unused = (): Promise<never> => Promise.reject(new Error('unused'));
  return {
    asked,
    getNode(name) {
      asked.push(name);
      return node instanceof Error ? Promise.reject(node) : Promise.resolve(node);
    },
    patchNode: unused,
    patchNodeStatus: unused,
    createEvent: unused,
    async close() {},
  };
}

test('resolveNodeIdentity: reads the node for zone, uid and address; subnet from interfaces', async () => {
  const client = fakeClient(NODE);
  const id = await resolveNodeIdentity({ env: { NODE_NAME: 'node-a' }, client, interfaces: IFACES, hostname: () => 'x' });
  assert.deepEqual(client.asked, ['node-a']);
  assert.deepEqual(
    { ...id, node: null },
    {
      name: 'node-a',
      address: '10.231.1.10',
      subnet: '10.231.1.0/24',
      zone: 'eu-west-1b',
      uid: 'uid-a',
      node: null,
    },
  );
});

test('resolveNodeIdentity: override subnet wins; a failed node read leaves zone null and does not throw', async () => {
  const warnings: object[] = [];
  const log = {
    debug() {},
    info() {},
    error() {},
    warn(o: object) {
      warnings.push(o);
    },
  };
  const id = await resolveNodeIdentity({
    env: { NODE_NAME: 'node-a', HOST_IP: '10.231.1.10' },
    client: fakeClient(Object.assign(new Error('x'), { code: 'PULLPROBE_KUBE_API', status: 403 })),
    configuredSubnet: '10.9.0.0/16',
    interfaces: IFACES,
    log,
  });
  assert.equal(id.subnet, '10.9.0.0/16');
  assert.equal(id.zone, null);
  assert.equal(id.address, '10.231.1.10');
  assert.equal(warnings.length, 1);
});

test('resolveNodeIdentity out of cluster: HOST_IP and interfaces only', async () => {
  const id = await resolveNodeIdentity({ env: { HOST_IP: '192.168.77.130' }, client: null, interfaces: IFACES, hostname: () => 'Box' });
  assert.equal(id.name, 'box');
  assert.equal(id.subnet, '192.168.77.128/26');
  assert.equal(id.zone, null);
});
