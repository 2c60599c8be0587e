/**
 * The hosts.toml settings of one endpoint, on the wire: override_path's own
 * API path, `?ns=` for a host serving another registry's names, configured
 * headers on every request to that host, a client certificate presented in
 * the handshake (also when a connection is dialled again), dial_timeout as
 * the TCP connect timeout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { within } from '../support/within.js';
import { DOCKER_MANIFEST } from '../support/fake-registry.js';
import { walkEndpoint, type Endpoint, type Walk } from '../../src/probe/endpoint-walk.js';
import { dialTimeout } from '../../src/probe/connection.js';
import { parseTarget } from '../../src/model/reference.js';
import { realClock, type ProbeContext } from '../../src/model/types.js';
import { loadEnvironment } from '../../src/node-config/environment.js';
import { TokenCache } from '../../src/probe/token-cache.js';

let ca: TestCA;
let leaf: CertPair;
let client: CertPair;
let dir: string;
let server: Server;
let port = 0;
const seen: { method: string; url: string; headers: Record<string, string | string[] | undefined>; clientCN: string | null }[] = [];

before(async () => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['127.0.0.1'] });
  client = ca.issue('client', { sans: ['node.test'], cn: 'pullprobe-node' });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-ep-fields-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  // A registry under /registry/v2 (an override_path host): v1 exists, anything else is MANIFEST_UNKNOWN.
  server = createServer({ cert: leaf.cert, key: leaf.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket;
    // An https server's request socket is a TLSSocket; what the peer presented, if anything ({} when nothing).
    const peer: { subject?: { CN?: unknown } } = socket instanceof TLSSocket ? socket.getPeerCertificate() : {};
    const cn = peer.subject?.CN;
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, clientCN: typeof cn === 'string' ? cn : null });
    const h = { 'docker-distribution-api-version': 'registry/2.0' };
    if (req.url?.startsWith('/registry/v2/team/app/manifests/v1')) {
      res.writeHead(200, {
        ...h,
        'content-type': DOCKER_MANIFEST,
        'docker-content-digest': `sha256:${'b'.repeat(64)}`,
        'content-length': '2',
      });
      res.end(req.method === 'HEAD' ? undefined : '{}');
    } else if (req.url?.startsWith('/registry/v2/team/app/tags/list')) {
      res.writeHead(200, { ...h, 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'team/app', tags: ['v1'] }));
    } else {
      // Connection: close after a missing manifest, so the tags/list request dials again.
      res.writeHead(404, { ...h, 'content-type': 'application/json', ...(req.method === 'HEAD' ? { connection: 'close' } : {}) });
      res.end(req.method === 'HEAD' ? undefined : '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    }
  });
  await within(new Promise<void>((r) => server.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  server.closeAllConnections();
  await within(new Promise<void>((r) => server.close(() => r())), 5000, 'the server to close');
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function walk(image: string, fields: Partial<Endpoint>): Promise<{ failure: Awaited<ReturnType<typeof walkEndpoint>>; w: Walk }> {
  const parsed = parseTarget(`127.0.0.1:${port}/${image}`);
  assert.ok(parsed.ok);
  const ctx: ProbeContext = {
    signal: new AbortController().signal,
    deadlineAt: realClock.now() + 5000,
    clock: realClock,
    log: { debug() {}, info() {}, warn() {}, error() {} },
    wallNow: Date.now,
  };
  const env = loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: null,
    caFiles: [join(dir, 'ca.crt')],
    containerdConfigPath: [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
  const w: Walk = {
    ctx,
    env,
    steps: [],
    current: { stage: 'dns' },
    opts: { timeoutMs: 5000, checkPlatform: true, tokenCache: new TokenCache() },
  };
  const failure = await walkEndpoint(w, parsed.target, {
    endpoint: `127.0.0.1:${port}`,
    scheme: 'https',
    ca: env.ca,
    skipVerify: false,
    ...fields,
  });
  return { failure, w };
}

function httpRequest(w: Walk): string | undefined {
  const step = w.steps.find((s) => s.stage === 'http');
  return step?.detail && 'request' in step.detail ? step.detail.request : undefined;
}

describe('endpoint fields from hosts.toml', () => {
  test('override_path: requests go to <path>/<name>/manifests/<ref>', async () => {
    seen.length = 0;
    const { failure, w } = await walk('team/app:v1', { path: '/registry/v2' });
    assert.equal(failure, null, failure?.outcome.message);
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url}`),
      ['HEAD /registry/v2/team/app/manifests/v1'],
    );
    assert.equal(httpRequest(w), 'HEAD /registry/v2/team/app/manifests/v1');
  });

  test('ns: ?ns=<namespace> on manifest and tags requests', async () => {
    seen.length = 0;
    const { failure, w } = await walk('team/app:v2', { path: '/registry/v2', ns: 'docker.io' });
    assert.equal(failure?.outcome.reason, 'manifest_unknown');
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url}`),
      ['HEAD /registry/v2/team/app/manifests/v2?ns=docker.io', 'GET /registry/v2/team/app/tags/list?ns=docker.io'],
    );
    assert.equal(httpRequest(w), 'HEAD /registry/v2/team/app/manifests/v2?ns=docker.io');
  });

  test('headers: sent on every request to that host, several values kept', async () => {
    seen.length = 0;
    const { failure } = await walk('team/app:v2', { path: '/registry/v2', headers: { 'X-Mirror-Token': ['abc'], 'X-Multi': ['a', 'b'] } });
    assert.equal(failure?.outcome.reason, 'manifest_unknown');
    assert.equal(seen.length, 2);
    for (const s of seen) {
      assert.equal(s.headers['x-mirror-token'], 'abc', `${s.method} ${s.url}`);
      assert.equal(s.headers['x-multi'], 'a, b');
      assert.match(String(s.headers.accept), /manifest/, 'the request’s own headers stay');
    }
  });

  test('client certificate: presented in the handshake, also on a connection dialled again', async () => {
    seen.length = 0;
    const without = await walk('team/app:v1', { path: '/registry/v2' });
    assert.equal(without.failure, null);
    assert.equal(seen[0]?.clientCN, null, 'no certificate unless configured');
    seen.length = 0;
    const { failure, w } = await walk('team/app:v2', { path: '/registry/v2', clientCert: { cert: client.cert, key: client.key } });
    assert.equal(failure?.outcome.reason, 'manifest_unknown');
    assert.equal(seen.length, 2);
    assert.deepEqual(
      seen.map((s) => s.clientCN),
      ['pullprobe-node', 'pullprobe-node'],
    );
    const http = w.steps.find((s) => s.stage === 'http');
    assert.ok(http?.detail && 'challenges' in http.detail);
    assert.equal(http.detail.redials, 1, 'the tags/list request needed a new connection (the server closed it after the HEAD)');
  });

  test('dial_timeout: the host’s own TCP connect timeout wins over the probe’s', () => {
    assert.equal(dialTimeout({ timeoutMs: 10_000 }, 1500), 1500);
    assert.equal(dialTimeout({ timeoutMs: 10_000, connectTimeoutMs: 3000 }, 1500), 1500);
    assert.equal(dialTimeout({ timeoutMs: 10_000, connectTimeoutMs: 3000 }, undefined), 3000);
    assert.equal(dialTimeout({ timeoutMs: 10_000 }, undefined), 4000);
  });
});
