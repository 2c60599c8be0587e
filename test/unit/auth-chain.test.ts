/**
 * Hostile registry and token service, end to end through probeTarget (issue
 * 6): a registry echoing the Authorization it got never gets a credential
 * into the result; a realm is checked before any DNS/TCP for it; a token the
 * registry refuses (invalid_token) is not "authentication required".
 * Loopback only: IP-literal registries, a loopback DNS server for names.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { probeTarget } from '../../src/probe/chain.js';
import { loadEnvironment, type ProbeEnvironment } from '../../src/node-config/environment.js';
import { TokenCache } from '../../src/probe/token-cache.js';
import type { ProbeResult } from '../../src/model/types.js';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';
import { DOCKER_MANIFEST, FakeRegistry, type FakeRegistryOptions } from '../support/fake-registry.js';
import { within } from '../support/within.js';

const USER = 'alice';
const PASSWORD = 'Sup3r-s3cret-pw';
let ca: TestCA;
let leaf: CertPair;
let dir: string;
const open: { close(): Promise<unknown> }[] = [];

before(() => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['127.0.0.1', 'metadata.google.internal'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-auth-chain-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
});
after(async () => {
  for (const o of open) await o.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function registry(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const f = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key }, auth: 'bearer', users: { [USER]: PASSWORD }, ...opts });
  open.push(f);
  f.addRepo('team/app', { users: [USER] });
  f.addRepo('pub/app', { public: true });
  const m = { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'a'.repeat(64)}` }, layers: [] };
  f.putManifest('team/app', m, DOCKER_MANIFEST, 'v1');
  f.putManifest('pub/app', m, DOCKER_MANIFEST, 'v1');
  return f;
}

function env(port: number | null): ProbeEnvironment {
  let dockerConfigPath: string | null = null;
  if (port !== null) {
    dockerConfigPath = join(dir, `config-${port}.json`);
    const auth = Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    writeFileSync(dockerConfigPath, JSON.stringify({ auths: { [`127.0.0.1:${port}`]: { auth } } }));
  }
  return loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: null,
    caFiles: [join(dir, 'ca.crt')],
    containerdConfigPath: [],
    dockerConfigPath,
    platform: { os: 'linux', architecture: 'amd64' },
  });
}

function leaks(r: ProbeResult, f: FakeRegistry): string[] {
  const text = JSON.stringify(r);
  const pair = `${USER}:${PASSWORD}`;
  const b64 = Buffer.from(pair).toString('base64');
  return [PASSWORD, pair, b64, b64.replace(/=+$/, ''), ...f.issuedTokens].filter((s) => text.includes(s));
}

describe('credentials echoed by the registry never reach the result', () => {
  test('a 429 whose headers echo the Bearer token (docker-ratelimit-source)', async () => {
    const f = await registry();
    // A first probe learns the challenge and the token; the next one sends the token with its first HEAD, as containerd does.
    const tokenCache = new TokenCache();
    assert.equal((await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache })).ok, true);
    f.fault({
      method: 'HEAD',
      path: /manifests/,
      status: 429,
      echoAuthorization: true,
      headers: { 'docker-ratelimit-source': '{authorization}', 'ratelimit-limit': '100;w=21600' },
    });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache });
    assert.equal(r.reason, 'rate_limited');
    assert.ok(f.issuedTokens.length > 0);
    assert.deepEqual(leaks(r, f), []);
  });

  test('a TOOMANYREQUESTS message echoing the Authorization (HEAD refused, GET answered)', async () => {
    const f = await registry();
    f.fault({ method: 'HEAD', path: /manifests/, status: 405 });
    f.fault({
      method: 'GET',
      path: /manifests/,
      status: 429,
      echoAuthorization: true,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'limit reached for {authorization}\u001b[2J' }] }),
    });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.reason, 'rate_limited');
    assert.deepEqual(leaks(r, f), []);
    assert.ok(!(r.message ?? '').includes('\u001b'), 'control characters from the registry are escaped');
  });

  test('a Basic registry echoing the Basic credentials', async () => {
    const f = await registry({ auth: 'basic' });
    f.fault({
      method: 'HEAD',
      path: /manifests/,
      status: 429,
      echoAuthorization: true,
      headers: { 'docker-ratelimit-source': '{authorization}' },
    });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.reason, 'rate_limited');
    assert.deepEqual(leaks(r, f), []);
  });
});

describe('a token the registry refuses (invalid_token)', () => {
  test('anonymous → token_error, not auth_required', async () => {
    const f = await registry({ rejectIssuedTokens: true });
    const r = await probeTarget(`127.0.0.1:${f.port}/pub/app:v1`, env(null), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.reason, 'token_error');
    assert.equal(r.stage, 'auth');
  });

  test('with credentials → auth_rejected, not access_denied', async () => {
    const f = await registry({ rejectIssuedTokens: true });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.reason, 'auth_rejected');
  });
});

describe('the realm is checked before any connection for it', () => {
  test('file:// realm → token_error at auth, no DNS step for it', async () => {
    const f = await registry({ realm: 'file:///etc/shadow' });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.reason, 'token_error');
    assert.equal(r.stage, 'auth');
    assert.equal(r.steps.filter((s) => s.stage === 'dns').length, 1, 'only the registry was resolved');
  });

  test('ftp:// realm on a listening loopback port → token_error naming its host, no TCP connection to it', async () => {
    let connections = 0;
    const s: Server = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await within(new Promise<void>((res) => s.listen(0, '127.0.0.1', res)), 5000, 'the server to listen');
    open.push({ close: () => new Promise<void>((res) => s.close(() => res())) });
    const addr = s.address() as { address: string; port: number };
    const f = await registry({ realm: `ftp://${addr.address}:${addr.port}/token` });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.reason, 'token_error');
    assert.equal(r.host, `${addr.address}:${addr.port}`);
    assert.equal(connections, 0);
  });

  test('metadata.google.internal realm → token_error, never resolved nor connected', async () => {
    const dns: DnsServer = await startDnsServer({ answers: { 'metadata.google.internal': { A: ['127.0.0.1'] } } });
    open.push(dns);
    const f = await registry({ realm: 'https://metadata.google.internal/computeMetadata/v1/token' });
    const before = f.count('GET', /token/);
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), {
      timeoutMs: 5000,
      tokenCache: new TokenCache(),
      dnsPort: dns.port,
    });
    assert.equal(r.reason, 'token_error');
    assert.equal(r.host, 'metadata.google.internal');
    assert.deepEqual(
      dns.queries.filter((q) => q.name.startsWith('metadata')),
      [],
    );
    assert.equal(f.count('GET', /token/), before);
  });
  // A name resolving to a link-local address is refused after DNS, before TCP: tested in
  // auth-hostile.test.ts with an injected connector, never with a real link-local address.
});

describe('a token service that breaks only one of POST and GET (as containerd sees it)', () => {
  test('POST answers 500: token_error at the token host naming the POST, no GET fallback, nothing secret in the result', async () => {
    const f = await registry();
    f.fault({
      method: 'POST',
      path: '/token',
      status: 500,
      body: JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `saw ${PASSWORD}` }] }),
    });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.stage, 'auth');
    assert.equal(r.reason, 'token_error');
    assert.equal(r.host, `127.0.0.1:${f.port}`);
    assert.match(r.message ?? '', /^failed to fetch oauth token: unexpected status from POST request to 127\.0\.0\.1:\d+\/token: 500 /);
    assert.equal(f.count('GET', '/token'), 0);
    assert.deepEqual(leaks(r, f), []);
  });

  test('POST answers 404 (GCR-style): the GET fallback gets the token, the probe is ok and says how', async () => {
    const f = await registry();
    f.fault({ method: 'POST', path: '/token', status: 404 });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.ok, true, r.message ?? '');
    const step = r.steps.find((s) => s.stage === 'auth');
    assert.deepEqual(step?.detail && 'tokenMethod' in step.detail ? [step.detail.tokenMethod, step.detail.tokenPostStatus] : null, [
      'GET',
      404,
    ]);
    assert.equal(f.count('GET', '/token'), 1);
  });

  test('GET broken, POST fine: credentials never need the GET', async () => {
    const f = await registry();
    f.fault({ method: 'GET', path: '/token', status: 500 });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(f.port), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.ok, true, r.message ?? '');
    assert.equal(f.count('POST', '/token'), 1);
  });
});
