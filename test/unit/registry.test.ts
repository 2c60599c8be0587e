import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Agent } from 'undici';
import { causeOf, type Cause, type Reason } from '../../src/diagnosis/catalog.js';
import { createDispatcher } from '../../src/net/dispatcher.js';
import { manifestStage, nearestTags, type ManifestOptions } from '../../src/probe/stages/manifest.js';
import { matchPlatform, parsePlatform } from '../../src/model/platform.js';
import { authStage, type AuthOutcome } from '../../src/probe/stages/auth.js';
import { httpStage } from '../../src/probe/stages/http.js';
import { TokenCache, tokenCacheKey } from '../../src/probe/token-cache.js';
import { IndexCache } from '../../src/probe/index-cache.js';
import { realClock, silentLog, type Credential, type ProbeContext, type StageOutcome } from '../../src/model/types.js';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeTime, settle, track } from '../support/fake-time.js';
import { until, within } from '../support/within.js';
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  FakeRegistry,
  OCI_INDEX,
  OCI_MANIFEST,
  sha256,
  type FakeRegistryOptions,
} from '../support/fake-registry.js';

let ca: TestCA;
let leaf: CertPair;
before(() => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['registry.test', 'auth.test', '127.0.0.1'] });
});
after(() => ca.cleanup());

function ctxFor(ms = 5000): ProbeContext {
  return { signal: new AbortController().signal, deadlineAt: realClock.now() + ms, clock: realClock, log: silentLog, wallNow: Date.now };
}

/** A context on fake time: stage timeouts and the deadline wait for time.advance(). */
function fakeCtx(time: FakeTime, ms = 5000): ProbeContext {
  return { ...ctxFor(ms), deadlineAt: time.now() + ms, clock: time, timers: time };
}

const open: { close(): Promise<unknown> }[] = [];
after(async () => {
  for (const o of open) await o.close();
});

async function fake(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const f = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key }, ...opts });
  open.push(f);
  return f;
}

async function plainFake(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const f = await FakeRegistry.start(opts);
  open.push(f);
  return f;
}

function dispatcher(extra: { ca?: string[]; skipVerify?: Set<string>; pinned?: Map<string, string[]> } = {}): Agent {
  const d = createDispatcher({
    pinned:
      extra.pinned ??
      new Map([
        ['registry.test', ['127.0.0.1']],
        ['auth.test', ['127.0.0.1']],
      ]),
    ca: extra.ca ?? [ca.cert],
    connectTimeoutMs: 2000,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    ...(extra.skipVerify ? { skipVerify: extra.skipVerify } : {}),
  });
  open.push(d);
  return d;
}

const platform = { os: 'linux', architecture: 'amd64' };
/** Index summaries remembered across this file's walks, as the agent keeps one cache. */
const indexes = new IndexCache();
const endpointOf = (f: FakeRegistry): string => `registry.test:${f.port}`;

/** The registry part of the chain: /v2/ → auth → manifest; stops at the first failure. */
async function walk(
  f: FakeRegistry,
  repo: string | null,
  ref: string,
  o: {
    d?: Agent;
    credential?: Credential;
    cache?: TokenCache;
    ctx?: ProbeContext;
    timeoutMs?: number;
    manifest?: Partial<ManifestOptions>;
  } = {},
): Promise<{ last: StageOutcome<object>; steps: StageOutcome<object>[] }> {
  const ctx = o.ctx ?? ctxFor();
  const d = o.d ?? dispatcher();
  const timeoutMs = o.timeoutMs ?? 3000;
  const endpoint = endpointOf(f);
  const http = await httpStage(ctx, { endpoint, scheme: f.scheme }, { dispatcher: d, timeoutMs });
  const steps: StageOutcome<object>[] = [http];
  if (!http.ok) return { last: http, steps };
  const auth: AuthOutcome = await authStage(
    ctx,
    { endpoint, repository: repo, challenges: http.detail.challenges, status: http.detail.status ?? 0, scheme: f.scheme },
    { dispatcher: d, timeoutMs, tokenCache: o.cache ?? new TokenCache(), ...(o.credential ? { credential: o.credential } : {}) },
  );
  const { authorization, ...authStep } = auth;
  steps.push(authStep);
  if (!auth.ok || repo === null) return { last: authStep, steps };
  const m = await manifestStage(
    ctx,
    {
      endpoint,
      repository: repo,
      reference: ref,
      hasCredential: !!o.credential,
      scheme: f.scheme,
      ...(authorization ? { authorization } : {}),
    },
    { dispatcher: d, timeoutMs, platform, indexCache: indexes, ...o.manifest },
  );
  steps.push(m);
  return { last: m, steps };
}

function expectReason(out: StageOutcome<object>, reason: Reason, cause: Cause): void {
  assert.equal(out.ok, false, `expected ${reason}, got ok`);
  assert.equal(out.reason, reason, `message: ${out.message}`);
  assert.equal(causeOf(reason), cause);
}

function image(f: FakeRegistry, repo: string, tag: string, extra = ''): string {
  return f.putManifest(
    repo,
    { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: sha256(repo + tag + extra) }, layers: [] },
    DOCKER_MANIFEST,
    tag,
  );
}

describe('http stage (GET /v2/)', () => {
  test('200 and 401 are a registry; challenges and API version recorded', async () => {
    const anon = await fake();
    const ok = await httpStage(ctxFor(), { endpoint: endpointOf(anon) }, { dispatcher: dispatcher(), timeoutMs: 2000 });
    assert.equal(ok.ok, true);
    assert.equal(ok.detail.status, 200);
    assert.equal(ok.detail.apiVersion, 'registry/2.0');
    const bearer = await fake({ auth: 'bearer', realmHost: 'auth.test:1' });
    const chal = await httpStage(ctxFor(), { endpoint: endpointOf(bearer) }, { dispatcher: dispatcher(), timeoutMs: 2000 });
    assert.equal(chal.ok, true);
    assert.equal(chal.detail.status, 401);
    const [challenge] = chal.detail.challenges;
    assert.ok(challenge, 'a challenge');
    assert.equal(challenge.scheme, 'bearer');
    assert.equal(challenge.params.realm, 'https://auth.test:1/token');
  });

  const statusCases: [number, Reason, Cause][] = [
    [503, 'http_status', 'registry'],
    [500, 'http_status', 'registry'],
    [404, 'not_a_registry', 'registry'],
    [302, 'not_a_registry', 'registry'],
    [403, 'not_a_registry', 'registry'],
    [407, 'proxy_error', 'network'],
  ];
  for (const [status, reason, cause] of statusCases) {
    test(`${status} → ${reason}`, async () => {
      const f = await fake();
      f.fault({ path: '/v2/', status, headers: status === 302 ? { location: '/elsewhere' } : {} });
      const out = await httpStage(ctxFor(), { endpoint: endpointOf(f) }, { dispatcher: dispatcher(), timeoutMs: 2000 });
      expectReason(out, reason, cause);
      assert.equal(out.detail.status, status);
      assert.equal(out.host, endpointOf(f));
    });
  }

  test('headers never arrive → http_timeout within the stage timeout', async () => {
    const f = await fake();
    f.fault({ path: '/v2/', hang: true });
    const time = new FakeTime();
    const run = track(httpStage(fakeCtx(time), { endpoint: endpointOf(f) }, { dispatcher: dispatcher(), timeoutMs: 300 }));
    await until(() => f.count('GET', '/v2/') >= 1, 5000, 'the /v2/ request at the registry');
    time.advance(299);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still waiting 1 ms before the stage timeout');
    time.advance(1);
    const out = await settle(time, run.p, 'the HTTP stage after its timeout');
    expectReason(out, 'http_timeout', 'network');
    assert.equal(out.seconds, 0.3);
  });

  test('plain http endpoint; unpinned host → dns_nxdomain (no fallback resolver)', async () => {
    const f = await plainFake();
    const ok = await httpStage(ctxFor(), { endpoint: endpointOf(f), scheme: 'http' }, { dispatcher: dispatcher(), timeoutMs: 2000 });
    assert.equal(ok.ok, true);
    const out = await httpStage(
      ctxFor(),
      { endpoint: `unpinned.test:${f.port}`, scheme: 'http' },
      { dispatcher: dispatcher(), timeoutMs: 2000 },
    );
    expectReason(out, 'dns_nxdomain', 'network');
  });

  test('dispatcher: CA list trusted, SNI = host name; unknown CA fails unless skip-verify', async () => {
    const f = await fake();
    const noCa = await httpStage(ctxFor(), { endpoint: endpointOf(f) }, { dispatcher: dispatcher({ ca: [] }), timeoutMs: 2000 });
    expectReason(noCa, 'tls_unknown_ca', 'network');
    const skip = await httpStage(
      ctxFor(),
      { endpoint: endpointOf(f) },
      { dispatcher: dispatcher({ ca: [], skipVerify: new Set(['registry.test']) }), timeoutMs: 2000 },
    );
    assert.equal(skip.ok, true);
    const pinned = new Map<string, string[]>();
    const d = dispatcher({ pinned });
    pinned.set('late.test', ['127.0.0.1']); // pinned after creation: the map is live
    const late = await httpStage(ctxFor(), { endpoint: `late.test:${f.port}` }, { dispatcher: d, timeoutMs: 2000 });
    expectReason(late, 'tls_hostname_mismatch', 'network'); // the cert does not name late.test: proves SNI/verify use the host name
  });
});

describe('manifest stage', () => {
  test('image found: digest, media type, length, ratelimit; one HEAD', async () => {
    const f = await fake({ manifestHeaders: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '97;w=21600' } });
    const digest = image(f, 'app/api', 'v2.5.1');
    const { last } = await walk(f, 'app/api', 'v2.5.1');
    assert.equal(last.ok, true, last.message);
    const d = last.detail as Record<string, unknown>;
    assert.equal(d.digest, digest);
    assert.equal(d.mediaType, DOCKER_MANIFEST);
    assert.equal(typeof d.contentLength, 'number');
    assert.deepEqual(d.ratelimit, { limit: 100, remaining: 97, windowSeconds: 21600 });
    assert.equal(f.count('HEAD', '/v2/app/api/manifests/v2.5.1'), 1);
    assert.equal(f.count('GET', /manifests/), 0);
  });

  test('the Accept list makes an OCI index resolvable (registry 2.8 hides it otherwise)', async () => {
    const f = await fake();
    const m = f.putManifest('lab/oci', { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }, OCI_MANIFEST);
    const idx = f.putManifest(
      'lab/oci',
      { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: m, size: 1, platform }] },
      OCI_INDEX,
      'v1',
    );
    const { last } = await walk(f, 'lab/oci', 'v1');
    assert.equal(last.ok, true, last.message);
    assert.equal((last.detail as Record<string, unknown>).digest, idx);
    assert.equal((last.detail as Record<string, unknown>).platformDigest, m);
    // the fake does emulate 2.8: the same HEAD without the OCI index type is a 404
    const h = await plainFake();
    h.putManifest('lab/oci', { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }, OCI_INDEX, 'v1');
    const res = await fetch(`http://127.0.0.1:${h.port}/v2/lab/oci/manifests/v1`, { method: 'HEAD', headers: { accept: DOCKER_MANIFEST } });
    assert.equal(res.status, 404);
  });

  test('index without the node platform → platform_missing listing what exists; checkPlatform off skips the GET', async () => {
    const f = await fake();
    const a = f.putManifest('multi/img', { n: 'amd64' }, DOCKER_MANIFEST);
    const s = f.putManifest('multi/img', { n: 's390x' }, DOCKER_MANIFEST);
    const idx = f.putManifest(
      'multi/img',
      {
        schemaVersion: 2,
        mediaType: DOCKER_LIST,
        manifests: [
          { digest: a, platform: { os: 'linux', architecture: 'amd64' } },
          { digest: s, platform: { os: 'linux', architecture: 's390x' } },
          { digest: a, platform: { os: 'unknown', architecture: 'unknown' } },
        ],
      },
      DOCKER_LIST,
      'latest',
    );
    const arm = { os: 'linux', architecture: 'arm64' };
    const { last } = await walk(f, 'multi/img', 'latest', { manifest: { platform: arm } });
    expectReason(last, 'platform_missing', 'missing');
    assert.deepEqual((last.detail as Record<string, unknown>).platforms, ['linux/amd64', 'linux/s390x']);
    assert.equal(f.count('GET', `/v2/multi/img/manifests/${idx}`), 1, 'index fetched by digest');
    const off = await walk(f, 'multi/img', 'latest', { manifest: { platform: arm, checkPlatform: false } });
    assert.equal(off.last.ok, true);
    assert.equal(f.count('GET', /manifests/), 1, 'no GET when the platform check is off');
    // The index of a digest never changes: later probes decide from the remembered one.
    const again = await walk(f, 'multi/img', 'latest', { manifest: { platform: arm } });
    expectReason(again.last, 'platform_missing', 'missing');
    assert.equal((again.last.detail as Record<string, unknown>).indexCached, true);
    const amd = await walk(f, 'multi/img', 'latest', { manifest: { platform: { os: 'linux', architecture: 'amd64' } } });
    assert.equal(amd.last.ok, true);
    assert.equal(f.count('GET', /manifests/), 1, 'one GET of the index for all probes: only HEADs after the first');
  });

  test('missing tag → manifest_unknown with the nearest existing tags', async () => {
    const f = await fake();
    for (const t of ['v2.5.0', 'v2.5.1', 'v1.0.0', 'latest', 'v2.4.0']) image(f, 'app/api', t);
    const { last } = await walk(f, 'app/api', 'v2.5.2');
    expectReason(last, 'manifest_unknown', 'missing');
    assert.deepEqual((last.detail as Record<string, unknown>).nearestTags, ['v2.5.0', 'v2.5.1', 'v2.4.0']);
    assert.match(last.hint ?? '', /v2\.5\.1/);
  });

  test('unknown repository (2.8 says MANIFEST_UNKNOWN) → tags/list → name_unknown', async () => {
    const f = await fake();
    image(f, 'app/api', 'v1');
    const { last } = await walk(f, 'app/apii', 'v1');
    expectReason(last, 'name_unknown', 'name');
    assert.equal(f.count('GET', '/v2/app/apii/tags/list'), 1);
  });

  test('NAME_UNKNOWN in a body is believed without tags/list', async () => {
    const f = await fake();
    // a registry refusing HEAD: the GET retry carries the error body
    f.fault({ path: '/v2/x/y/manifests/v1', method: 'HEAD', status: 405 });
    f.fault({
      path: '/v2/x/y/manifests/v1',
      status: 404,
      body: '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}',
    });
    const { last } = await walk(f, 'x/y', 'v1');
    expectReason(last, 'name_unknown', 'name');
    assert.equal(f.count('GET', '/v2/x/y/tags/list'), 0);
  });

  test('429 → rate_limited with Retry-After; 5xx → http_status; 403 → access_denied; hang → http_timeout', async () => {
    const f = await fake();
    image(f, 'app/api', 'v1');
    f.fault({ path: '/v2/app/api/manifests/v1', times: 1, status: 429, headers: { 'retry-after': '30' } });
    const rl = await walk(f, 'app/api', 'v1');
    expectReason(rl.last, 'rate_limited', 'registry');
    assert.equal((rl.last.detail as Record<string, unknown>).retryAfterSeconds, 30);
    f.fault({ path: '/v2/app/api/manifests/v1', times: 1, status: 502 });
    expectReason((await walk(f, 'app/api', 'v1')).last, 'http_status', 'registry');
    f.fault({ path: '/v2/app/api/manifests/v1', times: 1, status: 403 });
    expectReason((await walk(f, 'app/api', 'v1')).last, 'access_denied', 'credentials');
    f.fault({ path: '/v2/app/api/manifests/v1', times: 1, hang: true });
    expectReason((await walk(f, 'app/api', 'v1', { timeoutMs: 300 })).last, 'http_timeout', 'network');
  });
});

describe('auth', () => {
  const users = { alice: 'canary-Pa55-w0rd!', bob: 'bob-secret-77' };
  const alice: Credential = { username: 'alice', password: users.alice, source: '/etc/docker/config.json auths["registry.test"]' };
  const bob: Credential = { username: 'bob', password: users.bob, source: 'test' };
  const wrong: Credential = { username: 'alice', password: 'canary-WRONG-pw', source: 'test' };
  const bearerFake = (o: FakeRegistryOptions = {}): Promise<FakeRegistry> => fake({ auth: 'bearer', users, realmHost: 'auth.test', ...o });

  test('anonymous registry: status 200 → scheme none, no authorization', async () => {
    const f = await fake();
    const { steps } = await walk(f, null, '');
    const step = steps[1];
    assert.ok(step, 'a second step');
    assert.equal(step.ok, true);
    assert.equal((step.detail as Record<string, unknown>).scheme, 'none');
  });

  test('basic: none → auth_required; wrong → auth_rejected (bare and image); not allowed → access_denied; right → ok', async () => {
    const f = await fake({ auth: 'basic', users });
    image(f, 'team/app', 'v1');
    f.addRepo('bob/only', { users: ['bob'] });
    image(f, 'bob/only', 'v1');
    expectReason((await walk(f, 'team/app', 'v1')).last, 'auth_required', 'credentials');
    expectReason((await walk(f, null, '', { credential: wrong })).last, 'auth_rejected', 'credentials');
    expectReason((await walk(f, 'team/app', 'v1', { credential: wrong })).last, 'auth_rejected', 'credentials');
    expectReason((await walk(f, 'bob/only', 'v1', { credential: alice })).last, 'access_denied', 'credentials');
    const ok = await walk(f, 'team/app', 'v1', { credential: alice });
    assert.equal(ok.last.ok, true, ok.last.message);
    assert.equal((ok.steps[1]?.detail as Record<string, unknown>).scheme, 'basic');
    assert.equal((ok.steps[1]?.detail as Record<string, unknown>).credentialSource, alice.source);
    assert.equal((await walk(f, null, '', { credential: alice })).last.ok, true);
  });

  test('bearer: anonymous pull of a public repo; second probe makes 1 HEAD and 0 token requests', async () => {
    const f = await bearerFake();
    f.addRepo('library/nginx', { public: true });
    image(f, 'library/nginx', 'latest');
    const cache = new TokenCache();
    const first = await walk(f, 'library/nginx', 'latest', { cache });
    assert.equal(first.last.ok, true, first.last.message);
    assert.equal(f.count('GET', '/token'), 1);
    const heads = f.count('HEAD', /manifests/);
    const second = await walk(f, 'library/nginx', 'latest', { cache });
    assert.equal(second.last.ok, true, second.last.message);
    assert.equal(f.count('GET', '/token'), 1, 'no second token request');
    assert.equal(f.count('HEAD', /manifests/) - heads, 1);
    const d = second.steps[1]?.detail as Record<string, unknown>;
    assert.equal(d.tokenCached, true);
    assert.equal(d.scope, 'repository:library/nginx:pull');
    assert.equal(d.realm, `https://auth.test:${f.port}/token`);
    // another identity does not reuse the anonymous token
    assert.equal((await walk(f, 'library/nginx', 'latest', { cache, credential: alice })).last.ok, true);
    assert.equal(f.count('POST', '/token'), 1, 'with a password: the OAuth POST, as containerd');
    assert.equal(f.count('GET', '/token'), 1);
  });

  test('bearer: anonymous on a private repo → auth_required; wrong password → auth_rejected at the token host; not granted → access_denied', async () => {
    const f = await bearerFake();
    f.addRepo('bob/only', { users: ['bob'] });
    image(f, 'bob/only', 'v1');
    expectReason((await walk(f, 'bob/only', 'v1')).last, 'auth_required', 'credentials');
    const rej = await walk(f, 'bob/only', 'v1', { credential: wrong });
    expectReason(rej.last, 'auth_rejected', 'credentials');
    assert.equal(rej.last.host, `auth.test:${f.port}`);
    expectReason((await walk(f, 'bob/only', 'v1', { credential: alice })).last, 'access_denied', 'credentials');
    assert.equal((await walk(f, 'bob/only', 'v1', { credential: bob })).last.ok, true);
    const anonRefused = await bearerFake({ anonymousTokenRefused: true });
    expectReason((await walk(anonRefused, 'x/y', 'v1')).last, 'auth_required', 'credentials');
  });

  const tokenFaults: [string, Parameters<FakeRegistry['fault']>[0]][] = [
    ['500', { path: '/token', status: 500 }],
    ['non-JSON', { path: '/token', status: 200, body: '<html>login</html>' }],
    ['no token', { path: '/token', status: 200, body: '{"expires_in":300}' }],
    ['hang', { path: '/token', hang: true }],
  ];
  for (const [name, fault] of tokenFaults) {
    test(`token service ${name} → token_error with host = realm host`, async () => {
      const f = await bearerFake();
      f.addRepo('pub/img', { public: true });
      image(f, 'pub/img', 'v1');
      f.fault(fault);
      const { last } = await walk(f, 'pub/img', 'v1', { timeoutMs: 400 });
      expectReason(last, 'token_error', 'network');
      assert.equal(last.host, `auth.test:${f.port}`);
      assert.equal(f.count('HEAD', /manifests/), 0);
    });
  }

  test('the probe deadline bounds a hanging token service even with a long stage timeout', async () => {
    const f = await bearerFake();
    f.addRepo('pub/img', { public: true });
    f.fault({ path: '/token', hang: true });
    const time = new FakeTime();
    const run = track(walk(f, 'pub/img', 'v1', { ctx: fakeCtx(time, 600), timeoutMs: 30_000 }));
    await until(() => f.count('GET', /token/) >= 1, 5000, 'the token request at the registry');
    time.advance(599);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still waiting for the token before the 600 ms deadline');
    time.advance(1);
    const { last } = await settle(time, run.p, 'the walk at the probe deadline');
    expectReason(last, 'token_error', 'network');
    assert.equal(last.seconds, 0.6, 'ended at the probe deadline, not after the 30 s stage timeout');
  });

  test('realm host refusing connections → tcp_refused with host = realm host', async () => {
    const closed = createServer();
    await within(new Promise<void>((r) => closed.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
    const port = (closed.address() as { port: number }).port;
    await within(new Promise<void>((r) => closed.close(() => r())), 5000, 'the server to close');
    const f = await bearerFake({ realmHost: `auth.test:${port}` });
    const { last } = await walk(f, 'pub/img', 'v1');
    expectReason(last, 'tcp_refused', 'network');
    assert.equal(last.host, `auth.test:${port}`);
  });

  test('bare registry without credentials: a Basic or Bearer challenge means reachable; the token service is still exercised', async () => {
    const basic = await fake({ auth: 'basic', users });
    const b = await walk(basic, null, '');
    assert.equal(b.last.ok, true, b.last.message);
    assert.equal((b.steps[1]?.detail as Record<string, unknown>).scheme, 'basic');
    const f = await bearerFake();
    const t = await walk(f, null, '');
    assert.equal(t.last.ok, true, t.last.message);
    assert.equal(f.count('GET', '/token'), 1, 'anonymous token fetched: the token service is on the path');
    f.fault({ path: '/token', status: 500 });
    expectReason((await walk(f, null, '', { cache: new TokenCache() })).last, 'token_error', 'network');
  });

  test('bare registry with bearer: token without scope, verified on /v2/', async () => {
    const f = await bearerFake();
    const { last, steps } = await walk(f, null, '', { credential: alice });
    assert.equal(last.ok, true, last.message);
    assert.equal((steps[1]?.detail as Record<string, unknown>).scope, undefined);
    assert.equal(f.count('GET', '/v2/'), 2);
  });

  test('canary: credentials, auth strings and tokens never appear in detail, messages or hints', async () => {
    const f = await bearerFake();
    f.addRepo('bob/only', { users: ['bob'] });
    image(f, 'bob/only', 'v1');
    const basic = await fake({ auth: 'basic', users });
    image(basic, 'bob/only', 'v1');
    const outs: StageOutcome<object>[] = [];
    for (const [reg, cred] of [
      [f, alice],
      [f, wrong],
      [f, bob],
      [basic, alice],
      [basic, wrong],
    ] as const) {
      outs.push(...(await walk(reg, 'bob/only', 'v1', { credential: cred })).steps);
      outs.push(...(await walk(reg, null, '', { credential: cred })).steps);
    }
    f.fault({ path: '/token', status: 500 });
    outs.push(...(await walk(f, 'bob/only', 'v1', { credential: alice, cache: new TokenCache() })).steps);
    const text = JSON.stringify(outs);
    const secrets = [
      users.alice,
      users.bob,
      wrong.password,
      ...f.issuedTokens,
      ...[alice, wrong, bob].map((c) => Buffer.from(`${c.username}:${c.password}`).toString('base64')),
    ];
    assert.ok(f.issuedTokens.length > 0);
    for (const s of secrets) assert.ok(!text.includes(s), 'a secret leaked into a stage outcome');
    assert.ok(!/Bearer [0-9a-f]{8}|Basic [A-Za-z0-9+/=]{8}/.test(text));
  });
});

describe('token cache', () => {
  test('expiry with margin, default 60 s, issued_at honoured, identity hashed', () => {
    let now = Date.parse('2025-01-01T00:00:00Z');
    const c = new TokenCache({ wallNow: () => now, marginSeconds: 5 });
    const k = tokenCacheKey({ realm: 'https://auth/token', service: 's', scope: 'repository:a:pull', username: 'alice' });
    assert.ok(!k.includes('alice'));
    assert.notEqual(k, tokenCacheKey({ realm: 'https://auth/token', service: 's', scope: 'repository:a:pull' }));
    c.set(k, 'tok', undefined);
    now += 54_000;
    assert.equal(c.get(k)?.token, 'tok');
    now += 2_000; // 56 s: inside the 5 s margin of the default 60 s
    assert.equal(c.get(k), undefined);
    c.set(k, 'old', 300, new Date(now - 290_000).toISOString()); // issued 290 s ago: 10 s left
    now += 6_000;
    assert.equal(c.get(k), undefined);
    c.set(k, 'future', 120, new Date(now + 3_600_000).toISOString()); // token server clock ahead: not longer than now + 120
    now += 116_000;
    assert.equal(c.get(k), undefined);
    c.set(k, 'secret-token-value', 600);
    assert.ok(!JSON.stringify({ c }).includes('secret-token-value'));
  });
});

describe('platform and tags helpers', () => {
  const index = {
    manifests: [
      { digest: 'sha256:a', platform: { os: 'linux', architecture: 'amd64' } },
      { digest: 'sha256:b', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { digest: 'sha256:c', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    ],
  };
  test('matchPlatform: arm64 v8 default, arm variant fallback, aliases', () => {
    assert.equal(matchPlatform(index, { os: 'linux', architecture: 'arm64' }).match?.digest, 'sha256:b');
    assert.equal(matchPlatform(index, { os: 'linux', architecture: 'aarch64', variant: 'v8' }).match?.digest, 'sha256:b');
    assert.equal(matchPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }).match?.digest, 'sha256:c');
    assert.equal(matchPlatform(index, { os: 'linux', architecture: 'x86_64' }).match?.digest, 'sha256:a');
    const miss = matchPlatform(index, { os: 'windows', architecture: 'amd64' });
    assert.equal(miss.match, undefined);
    assert.deepEqual(miss.available, ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v6']);
    const noVariant = { manifests: [{ digest: 'sha256:d', platform: { os: 'linux', architecture: 'arm64' } }] };
    assert.equal(matchPlatform(noVariant, { os: 'linux', architecture: 'arm64', variant: 'v8' }).match?.digest, 'sha256:d');
    assert.deepEqual(matchPlatform('junk', { os: 'linux', architecture: 'amd64' }), { available: [], platformCount: 0 });
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.equal(parsePlatform('linux'), undefined);
  });

  test('nearestTags: edit distance, at most 3', () => {
    assert.deepEqual(nearestTags('lates', ['latest', 'v1', 'stable', 'last']), ['latest', 'last', 'stable']);
    assert.deepEqual(nearestTags('x', []), []);
  });
});

test('token cache is bounded: past maxEntries the oldest stored token is dropped, a re-stored one counts as new', () => {
  const c = new TokenCache({ wallNow: () => 0, maxEntries: 2 });
  c.set('a', 'ta', 60);
  c.set('b', 'tb', 60);
  c.set('a', 'ta2', 60);
  c.set('c', 'tc', 60);
  assert.equal(c.size, 2);
  assert.equal(c.get('b'), undefined, 'b was the oldest');
  assert.equal(c.get('a')?.token, 'ta2');
  assert.equal(c.get('c')?.token, 'tc');
});
