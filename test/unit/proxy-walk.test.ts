/**
 * An https endpoint through an HTTP proxy, as containerd goes through the
 * proxy of its environment: dns and tcp to the proxy (their steps name it),
 * a CONNECT tunnel to the registry (a refusal is proxy_error, naming the
 * proxy), then TLS with the registry over that same socket, which carries
 * the requests. A loopback CONNECT proxy that counts its tunnels; for plain
 * http, a real tinyproxy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { within } from '../support/within.js';
import { FakeRegistry, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../support/fake-registry.js';
import { freePort, startTinyproxy, type Tinyproxy } from '../support/tinyproxy.js';
import { walkEndpoint, type Endpoint, type Walk } from '../../src/probe/endpoint-walk.js';
import { parseTarget } from '../../src/model/reference.js';
import { realClock, type ProbeContext } from '../../src/model/types.js';
import { loadEnvironment } from '../../src/node-config/environment.js';
import { TokenCache } from '../../src/probe/token-cache.js';

let ca: TestCA;
let leaf: CertPair;
let dir: string;
let registry: FakeRegistry;
let proxy: Server;
let proxyPort = 0;
let refuse = false;
const tunnels: string[] = [];
const sockets = new Set<Socket>();

before(async () => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-proxy-walk-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 auth.test\n');
  registry = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key } });
  registry.putManifest('team/app', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
  // A minimal CONNECT proxy: only 127.0.0.1 targets, or 403 when `refuse` is set.
  proxy = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.once('data', (head: Buffer) => {
      const m = /^CONNECT (127\.0\.0\.1|auth\.test):(\d+) HTTP\/1\.1\r\n/.exec(head.toString('latin1'));
      if (!m || refuse) {
        client.end('HTTP/1.1 403 Access violation\r\n\r\n');
        return;
      }
      tunnels.push(`${m[1]}:${m[2]}`);
      // The proxy resolves names itself (auth.test is only in the proxy's view, like a corporate proxy's DNS).
      const upstream = connect({ host: '127.0.0.1', port: Number(m[2]) }, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        client.pipe(upstream).pipe(client);
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
    });
  });
  await within(new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r)), 5000, 'the proxy to listen');
  proxyPort = (proxy.address() as AddressInfo).port;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await within(new Promise<void>((r) => proxy.close(() => r())), 5000, 'the proxy to close');
  await registry.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

type Walked = { failure: Awaited<ReturnType<typeof walkEndpoint>>; w: Walk };

/** Walk `image` on one endpoint (its trust filled in from the test CA) with a fresh context and token cache. */
async function walkOn(image: string, endpoint: Omit<Endpoint, 'ca'>, proxyFor?: Walk['opts']['proxyFor']): Promise<Walked> {
  const parsed = parseTarget(image);
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
    hostsPath: join(dir, 'hosts'),
    caFiles: [join(dir, 'ca.crt')],
    containerdConfigPath: [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
  const w: Walk = {
    ctx,
    env,
    steps: [],
    current: { stage: 'dns' },
    opts: { timeoutMs: 5000, checkPlatform: true, tokenCache: new TokenCache(), ...(proxyFor ? { proxyFor } : {}) },
  };
  const failure = await walkEndpoint(w, parsed.target, { ...endpoint, ca: env.ca });
  return { failure, w };
}

async function walk(tag = 'v1', o: { reg?: FakeRegistry; proxyPort?: number; proxyFor?: Walk['opts']['proxyFor'] } = {}): Promise<Walked> {
  const reg = o.reg ?? registry;
  return walkOn(
    `127.0.0.1:${reg.port}/team/app:${tag}`,
    {
      endpoint: `127.0.0.1:${reg.port}`,
      scheme: 'https',
      skipVerify: false,
      proxy: new URL(`http://user:secret@127.0.0.1:${o.proxyPort ?? proxyPort}`),
    },
    o.proxyFor,
  );
}

describe('through an HTTP proxy', () => {
  test('tcp to the proxy, CONNECT, TLS with the registry over the tunnel, the HEAD on it: one tunnel', async () => {
    tunnels.length = 0;
    const before = registry.requests.length;
    const { failure, w } = await walk();
    assert.equal(failure, null, failure?.outcome.message);
    assert.deepEqual(
      w.steps.map((s) => `${s.stage}:${s.host ?? ''}`),
      [
        'dns:127.0.0.1',
        `tcp:127.0.0.1:${proxyPort}`,
        `tls:127.0.0.1:${registry.port}`,
        `http:127.0.0.1:${registry.port}`,
        `auth:127.0.0.1:${registry.port}`,
        `manifest:127.0.0.1:${registry.port}`,
      ],
    );
    assert.deepEqual(tunnels, [`127.0.0.1:${registry.port}`], 'one tunnel carries the handshake and the request');
    assert.deepEqual(
      registry.requests.slice(before).map((r) => `${r.method} ${r.path}`),
      ['HEAD /v2/team/app/manifests/v1'],
    );
  });

  test('a connection dialled again (the registry closed it after the HEAD) goes through the proxy too', async () => {
    tunnels.length = 0;
    const before = registry.requests.length;
    registry.fault({
      method: 'HEAD',
      path: '/v2/team/app/manifests/v2',
      times: 1,
      status: 404,
      headers: { connection: 'close', 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' },
    });
    const { failure, w } = await walk('v2');
    assert.equal(failure?.outcome.reason, 'manifest_unknown', JSON.stringify(w.steps));
    assert.deepEqual(
      registry.requests.slice(before).map((r) => `${r.method} ${r.path}`),
      ['HEAD /v2/team/app/manifests/v2', 'GET /v2/team/app/tags/list'],
    );
    assert.deepEqual(tunnels, [`127.0.0.1:${registry.port}`, `127.0.0.1:${registry.port}`]);
    const http = w.steps.find((s) => s.stage === 'http');
    assert.ok(http?.detail && 'challenges' in http.detail);
    assert.equal(http.detail.redials, 1);
  });

  test('the proxy refuses the tunnel: proxy_error at the proxy, no TLS step, no secret in the message', async () => {
    refuse = true;
    try {
      const { failure, w } = await walk();
      assert.equal(failure?.outcome.reason, 'proxy_error');
      assert.equal(failure.outcome.host, `127.0.0.1:${proxyPort}`);
      assert.match(failure.outcome.message ?? '', /403|Access violation/);
      assert.doesNotMatch(JSON.stringify(w.steps), /secret/);
      assert.equal(
        w.steps.some((s) => s.stage === 'tls'),
        false,
      );
    } finally {
      refuse = false;
    }
  });

  test('the proxy itself is down: proxy_error naming the proxy (never the registry behind it), no fallback to going direct', async () => {
    const dead = createServer();
    await within(new Promise<void>((r) => dead.listen(0, '127.0.0.1', r)), 5000, 'a port to listen');
    const deadPort = (dead.address() as AddressInfo).port;
    await within(new Promise<void>((r) => dead.close(() => r())), 5000, 'the port to close');
    const before = registry.requests.length;
    const { failure, w } = await walk('v1', { proxyPort: deadPort });
    assert.equal(failure?.outcome.reason, 'proxy_error', JSON.stringify(w.steps));
    assert.equal(failure.outcome.host, `127.0.0.1:${deadPort}`);
    assert.match(failure.outcome.message ?? '', /proxy/);
    assert.doesNotMatch(JSON.stringify(w.steps), /secret/);
    assert.equal(registry.requests.length, before, 'nothing reached the registry directly');
  });

  test('the token service is reached through the proxy its host gets, as containerd sends its token request', async () => {
    // The token service on its own name (auth.test), so its hop is its own: dns, then through the proxy.
    const both = ca.issue('registry-and-auth', { sans: ['127.0.0.1', 'auth.test'] });
    const tokenReg = await FakeRegistry.start({ tls: { cert: both.cert, key: both.key }, auth: 'bearer', realmHost: 'auth.test' });
    try {
      tokenReg.addRepo('team/app', { public: true });
      tokenReg.putManifest('team/app', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
      tunnels.length = 0;
      const asked: string[] = [];
      const { failure, w } = await walk('v1', {
        reg: tokenReg,
        proxyFor: (scheme, host, port) => {
          asked.push(`${scheme}://${host}:${port}`);
          return new URL(`http://127.0.0.1:${proxyPort}`);
        },
      });
      assert.equal(failure, null, JSON.stringify(w.steps));
      assert.deepEqual(asked, [`https://auth.test:${tokenReg.port}`], 'the walk asked which proxy the token service gets');
      assert.ok(tunnels.includes(`auth.test:${tokenReg.port}`), `the token request tunnelled: ${tunnels.join(', ')}`);
      assert.ok(tunnels.includes(`127.0.0.1:${tokenReg.port}`), `the registry tunnelled: ${tunnels.join(', ')}`);
    } finally {
      await tokenReg.close();
    }
  });
});

/**
 * A plain http registry behind HTTP_PROXY, as Go's transport (containerd's)
 * sends it: no tunnel, every request to the proxy with the absolute URL as its
 * target and the proxy's credentials. A real tinyproxy (Debian package) with
 * BasicAuth, forwarding to the loopback registry.
 */
describe('plain http through an HTTP proxy', () => {
  let plain: FakeRegistry;
  let proxy: Tinyproxy;
  const connects = (): number => (proxy.log().match(/Connect \(file descriptor/g) ?? []).length;

  before(async () => {
    plain = await FakeRegistry.start();
    plain.putManifest('team/app', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
    proxy = await startTinyproxy(['BasicAuth user secret']);
  });
  after(async () => {
    await proxy.stop();
    await plain.close();
  });

  const walkPlain = (proxyUrl: string, image = 'team/app:v1'): Promise<Walked> =>
    walkOn(`127.0.0.1:${plain.port}/${image}`, {
      endpoint: `127.0.0.1:${plain.port}`,
      scheme: 'http',
      skipVerify: false,
      proxy: new URL(proxyUrl),
    });

  test('tcp to the proxy, the HEAD to the proxy in absolute form with its credentials: one connection', async () => {
    const before = plain.requests.length;
    const connected = connects();
    const { failure, w } = await walkPlain(`http://user:secret@127.0.0.1:${proxy.port}`);
    assert.equal(failure, null, `${failure?.outcome.message}\n${proxy.log()}`);
    assert.deepEqual(
      w.steps.map((s) => `${s.stage}:${s.host ?? ''}`),
      [
        'dns:127.0.0.1',
        `tcp:127.0.0.1:${proxy.port}`,
        `http:127.0.0.1:${plain.port}`,
        `auth:127.0.0.1:${plain.port}`,
        `manifest:127.0.0.1:${plain.port}`,
      ],
    );
    assert.match(proxy.log(), new RegExp(`HEAD http://127\\.0\\.0\\.1:${plain.port}/v2/team/app/manifests/v1 HTTP/1\\.1`));
    assert.equal(connects() - connected, 1, `the connection the tcp step made carries the request:\n${proxy.log()}`);
    assert.deepEqual(
      plain.requests.slice(before).map((r) => `${r.method} ${r.path}`),
      ['HEAD /v2/team/app/manifests/v1'],
    );
    assert.doesNotMatch(JSON.stringify(w.steps), /secret|dXNlcjpzZWNyZXQ/);
  });

  test('tinyproxy closes after every answer: the index GET on that connection is sent again on a new one, as Go retries it', async () => {
    const m = plain.putManifest('multi/app', { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }, OCI_MANIFEST);
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: m, size: 10, platform: { os: 'linux', architecture: 'amd64' } }],
    };
    const digest = plain.putManifest('multi/app', index, OCI_INDEX, 'v1');
    const before = plain.requests.length;
    const connected = connects();
    const { failure, w } = await walkPlain(`http://user:secret@127.0.0.1:${proxy.port}`, 'multi/app:v1');
    assert.equal(failure, null, `${failure?.outcome.message}\n${proxy.log()}`);
    assert.deepEqual(
      plain.requests.slice(before).map((r) => `${r.method} ${r.path}`),
      ['HEAD /v2/multi/app/manifests/v1', `GET /v2/multi/app/manifests/${digest}`],
    );
    assert.equal(connects() - connected, 2, `a second connection to the proxy for the GET:\n${proxy.log()}`);
    assert.ok(w.steps.every((s) => s.ok));
  });

  test("the proxy refuses the credentials: its 401 reads as the registry's (as containerd reads it), and the message names the proxy", async () => {
    const before = plain.requests.length;
    const { failure, w } = await walkPlain(`http://user:wrong-secret@127.0.0.1:${proxy.port}`);
    assert.equal(failure?.outcome.reason, 'auth_required', JSON.stringify(w.steps));
    assert.match(failure.outcome.message ?? '', new RegExp(`through the proxy http://127\\.0\\.0\\.1:${proxy.port} .*its own credentials`));
    assert.doesNotMatch(JSON.stringify(w.steps), /wrong-secret/);
    assert.equal(plain.requests.length, before, 'nothing reached the registry');
  });

  test('the proxy is down: proxy_error naming the proxy, no fallback to going direct', async () => {
    const deadPort = await freePort();
    const before = plain.requests.length;
    const { failure, w } = await walkPlain(`http://user:secret@127.0.0.1:${deadPort}`);
    assert.equal(failure?.outcome.reason, 'proxy_error', JSON.stringify(w.steps));
    assert.equal(failure.outcome.host, `127.0.0.1:${deadPort}`);
    const detail = failure.outcome.detail as { request?: string } | undefined;
    assert.equal(detail?.request, `http://127.0.0.1:${plain.port}`);
    assert.doesNotMatch(JSON.stringify(w.steps), /secret/);
    assert.equal(plain.requests.length, before, 'nothing reached the registry directly');
  });
});
