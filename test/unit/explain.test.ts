import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REASONS } from '../../src/diagnosis/catalog.js';
import { CASES, REF, URL as MANIFEST_URL, lab, pull } from '../fixtures/explain/cases.js';
import { KUBELET_ONLY_HINT, PATTERNS, explainMessage, explainText, matchPattern } from '../../src/diagnosis/explain.js';

for (const [name, text, reason, cause] of CASES) {
  test(`explain: ${name} → ${reason}`, () => {
    const e = explainMessage(text);
    assert.equal(e.reason, reason);
    assert.equal(e.cause, cause);
    assert.equal(e.stage, REASONS[reason].stage);
    assert.equal(e.message, REASONS[reason].message);
    assert.equal(e.hint, REASONS[reason].hint);
  });
}

test('every pattern is the first match for at least one real string', () => {
  const used = new Set<number>();
  for (const [, text] of CASES) {
    const i = PATTERNS.findIndex((p) => matchPattern(p, text) !== null);
    if (i >= 0) used.add(i);
  }
  const unused = PATTERNS.map((p, i) => (used.has(i) ? null : p.seq.map(String).join(' … '))).filter((x) => x !== null);
  assert.deepEqual(unused, []);
});

test('unknown text gives all nulls', () => {
  for (const text of ['', 'Successfully pulled image "nginx" in 1.2s', 'something odd happened', 'Pulling image "nginx"']) {
    assert.deepEqual(explainMessage(text), { stage: null, reason: null, cause: null, message: null, hint: null });
  }
});

test('kubelet back-off alone: no reason, but the hint points to the earlier "Failed to pull image" event', () => {
  for (const text of ['Back-off pulling image "nginx"', 'Error: ImagePullBackOff', 'Error: ErrImagePull']) {
    const e = explainText(text);
    assert.equal(e.reason, null, text);
    assert.equal(e.cause, null, text);
    assert.equal(e.hint, KUBELET_ONLY_HINT, text);
    assert.equal(e.excerpt, text);
  }
});

test('back-off together with the failed pull: the failed pull decides', () => {
  const text = [`Back-off pulling image "${REF}"`, lab('dial tcp 10.0.0.10:443: connect: connection refused'), 'Error: ErrImagePull'].join(
    '\n',
  );
  const e = explainText(text);
  assert.equal(e.reason, 'tcp_refused');
  assert.equal(e.excerpt, lab('dial tcp 10.0.0.10:443: connect: connection refused'));
});

test('a 403 from the registry itself is still access_denied, not the proxy', () => {
  assert.equal(
    explainMessage(
      pull(REF, REF, `failed to resolve reference "${REF}": unexpected status from HEAD request to ${MANIFEST_URL}: 403 Forbidden`),
    ).reason,
    'access_denied',
  );
  assert.equal(explainMessage(lab('Forbidden: something else')).reason, null);
});

test('the gRPC code does not decide: i/o timeout under DeadlineExceeded is still DNS when it is a lookup', () => {
  const dns = explainMessage(
    lab('dial tcp: lookup registry.lab.test on 10.0.0.2:53: read udp 10.0.0.5:1->10.0.0.2:53: i/o timeout', 'DeadlineExceeded'),
  );
  const tcp = explainMessage(lab('dial tcp 10.0.0.10:443: i/o timeout', 'DeadlineExceeded'));
  assert.equal(dns.reason, 'dns_timeout');
  assert.equal(tcp.reason, 'tcp_timeout');
});

// containerd's texts when the node's proxy fails (issue 8): Go's "proxyconnect" for the
// connection to the proxy, the bare status text after the URL for a refused CONNECT
// (tinyproxy: Access violation, 407, Unauthorized for wrong credentials, Unable to connect).
const PROXY_TEXTS: Array<[string, string]> = [
  ['proxy refuses connections', lab('proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused')],
  ['proxy silent', lab('proxyconnect tcp: dial tcp 10.0.0.1:3128: i/o timeout', 'DeadlineExceeded')],
  ['proxy name unknown', lab('proxyconnect tcp: dial tcp: lookup proxy.corp.example on 10.0.0.2:53: no such host')],
  ['proxy unreachable', lab('proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: no route to host')],
  ['CONNECT refused: Forbidden', lab('Forbidden')],
  ['CONNECT refused: tinyproxy ConnectPort', lab('Access violation')],
  ['CONNECT refused: no credentials', lab('Proxy Authentication Required')],
  ['CONNECT refused: tinyproxy, wrong credentials', lab('Unauthorized')],
  ['CONNECT refused: tinyproxy cannot reach the registry', lab('Unable to connect')],
  ['CONNECT refused: squid cannot reach the registry', lab('Service Unavailable')],
  ['CONNECT answered without a status text', lab('unknown status code')],
  ['CONNECT refused, containerd 1.6 ": unknown" tail', `${lab('Forbidden')}: unknown`],
];

for (const [name, text] of PROXY_TEXTS) {
  test(`explain: proxy failure (${name}) → proxy_error, stage http, cause network`, () => {
    const e = explainMessage(text);
    assert.deepEqual([e.reason, e.stage, e.cause], ['proxy_error', 'http', 'network']);
  });
}

test('explain: texts that only look like a proxy refusal are not proxy_error', () => {
  // a registry's own 401/403 comes with the status code, through containerd's resolver
  assert.equal(
    explainMessage(
      pull(REF, REF, `failed to resolve reference "${REF}": unexpected status from HEAD request to ${MANIFEST_URL}: 401 Unauthorized`),
    ).reason,
    'auth_required',
  );
  assert.equal(explainMessage(lab('context deadline exceeded', 'DeadlineExceeded')).reason, 'tcp_timeout');
  assert.equal(explainMessage(lab('dial tcp 10.0.0.10:443: connect: connection refused')).reason, 'tcp_refused');
  assert.equal(explainMessage(lab('EOF')).reason, null);
  assert.equal(explainMessage(lab('Unauthorized for this thing')).reason, null);
});
