import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANNOTATION_KEY,
  annotationValue,
  buildAnnotationPatch,
  buildConditionPatch,
  buildEvent,
  camelReason,
  conditionFromStates,
  rfc3339,
  verdictsFromResults,
} from '../../src/kube/patches.js';
import type { ProbeResult } from '../../src/model/types.js';
import { causeOf, stageOf, type Reason } from '../../src/diagnosis/catalog.js';

function result(target: string, registry: string | null, reason: Reason | null): ProbeResult {
  return {
    target,
    image: null,
    registry,
    ok: reason === null,
    stage: reason ? stageOf(reason) : null,
    reason,
    cause: reason ? causeOf(reason) : null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0.01,
    steps: [],
  };
}

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

test('rfc3339 has second precision and Z', () => {
  assert.equal(rfc3339(T0), '2025-01-02T03:04:05Z');
});

test('verdictsFromResults: a registry fails if any target fails; first failing target names it', () => {
  const v = verdictsFromResults([
    result('ghcr.io/a/b:1', 'ghcr.io', null),
    result('ghcr.io/a/c:1', 'ghcr.io', 'manifest_unknown'),
    result('ghcr.io/a/d:1', 'ghcr.io', 'tcp_refused'),
    result('docker.io/library/nginx:latest', 'docker.io', null),
    result('BAD ref', null, 'invalid_reference'),
  ]);
  assert.deepEqual(v, {
    'ghcr.io': { ok: false, stage: 'manifest', reason: 'manifest_unknown', cause: 'missing', target: 'ghcr.io/a/c:1' },
    'docker.io': { ok: true, stage: null, reason: null, cause: null, target: 'docker.io/library/nginx:latest' },
    'BAD ref': { ok: false, stage: 'reference', reason: 'invalid_reference', cause: 'name', target: 'BAD ref' },
  });
});

test('annotation value: exact compact JSON, registries sorted, ok entries carry only ok+since', () => {
  const state = {
    at: '2025-01-02T03:04:05Z',
    subnet: '10.0.1.0/24',
    zone: 'zone-a',
    registries: {
      'registry.lab.test': {
        ok: false,
        stage: 'tcp' as const,
        reason: 'tcp_refused' as const,
        cause: 'network' as const,
        since: '2025-01-02T03:00:00Z',
      },
      'docker.io': { ok: true, stage: null, reason: null, cause: null, since: '2025-01-01T00:00:00Z' },
    },
  };
  const expected =
    '{"v":1,"at":"2025-01-02T03:04:05Z","subnet":"10.0.1.0/24","zone":"zone-a","registries":{' +
    '"docker.io":{"ok":true,"since":"2025-01-01T00:00:00Z"},' +
    '"registry.lab.test":{"ok":false,"stage":"tcp","reason":"tcp_refused","cause":"network","since":"2025-01-02T03:00:00Z"}}}';
  assert.equal(annotationValue(state), expected);
  assert.ok(!/\s/.test(annotationValue(state)), 'no whitespace');
  assert.deepEqual(buildAnnotationPatch(state), { metadata: { annotations: { [ANNOTATION_KEY]: expected } } });
  assert.equal(ANNOTATION_KEY, 'pullprobe.dev/status');
});

test('annotation value: null subnet/zone are kept as null', () => {
  assert.equal(
    annotationValue({ at: 'X', subnet: null, zone: null, registries: {} }),
    '{"v":1,"at":"X","subnet":null,"zone":null,"registries":{}}',
  );
});

test('camelReason', () => {
  assert.equal(camelReason('tcp_refused'), 'TcpRefused');
  assert.equal(camelReason('dns_nxdomain'), 'DnsNxdomain');
  assert.equal(camelReason('tls_unknown_ca'), 'TlsUnknownCa');
});

test('condition from states: Unknown, True, False with first failing reason and a list', () => {
  assert.deepEqual(conditionFromStates(null), { status: 'Unknown', reason: 'NoProbeYet', message: conditionFromStates(null).message });
  const ok = conditionFromStates({ 'a.io': { ok: true, reason: null }, 'b.io': { ok: true, reason: null } });
  assert.equal(ok.status, 'True');
  assert.equal(ok.reason, 'AllRegistriesReachable');
  const bad = conditionFromStates({
    'z.io': { ok: false, reason: 'dns_nxdomain' },
    'a.io': { ok: true, reason: null },
    'm.io': { ok: false, reason: 'tcp_refused' },
  });
  assert.equal(bad.status, 'False');
  assert.equal(bad.reason, 'TcpRefused');
  assert.ok(bad.message.includes('m.io (tcp_refused)'));
  assert.ok(bad.message.includes('z.io (dns_nxdomain)'));
  assert.ok(!bad.message.includes('a.io'));
});

test('condition patch: only our type, transition time omitted when not given', () => {
  const cond = { status: 'False' as const, reason: 'TcpRefused', message: 'm' };
  assert.deepEqual(buildConditionPatch(cond, '2025-01-02T03:04:05Z', '2025-01-02T03:00:00Z'), {
    status: {
      conditions: [
        {
          type: 'RegistryReachable',
          status: 'False',
          lastHeartbeatTime: '2025-01-02T03:04:05Z',
          lastTransitionTime: '2025-01-02T03:00:00Z',
          reason: 'TcpRefused',
          message: 'm',
        },
      ],
    },
  });
  const noTransition = buildConditionPatch(cond, '2025-01-02T03:04:05Z');
  assert.equal(noTransition.status.conditions.length, 1);
  assert.ok(!('lastTransitionTime' in (noTransition.status.conditions[0] ?? {})));
});

test('event: Warning on failure, Normal on recovery, involvedObject is the Node', () => {
  const warn = buildEvent({
    node: 'node-1',
    uid: 'u-1',
    registry: 'ghcr.io',
    at: T0,
    seq: 3,
    verdict: { ok: false, stage: 'tcp', reason: 'tcp_refused', cause: 'network', target: 'ghcr.io/a/b:1' },
  });
  assert.deepEqual(
    { ...warn, message: '' },
    {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `node-1.${T0.toString(16)}0003`, namespace: 'default' },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'u-1' },
      reason: 'RegistryUnreachable',
      message: '',
      type: 'Warning',
      source: { component: 'pullprobe', host: 'node-1' },
      firstTimestamp: '2025-01-02T03:04:05Z',
      lastTimestamp: '2025-01-02T03:04:05Z',
      count: 1,
      reportingComponent: 'pullprobe',
      reportingInstance: 'node-1',
    },
  );
  assert.ok(warn.message.includes('tcp_refused'));
  assert.match(warn.metadata.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
  const normal = buildEvent({
    node: 'node-1',
    registry: 'ghcr.io',
    at: T0,
    seq: 4,
    verdict: { ok: true, stage: null, reason: null, cause: null, target: 'ghcr.io/a/b:1' },
  });
  assert.equal(normal.type, 'Normal');
  assert.equal(normal.reason, 'RegistryReachable');
  assert.ok(!('uid' in normal.involvedObject));
  assert.notEqual(normal.metadata.name, warn.metadata.name);
});
