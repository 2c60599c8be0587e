/**
 * What a probe costs on the wire, counted at a loopback TLS registry (its
 * TCP `connection` events and its request log): the first probe of an image
 * learns the challenge and the token; a steady-state probe with the same
 * ProbeCaches is ONE connection carrying ONE request, the authorized
 * manifest HEAD, as containerd's resolver sends it. Not timed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { until } from '../support/within.js';
import { FakeRegistry, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, type FakeRegistryOptions } from '../support/fake-registry.js';
import { probeTarget } from '../../src/probe/chain.js';
import { createProbeCaches } from '../../src/probe/probe-caches.js';
import { loadEnvironment, type ProbeEnvironment } from '../../src/node-config/environment.js';
import type { ProbeResult } from '../../src/model/types.js';

let ca: TestCA;
let leaf: CertPair;
let dir: string;
const open: FakeRegistry[] = [];

before(() => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-one-conn-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
});
after(async () => {
  for (const o of open) await o.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function env(): ProbeEnvironment {
  return loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: null,
    caFiles: [join(dir, 'ca.crt')],
    containerdConfigPath: [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
}

interface Counted {
  f: FakeRegistry;
  /** TCP connections accepted so far. */
  connections: () => number;
  /** TCP connections open now. */
  live: () => number;
}

async function registry(opts: FakeRegistryOptions): Promise<Counted> {
  const f = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key }, ...opts });
  open.push(f);
  let connections = 0;
  let live = 0;
  f.server.on('connection', (socket: Socket) => {
    connections++;
    live++;
    socket.once('close', () => live--);
  });
  f.addRepo('pub/app', { public: true });
  f.putManifest(
    'pub/app',
    { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'a'.repeat(64)}` }, layers: [] },
    DOCKER_MANIFEST,
    'v1',
  );
  return { f, connections: () => connections, live: () => live };
}

/** Connections and requests one probe costs at the registry. */
async function cost(c: Counted, probe: () => Promise<ProbeResult>): Promise<{ r: ProbeResult; connections: number; requests: string[] }> {
  const conns = c.connections();
  const reqs = c.f.requests.length;
  const r = await probe();
  return { r, connections: c.connections() - conns, requests: c.f.requests.slice(reqs).map((q) => `${q.method} ${q.path}`) };
}

const stages = (r: ProbeResult): string[] => r.steps.map((s) => s.stage);

describe('one connection, one request', () => {
  test('anonymous token registry: the first probe learns challenge and token; steady state is one authorized HEAD on one connection', async () => {
    const c = await registry({ auth: 'bearer' });
    const caches = createProbeCaches();
    const target = `127.0.0.1:${c.f.port}/pub/app:v1`;
    const probe = (): Promise<ProbeResult> => probeTarget(target, env(), { timeoutMs: 5000, caches });

    const first = await cost(c, probe);
    assert.equal(first.r.ok, true, `${first.r.reason}: ${first.r.message}`);
    // containerd's order: the manifest HEAD, its 401 challenge, the token, the HEAD again. No GET /v2/.
    assert.deepEqual(first.requests, ['HEAD /v2/pub/app/manifests/v1', 'GET /token', 'HEAD /v2/pub/app/manifests/v1']);
    const http = first.r.steps.find((s) => s.stage === 'http');
    assert.ok(http?.detail && 'challenges' in http.detail);
    assert.equal(http.detail.request, 'HEAD /v2/pub/app/manifests/v1');
    assert.equal(http.detail.status, 401);
    // The realm is on the registry's host: HEAD, token and HEAD again share one kept-alive connection.
    assert.equal(first.connections, 1, 'one TCP connection for the whole first probe');
    assert.equal(http.detail.redials ?? 0, 0);

    const steady = await cost(c, probe);
    assert.equal(steady.r.ok, true, `${steady.r.reason}: ${steady.r.message}`);
    assert.equal(steady.connections, 1, 'one TCP connection');
    assert.deepEqual(steady.requests, ['HEAD /v2/pub/app/manifests/v1'], 'one request: the authorized HEAD');
    assert.match(c.f.requests.at(-1)?.authorization ?? '', /^Bearer /);
    assert.deepEqual(stages(steady.r), ['reference', 'dns', 'tcp', 'tls', 'http', 'auth', 'manifest']);
    const auth = steady.r.steps.find((s) => s.stage === 'auth');
    assert.ok(auth?.detail && 'tokenCached' in auth.detail);
    assert.equal(auth.detail.tokenCached, true);
    const manifest = steady.r.steps.find((s) => s.stage === 'manifest');
    assert.ok(manifest?.detail && 'reused' in manifest.detail);
    assert.equal(manifest.detail.reused, true, 'the manifest step read the http step’s answer');
  });

  test('a healthy probe formats no error stack trace, and its connection is closed when it returns', async () => {
    const c = await registry({ auth: 'none' });
    const caches = createProbeCaches();
    const probe = (): Promise<ProbeResult> => probeTarget(`127.0.0.1:${c.f.port}/pub/app:v1`, env(), { timeoutMs: 5000, caches });
    assert.equal((await probe()).ok, true);
    await until(() => c.live() === 0, 5000, 'the first probe’s connection to close');
    // undici's destroy() closed the connection with an error, and Node formatted its stack: on every probe.
    let formatted = 0;
    const prior = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
    Error.prepareStackTrace = (err: Error) => {
      formatted++;
      return String(err);
    };
    let r: ProbeResult;
    try {
      r = await probe();
    } finally {
      if (prior) Object.defineProperty(Error, 'prepareStackTrace', prior);
      else delete (Error as { prepareStackTrace?: unknown }).prepareStackTrace;
    }
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    assert.equal(formatted, 0, 'no error stack formatted during a healthy probe');
    await until(() => c.live() === 0, 5000, 'the probe’s connection to close');
  });

  test('plain anonymous registry: one connection, one HEAD, from the first probe on', async () => {
    const c = await registry({ auth: 'none' });
    const caches = createProbeCaches();
    const probe = (): Promise<ProbeResult> => probeTarget(`127.0.0.1:${c.f.port}/pub/app:v1`, env(), { timeoutMs: 5000, caches });
    for (const round of ['first', 'steady']) {
      const got = await cost(c, probe);
      assert.equal(got.r.ok, true, `${round}: ${got.r.reason}: ${got.r.message}`);
      assert.equal(got.connections, 1, `${round}: one TCP connection`);
      assert.deepEqual(got.requests, ['HEAD /v2/pub/app/manifests/v1'], `${round}: one request`);
      const tls = got.r.steps.find((s) => s.stage === 'tls');
      assert.ok(tls?.detail && 'chain' in tls.detail, 'the certificate facts stay');
      assert.equal(tls.detail.chain.length, 2, 'leaf and CA');
      assert.equal(typeof tls.detail.earliestExpirySeconds, 'number');
    }
  });

  test('an image index: GET once per digest per process; later probes are one HEAD', async () => {
    const c = await registry({ auth: 'none' });
    const m = c.f.putManifest('multi/app', { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }, OCI_MANIFEST);
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: m, size: 10, platform: { os: 'linux', architecture: 'amd64' } }],
    };
    const digest = c.f.putManifest('multi/app', index, OCI_INDEX, 'v1');
    const caches = createProbeCaches();
    const probe = (): Promise<ProbeResult> => probeTarget(`127.0.0.1:${c.f.port}/multi/app:v1`, env(), { timeoutMs: 5000, caches });
    const first = await cost(c, probe);
    assert.equal(first.r.ok, true, `${first.r.reason}: ${first.r.message}`);
    assert.deepEqual(first.requests, ['HEAD /v2/multi/app/manifests/v1', `GET /v2/multi/app/manifests/${digest}`]);
    assert.equal(first.connections, 1, 'the HEAD keeps its connection for the index GET, as containerd’s client does');
    const steady = await cost(c, probe);
    assert.equal(steady.r.ok, true);
    assert.equal(steady.connections, 1);
    assert.deepEqual(steady.requests, ['HEAD /v2/multi/app/manifests/v1']);
  });

  test('a single-platform manifest never costs a GET of the manifest', async () => {
    const c = await registry({ auth: 'none' });
    const got = await cost(c, () =>
      probeTarget(`127.0.0.1:${c.f.port}/pub/app:v1`, env(), { timeoutMs: 5000, caches: createProbeCaches() }),
    );
    assert.equal(got.r.ok, true);
    assert.equal(got.requests.filter((q) => q.startsWith('GET ')).length, 0);
  });

  test('a 404 from a registry (its API-version header) is judged without GET /v2/; a web server’s 404 is asked GET /v2/', async () => {
    const c = await registry({ auth: 'none' });
    const missing = await cost(c, () =>
      probeTarget(`127.0.0.1:${c.f.port}/pub/app:v9`, env(), { timeoutMs: 5000, caches: createProbeCaches() }),
    );
    assert.equal(missing.r.reason, 'manifest_unknown');
    assert.equal(missing.requests.includes('GET /v2/'), false);

    const web = await registry({ auth: 'none' });
    web.f.fault({ path: /./, status: 404, body: '<html>not found</html>' }); // no Docker-Distribution-API-Version header
    const got = await cost(web, () =>
      probeTarget(`127.0.0.1:${web.f.port}/pub/app:v1`, env(), { timeoutMs: 5000, caches: createProbeCaches() }),
    );
    assert.equal(got.r.reason, 'not_a_registry');
    assert.equal(got.r.stage, 'http');
    assert.deepEqual(got.requests, ['HEAD /v2/pub/app/manifests/v1', 'GET /v2/']);
    const http = got.r.steps.find((s) => s.stage === 'http');
    assert.ok(http?.detail && 'challenges' in http.detail);
    assert.equal(http.detail.request, 'GET /v2/');
  });
});
