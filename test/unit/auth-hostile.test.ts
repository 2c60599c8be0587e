/**
 * The auth stage against a hostile or odd registry and token service (issue 6):
 * where the realm may send the node, what it may send there, odd but legal
 * answers (big headers, bad tokens, endless lifetimes, unterminated quotes,
 * a token the registry refuses), and credentials echoed back. Loopback
 * servers only; a realm that names another address gets a dispatcher whose
 * connector records the attempt and fails, so nothing leaves the machine.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent } from 'undici';
import { createDispatcher } from '../../src/net/dispatcher.js';
import { checkRealm, forbiddenRealmAddresses, isLinkLocalOrMetadata } from '../../src/probe/realm-policy.js';
import { authStage, refusedTokenVerdict, type AuthOutcome } from '../../src/probe/stages/auth.js';
import { httpStage } from '../../src/probe/stages/http.js';
import { Secrets } from '../../src/probe/scrub.js';
import { MAX_EXPIRES_IN, TokenCache } from '../../src/probe/token-cache.js';
import { realClock, silentLog, type Credential, type ProbeContext } from '../../src/model/types.js';
import { parseWwwAuthenticate } from '../../src/probe/www-authenticate.js';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeRegistry, type FakeRegistryOptions } from '../support/fake-registry.js';
import { within } from '../support/within.js';

let ca: TestCA;
let leaf: CertPair;
before(() => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['registry.test', '127.0.0.1'] });
});
const open: { close(): Promise<unknown> }[] = [];
after(async () => {
  for (const o of open) await o.close();
  ca.cleanup();
});

const cred: Credential = { username: 'alice', password: 'pa55-w0rd-Secret', source: 'test config.json' };

function ctxFor(ms = 5000): ProbeContext {
  return { signal: new AbortController().signal, deadlineAt: realClock.now() + ms, clock: realClock, log: silentLog, wallNow: Date.now };
}

async function fake(opts: FakeRegistryOptions = {}, tls = true): Promise<FakeRegistry> {
  const f = await FakeRegistry.start({ ...(tls ? { tls: { cert: leaf.cert, key: leaf.key } } : {}), auth: 'bearer', ...opts });
  open.push(f);
  return f;
}

function dispatcher(): Agent {
  const d = createDispatcher({
    pinned: new Map([['registry.test', ['127.0.0.1']]]),
    ca: [ca.cert],
    connectTimeoutMs: 2000,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
  });
  open.push(d);
  return d;
}

/** A dispatcher that never connects: every attempt is recorded and fails. */
function recordingDispatcher(): { d: Agent; attempts: string[] } {
  const attempts: string[] = [];
  const d = new Agent({
    connect: (o, cb) => {
      attempts.push(`${o.hostname}:${o.port}`);
      cb(Object.assign(new Error('connect blocked by the test'), { code: 'ECONNREFUSED' }), null);
    },
  });
  open.push(d);
  return { d, attempts };
}

/** A loopback TCP listener that only counts connections. */
async function countingListener(): Promise<{ port: number; count: () => number }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const s: Server = createServer((sock) => {
    n++;
    sockets.add(sock);
    sock.destroy();
  });
  await within(new Promise<void>((r) => s.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
  open.push({
    close: () =>
      new Promise<void>((r) => {
        for (const x of sockets) x.destroy();
        s.close(() => r());
      }),
  });
  return { port: (s.address() as { port: number }).port, count: () => n };
}

async function auth(
  challengeHeader: string,
  o: {
    d?: Agent;
    credential?: Credential;
    cache?: TokenCache;
    repo?: string | null;
    pinned?: Map<string, string[]>;
    secrets?: Secrets;
    endpoint?: string;
  } = {},
): Promise<AuthOutcome> {
  return authStage(
    ctxFor(),
    {
      endpoint: o.endpoint ?? 'registry.test:443',
      repository: o.repo === undefined ? 'team/app' : o.repo,
      challenges: parseWwwAuthenticate([challengeHeader]),
      status: 401,
    },
    {
      dispatcher: o.d ?? recordingDispatcher().d,
      timeoutMs: 3000,
      tokenCache: o.cache ?? new TokenCache(),
      ...(o.credential ? { credential: o.credential } : {}),
      ...(o.pinned ? { pinned: o.pinned } : {}),
      ...(o.secrets ? { secrets: o.secrets } : {}),
    },
  );
}

describe('realm policy (pure)', () => {
  test('link-local and metadata addresses and names, in every spelling', () => {
    for (const h of [
      '169.254.169.254',
      '169.254.0.1',
      'fe80::1',
      '[fe80::1]',
      'FEBF::1',
      '::ffff:169.254.169.254',
      '[::ffff:a9fe:a9fe]',
      'metadata.google.internal',
      'Metadata.Google.Internal.',
      'metadata',
      'instance-data',
      'fd00:ec2::254',
      '100.100.100.200',
    ]) {
      assert.equal(isLinkLocalOrMetadata(h), true, h);
    }
    for (const h of [
      '127.0.0.1',
      '10.0.0.1',
      '169.253.1.1',
      '::1',
      'fec0::1',
      'registry.example.com',
      'metadata.example.com',
      '2001:db8::1',
    ]) {
      assert.equal(isLinkLocalOrMetadata(h), false, h);
    }
    assert.deepEqual(forbiddenRealmAddresses(['10.0.0.5', '169.254.169.254']), ['169.254.169.254']);
  });

  test('non-http(s) realms are refused as token_error naming the scheme; metadata realms too', () => {
    const cases: [string, string][] = [
      ['file:///etc/passwd', 'registry.test:443'],
      ['ftp://127.0.0.1:2121/token', '127.0.0.1:2121'],
      ['data:text/plain,token', 'registry.test:443'],
      ['gopher://auth.example/x', 'auth.example'],
      ['https://169.254.169.254/latest/meta-data', '169.254.169.254'],
      ['http://2852039166/token', '169.254.169.254'], // decimal IPv4 spelling
      ['https://[fe80::1]/token', '[fe80::1]'],
      ['https://[fe80::1%25eth0]/token', 'registry.test:443'], // zone ids are not valid in URLs
      ['https://[::ffff:169.254.169.254]/token', '[::ffff:a9fe:a9fe]'],
      ['https://metadata.google.internal/computeMetadata/v1/', 'metadata.google.internal'],
      ['not a url', 'registry.test:443'],
      ['', 'registry.test:443'],
    ];
    for (const [realm, host] of cases) {
      const r = checkRealm(realm, 'registry.test:443');
      assert.equal(r.ok, false, realm);
      assert.equal(r.reason, 'token_error', realm);
      assert.equal(r.host, host, realm);
    }
  });

  test('https realm: allowed with credentials; http realm: anonymous only; userinfo, query and fragment never shown', () => {
    const r = checkRealm('https://user:pw@auth.example:8443/token?secret=s3cr3t#frag', 'registry.test');
    assert.ok(r.ok);
    assert.equal(r.credentialsAllowed, true);
    assert.equal(r.display, 'https://auth.example:8443/token');
    assert.equal(r.url.username, '');
    assert.equal(r.port, 8443);
    const h = checkRealm('http://auth.example/token', 'registry.test');
    assert.ok(h.ok && !h.credentialsAllowed && h.port === 80 && !h.tls);
  });
});

describe('the realm is checked before any connection', () => {
  test('ftp:// realm on a listening loopback port → token_error naming the realm host, no TCP connection', async () => {
    const l = await countingListener();
    const out = await auth(`Bearer realm="ftp://127.0.0.1:${l.port}/token",service="s"`, { credential: cred });
    assert.equal(out.reason, 'token_error');
    assert.equal(out.host, `127.0.0.1:${l.port}`);
    assert.equal(l.count(), 0);
  });

  test('https://169.254.169.254 realm → token_error, no connection attempt, credentials never sent', async () => {
    const { d, attempts } = recordingDispatcher();
    const out = await auth('Bearer realm="https://169.254.169.254/latest/meta-data/iam",service="s"', { d, credential: cred });
    assert.equal(out.reason, 'token_error');
    assert.equal(out.host, '169.254.169.254');
    assert.deepEqual(attempts, []);
  });

  test('a realm name that resolved to a link-local address → token_error, no connection attempt', async () => {
    const { d, attempts } = recordingDispatcher();
    const out = await auth('Bearer realm="https://token.test/token",service="s"', {
      d,
      credential: cred,
      pinned: new Map([['token.test', ['169.254.169.254']]]),
    });
    assert.equal(out.reason, 'token_error');
    assert.equal(out.host, 'token.test');
    assert.deepEqual(attempts, []);
  });

  test('unterminated quoted realm → token_error (containerd: no realm), no connection attempt', async () => {
    const { d, attempts } = recordingDispatcher();
    const out = await auth('Bearer realm="https://x.test/token', { d });
    assert.equal(out.reason, 'token_error');
    assert.deepEqual(attempts, []);
  });
});

describe('what is sent to the token service', () => {
  test('http:// realm with credentials → anonymous token request, credentials withheld and reported', async () => {
    const tokens = await fake({}, false);
    tokens.addRepo('team/app', { public: true });
    const out = await auth(`Bearer realm="http://127.0.0.1:${tokens.port}/token?account=x",service="s"`, {
      d: dispatcher(),
      credential: cred,
    });
    assert.equal(out.ok, true);
    assert.equal(out.credentialsSent, false);
    assert.equal(tokens.count('GET', '/token'), 1);
    assert.equal(tokens.requests.find((r) => r.path === '/token')?.authorization, undefined);
    assert.equal((out.detail as { credentialsWithheld?: boolean }).credentialsWithheld, true);
    assert.equal(out.detail.realmHost, `127.0.0.1:${tokens.port}`);
    assert.equal(out.detail.realm, `http://127.0.0.1:${tokens.port}/token`); // no query string
  });

  test('http:// realm that refuses anonymous tokens → token_error (credentials would be needed), never auth_required', async () => {
    const tokens = await fake({ anonymousTokenRefused: true, users: { alice: cred.password } }, false);
    const out = await auth(`Bearer realm="http://127.0.0.1:${tokens.port}/token",service="s"`, { d: dispatcher(), credential: cred });
    assert.equal(out.reason, 'token_error');
    assert.equal(out.host, `127.0.0.1:${tokens.port}`);
    assert.equal(
      tokens.requests.some((r) => r.authorization !== undefined),
      false,
    );
  });

  test('https realm: credentials sent, realm host reported, query string never shown', async () => {
    const f = await fake({ users: { alice: cred.password } });
    f.addRepo('team/app', { users: ['alice'] });
    const out = await auth(`Bearer realm="https://registry.test:${f.port}/token?sig=topsecret",service="s"`, {
      d: dispatcher(),
      credential: cred,
    });
    assert.equal(out.ok, true);
    assert.equal(out.credentialsSent, true);
    // containerd's OAuth POST: the credentials in the form, no Basic header.
    assert.equal(out.detail.tokenMethod, 'POST');
    assert.deepEqual(
      f.tokenPosts.map((p) => [p.form.grant_type, p.form.username]),
      [['password', 'alice']],
    );
    assert.equal(f.requests.find((r) => r.path === '/token')?.authorization, undefined);
    assert.equal(out.detail.realmHost, `registry.test:${f.port}`);
    assert.ok(!JSON.stringify(out.detail).includes('topsecret'));
  });
});

describe('odd but legal answers', () => {
  test('response headers over 16 KiB (Go accepts ~1 MB) are read, not a timeout', async () => {
    const f = await fake({ auth: 'none' });
    f.fault({
      path: '/v2/',
      status: 200,
      headers: { 'x-big': 'b'.repeat(64 * 1024), 'docker-distribution-api-version': 'registry/2.0' },
      body: '{}',
    });
    const out = await httpStage(ctxFor(), { endpoint: `registry.test:${f.port}` }, { dispatcher: dispatcher(), timeoutMs: 3000 });
    assert.equal(out.reason, undefined);
    assert.equal(out.ok, true);
  });

  for (const [name, bad] of [
    ['line break', 'abc\r\ndef'],
    ['NUL', 'abc\u0000def'],
    ['space', 'abc def'],
    ['non-ASCII', 'abc\u00e9'],
  ] as const) {
    test(`a token with a ${name} → token_error, and it is not cached`, async () => {
      const f = await fake({ tokenBody: () => JSON.stringify({ token: bad, expires_in: 300 }) });
      f.addRepo('team/app', { public: true });
      const cache = new TokenCache();
      const out = await auth(`Bearer realm="${f.realm.replace('127.0.0.1', 'registry.test')}",service="s"`, { d: dispatcher(), cache });
      assert.equal(out.reason, 'token_error');
      assert.equal(cache.size, 0);
      assert.equal(out.authorization, undefined);
    });
  }

  test('expires_in: 1e308 is kept at most an hour', async () => {
    const f = await fake({ tokenExpiresIn: 1e308 });
    f.addRepo('team/app', { public: true });
    const out = await auth(`Bearer realm="${f.realm.replace('127.0.0.1', 'registry.test')}",service="s"`, { d: dispatcher() });
    assert.equal(out.ok, true);
    assert.equal(out.detail.tokenExpiresIn, MAX_EXPIRES_IN);

    let now = Date.parse('2025-01-01T00:00:00Z');
    const cache = new TokenCache({ wallNow: () => now, marginSeconds: 0 });
    for (const ttl of [1e308, Number.MAX_VALUE, 86_400 * 365]) {
      cache.set('k', 't', ttl);
      now += MAX_EXPIRES_IN * 1000 - 1000;
      assert.equal(cache.get('k')?.token, 't');
      now += 2000;
      assert.equal(cache.get('k'), undefined, String(ttl));
    }
    cache.set('k', 't', undefined); // absent: 60 s (token spec)
    now += 61_000;
    assert.equal(cache.get('k'), undefined);
  });

  test('bare registry: a token the registry refuses (invalid_token) with credentials → auth_rejected', async () => {
    const f = await fake({ rejectIssuedTokens: true, users: { alice: cred.password } });
    const out = await auth(`Bearer realm="${f.realm.replace('127.0.0.1', 'registry.test')}",service="s"`, {
      d: dispatcher(),
      credential: cred,
      repo: null,
      endpoint: `registry.test:${f.port}`,
    });
    assert.equal(out.reason, 'auth_rejected');
    assert.equal(out.detail.status, 401);
    assert.equal(f.count('GET', '/v2/'), 1);
  });

  test('refusedTokenVerdict: invalid_token → token_error when anonymous, auth_rejected with credentials; other 401s untouched', () => {
    const h = ['Bearer realm="https://a/token",service="s",error="invalid_token"'];
    const o = { host: 'r', what: 'HEAD /v2/x/manifests/v1' };
    assert.equal(refusedTokenVerdict(h, { ...o, bearer: true, credentialsSent: false })?.reason, 'token_error');
    assert.equal(refusedTokenVerdict(h, { ...o, bearer: true, credentialsSent: true })?.reason, 'auth_rejected');
    assert.equal(refusedTokenVerdict(h, { ...o, bearer: false, credentialsSent: true }), undefined);
    assert.equal(
      refusedTokenVerdict(['Bearer realm="https://a/token",error="insufficient_scope"'], { ...o, bearer: true, credentialsSent: false }),
      undefined,
    );
    assert.equal(refusedTokenVerdict([], { ...o, bearer: true, credentialsSent: false }), undefined);
  });
});
