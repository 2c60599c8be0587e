import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REASONS, type Cause, type Reason } from '../../src/probe/catalog.js';
import { PATTERNS, explainMessage } from '../../src/probe/explain.js';

// kubelet event text as built in pull-path-facts.md §5.1.
const pull = (img: string, ref: string, inner: string, code = 'Unknown'): string =>
  `Failed to pull image "${img}": rpc error: code = ${code} desc = failed to pull and unpack image "${ref}": ${inner}`;
const REF = 'registry.lab.test/team/app:v1';
const URL = 'https://registry.lab.test/v2/team/app/manifests/v1';
const resolve = (cause: string): string => `failed to resolve reference "${REF}": failed to do request: Head "${URL}": ${cause}`;
const lab = (cause: string, code?: string): string => pull(REF, REF, resolve(cause), code);
const TOKEN_URL = 'https://auth.lab.test/token?scope=repository%3Ateam%2Fapp%3Apull&service=registry.lab.test';
const D = '50aa4698fa6262977cff89181b2664b99d8a56dbca847bf62f2ef04854597cf8';

const CASES: Array<[string, string, Reason, Cause]> = [
  ['dns nxdomain (observed, docker/for-win#6241)',
    pull('nginx', 'docker.io/library/nginx:latest', 'failed to resolve reference "docker.io/library/nginx:latest": failed to do request: Head "https://registry-1.docker.io/v2/library/nginx/manifests/latest": dial tcp: lookup registry-1.docker.io on 192.168.65.1:53: no such host'),
    'dns_nxdomain', 'network'],
  ['dns servfail', lab('dial tcp: lookup registry.lab.test on 10.0.0.2:53: server misbehaving'), 'dns_servfail', 'network'],
  ['dns timeout', lab('dial tcp: lookup registry.lab.test on 10.0.0.2:53: read udp 10.0.0.5:41234->10.0.0.2:53: i/o timeout', 'DeadlineExceeded'), 'dns_timeout', 'network'],
  ['dns EAI_AGAIN, unquoted URL (observed, rancher/k3os#431)',
    pull('rancher/pause:3.1', 'docker.io/rancher/pause:3.1', 'failed to resolve reference "docker.io/rancher/pause:3.1": failed to do request: Head https://registry-1.docker.io/v2/rancher/pause/manifests/3.1: dial tcp: lookup registry-1.docker.io: Try again'),
    'dns_timeout', 'network'],
  ['dns nameserver unreachable', lab('dial tcp: lookup registry.lab.test on 10.0.0.2:53: read udp 10.0.0.5:41234->10.0.0.2:53: read: connection refused'), 'dns_unreachable', 'network'],
  ['tcp refused', lab('dial tcp 10.0.0.10:443: connect: connection refused'), 'tcp_refused', 'network'],
  ['tcp timeout', lab('dial tcp 10.0.0.10:443: i/o timeout', 'DeadlineExceeded'), 'tcp_timeout', 'network'],
  ['tcp no route', lab('dial tcp 10.0.0.10:443: connect: no route to host'), 'tcp_unreachable', 'network'],
  ['tcp network unreachable', lab('dial tcp [2001:db8::10]:443: connect: network is unreachable'), 'tcp_unreachable', 'network'],
  ['context deadline alone', lab('context deadline exceeded', 'DeadlineExceeded'), 'tcp_timeout', 'network'],
  ['tls unknown CA', lab('tls: failed to verify certificate: x509: certificate signed by unknown authority'), 'tls_unknown_ca', 'network'],
  ['tls expired', lab('tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-08-22T10:00:00Z is after 2024-06-01T00:00:00Z'), 'tls_expired', 'network'],
  ['tls wrong SAN', lab('tls: failed to verify certificate: x509: certificate is valid for other.lab.test, www.other.lab.test, not registry.lab.test'), 'tls_hostname_mismatch', 'network'],
  ['tls IP without IP SANs', lab("x509: cannot validate certificate for 10.0.0.10 because it doesn't contain any IP SANs"), 'tls_hostname_mismatch', 'network'],
  ['tls no SANs', lab('x509: certificate is not valid for any names, but wanted to match registry.lab.test'), 'tls_hostname_mismatch', 'network'],
  ['tls handshake failure', lab('remote error: tls: handshake failure'), 'tls_handshake', 'network'],
  ['tls to a plain-HTTP port', lab('tls: first record does not look like a TLS handshake'), 'tls_handshake', 'network'],
  ['tls handshake timeout', lab('net/http: TLS handshake timeout', 'DeadlineExceeded'), 'tls_timeout', 'network'],
  ['proxy', lab('proxyconnect tcp: dial tcp 10.0.0.9:3128: connect: connection refused'), 'proxy_error', 'network'],
  ['token: credentials refused',
    pull(REF, REF, `failed to resolve reference "${REF}": failed to authorize: failed to fetch oauth token: unexpected status from GET request to ${TOKEN_URL}: 401 Unauthorized`),
    'auth_rejected', 'credentials'],
  ['token: anonymous refused (credentials needed)',
    pull(REF, REF, `failed to resolve reference "${REF}": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to ${TOKEN_URL}: 401 Unauthorized`),
    'auth_required', 'credentials'],
  ['token: service error',
    pull(REF, REF, `failed to resolve reference "${REF}": failed to authorize: failed to fetch anonymous token: unexpected status from GET request to ${TOKEN_URL}: 503 Service Unavailable`),
    'token_error', 'network'],
  ['token: service unreachable is reported by its network stage',
    pull(REF, REF, `failed to resolve reference "${REF}": failed to authorize: failed to fetch anonymous token: Get "${TOKEN_URL}": dial tcp: lookup auth.lab.test on 10.0.0.2:53: no such host`),
    'dns_nxdomain', 'network'],
  ['basic challenge, no credentials',
    pull(REF, REF, `failed to resolve reference "${REF}": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`),
    'auth_required', 'credentials'],
  ['Docker Hub insufficient_scope (observed, COSCUP-Volunteer#36)',
    pull('coscup/private:latest', 'docker.io/coscup/private:latest', 'failed to resolve reference "docker.io/coscup/private:latest": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed'),
    'auth_required', 'credentials'],
  ['old containerd 401 on HEAD', pull(REF, REF, `failed to resolve reference "${REF}": unexpected status from HEAD request to ${URL}: 401 Unauthorized`), 'auth_required', 'credentials'],
  ['seed: unauthorized', 'Failed to pull image "registry.razorpay.in/api:v2.5": rpc error: code = Unknown desc = pulling image: unauthorized: authentication required', 'auth_required', 'credentials'],
  ['bad password (Docker Hub wording)', pull(REF, REF, `failed to resolve reference "${REF}": unexpected status code ${URL}: 401 Unauthorized - Server message: unauthorized: incorrect username or password`), 'auth_rejected', 'credentials'],
  ['403 on HEAD', pull(REF, REF, `failed to resolve reference "${REF}": unexpected status from HEAD request to ${URL}: 403 Forbidden`), 'access_denied', 'credentials'],
  ['DENIED body', pull(REF, REF, `failed to copy: httpReadSeeker: failed open: unexpected status code ${URL}: 403 Forbidden - Server message: denied: requested access to the resource is denied`), 'access_denied', 'credentials'],
  ['not found on every host (observed, salesforcedx-docker#35)',
    pull('salesforce/salesforcedx', 'docker.io/salesforce/salesforcedx:latest', 'failed to resolve reference "docker.io/salesforce/salesforcedx:latest": docker.io/salesforce/salesforcedx:latest: not found', 'NotFound'),
    'manifest_unknown', 'missing'],
  ['not found, containerd 2.1 transfer service', pull(REF, REF, `failed to resolve image: ${REF}: not found`, 'NotFound'), 'manifest_unknown', 'missing'],
  ['MANIFEST_UNKNOWN body', pull(REF, REF, `failed to copy: httpReadSeeker: failed open: unexpected status code ${URL}: 404 Not Found - Server message: manifest unknown: manifest unknown`), 'manifest_unknown', 'missing'],
  ['NAME_UNKNOWN body', pull(REF, REF, `failed to copy: httpReadSeeker: failed open: unexpected status code ${URL}: 404 Not Found - Server message: name unknown: repository name not known to registry`), 'name_unknown', 'name'],
  ['platform (observed, fdb-kubernetes-operator#2294)',
    pull('foundationdb/fdb-kubernetes-operator:v2.6.0', 'docker.io/foundationdb/fdb-kubernetes-operator:v2.6.0', 'no match for platform in manifest: not found', 'NotFound'),
    'platform_missing', 'missing'],
  ['rate limit (observed, kata-containers#10109)',
    pull('busybox', 'docker.io/library/busybox:latest', `failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/busybox/manifests/sha256:${D}: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit`),
    'rate_limited', 'registry'],
  ['rate limit on HEAD', pull(REF, REF, `failed to resolve reference "${REF}": unexpected status from HEAD request to ${URL}: 429 Too Many Requests`), 'rate_limited', 'registry'],
  ['5xx on HEAD', pull(REF, REF, `failed to resolve reference "${REF}": unexpected status from HEAD request to ${URL}: 503 Service Unavailable`), 'http_status', 'registry'],
  ['response headers timeout', lab('net/http: timeout awaiting response headers'), 'http_timeout', 'network'],
  ['invalid reference (kubelet InvalidImageName)',
    'Failed to apply default image tag "Nginx": couldn\'t parse image name "Nginx": invalid reference format: repository name (library/Nginx) must be lowercase',
    'invalid_reference', 'name'],
  ['CRI socket missing',
    'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: no such file or directory"',
    'runtime_unavailable', 'node'],
  ['layer extraction', pull(REF, REF, `failed to extract layer sha256:${D}: write /var/lib/containerd/tmpmounts/x: no space left on device`), 'runtime_pull_failed', 'node'],
];

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
    const i = PATTERNS.findIndex((p) => p.re.test(text));
    if (i >= 0) used.add(i);
  }
  const unused = PATTERNS.map((p, i) => (used.has(i) ? null : String(p.re))).filter((x) => x !== null);
  assert.deepEqual(unused, []);
});

test('unknown text gives all nulls', () => {
  for (const text of ['', 'Back-off pulling image "nginx"', 'Successfully pulled image "nginx" in 1.2s', 'something odd happened']) {
    assert.deepEqual(explainMessage(text), { stage: null, reason: null, cause: null, message: null, hint: null });
  }
});

test('the gRPC code does not decide: i/o timeout under DeadlineExceeded is still DNS when it is a lookup', () => {
  const dns = explainMessage(lab('dial tcp: lookup registry.lab.test on 10.0.0.2:53: read udp 10.0.0.5:1->10.0.0.2:53: i/o timeout', 'DeadlineExceeded'));
  const tcp = explainMessage(lab('dial tcp 10.0.0.10:443: i/o timeout', 'DeadlineExceeded'));
  assert.equal(dns.reason, 'dns_timeout');
  assert.equal(tcp.reason, 'tcp_timeout');
});
