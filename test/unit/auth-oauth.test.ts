/**
 * The token request containerd makes (pull-path-facts §1.3, containerd doBearerAuth):
 * with a secret, an OAuth POST (form: grant_type password or refresh_token, service,
 * space-joined scope, client_id=containerd-client) first, falling back to GET on 400,
 * 401, 404, and 405 with a username; never on 5xx; anonymous: GET. Against the loopback
 * fake registry's token service over TLS, its POST answers scripted per case.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from 'undici';
import { createDispatcher } from '../../src/net/dispatcher.js';
import { authStage, oauthForm, type AuthOutcome } from '../../src/probe/stages/auth.js';
import { Secrets } from '../../src/probe/scrub.js';
import { TokenCache } from '../../src/probe/token-cache.js';
import { realClock, silentLog, type Credential, type ProbeContext } from '../../src/model/types.js';
import { parseWwwAuthenticate } from '../../src/probe/www-authenticate.js';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeRegistry, type FakeRegistryOptions } from '../support/fake-registry.js';

let ca: TestCA;
let leaf: CertPair;
const open: { close(): Promise<unknown> }[] = [];
before(() => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['registry.test'] });
});
after(async () => {
  for (const o of open) await o.close();
  ca.cleanup();
});

const PASSWORD = 'pa55 w0rd+Secret&=';
const alice: Credential = { username: 'alice', password: PASSWORD, source: '/c.json: auths["registry.test"]' };
const WALL = 1_800_000_000_000;

async function tokens(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const f = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key }, auth: 'bearer', users: { alice: PASSWORD }, ...opts });
  open.push(f);
  f.addRepo('team/app', { users: ['alice'] });
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

async function auth(f: FakeRegistry, credential?: Credential, secrets = new Secrets()): Promise<AuthOutcome> {
  const ctx: ProbeContext = {
    signal: new AbortController().signal,
    deadlineAt: realClock.now() + 5000,
    clock: realClock,
    log: silentLog,
    wallNow: () => WALL,
  };
  return authStage(
    ctx,
    {
      endpoint: 'registry.test:443',
      repository: 'team/app',
      challenges: parseWwwAuthenticate([`Bearer realm="https://registry.test:${f.port}/token",service="reg-svc"`]),
      status: 401,
    },
    {
      dispatcher: dispatcher(),
      timeoutMs: 3000,
      tokenCache: new TokenCache({ wallNow: () => WALL }),
      secrets,
      ...(credential ? { credential } : {}),
    },
  );
}

describe('OAuth POST token request', () => {
  test('with a password: one POST, the form containerd sends, no Basic header, no GET', async () => {
    const f = await tokens();
    const out = await auth(f, alice);
    assert.equal(out.ok, true);
    assert.equal(out.detail.tokenMethod, 'POST');
    assert.equal(out.detail.tokenPostStatus, undefined);
    assert.equal(f.count('GET', '/token'), 0);
    assert.deepEqual(f.tokenPosts, [
      {
        contentType: 'application/x-www-form-urlencoded; charset=utf-8',
        form: {
          scope: 'repository:team/app:pull',
          service: 'reg-svc',
          client_id: 'containerd-client',
          grant_type: 'password',
          username: 'alice',
          password: PASSWORD,
        },
      },
    ]);
    assert.equal(f.requests.find((r) => r.path === '/token')?.authorization, undefined);
  });

  test('an identity token: grant_type=refresh_token', async () => {
    const f = await tokens({ refreshTokens: { 'refresh-abc': 'alice' } });
    const out = await auth(f, { username: '', password: 'refresh-abc', source: 'config.toml', identityToken: true });
    assert.equal(out.ok, true);
    assert.deepEqual(f.tokenPosts[0]?.form, {
      scope: 'repository:team/app:pull',
      service: 'reg-svc',
      client_id: 'containerd-client',
      grant_type: 'refresh_token',
      refresh_token: 'refresh-abc',
    });
    assert.deepEqual(
      oauthForm({ username: '', password: 't', source: '' }, undefined, undefined).toString(),
      'service=&client_id=containerd-client&grant_type=refresh_token&refresh_token=t',
    );
  });

  test('anonymous: GET only', async () => {
    const f = await tokens();
    f.addRepo('pub/app', { public: true });
    const out = await auth(f);
    assert.equal(out.ok, true);
    assert.equal(out.detail.tokenMethod, 'GET');
    assert.equal(f.tokenPosts.length, 0);
    assert.equal(f.count('GET', '/token'), 1);
  });

  // [POST status, username, falls back to GET]
  const matrix: Array<[number, string, boolean]> = [
    [400, 'alice', true],
    [401, 'alice', true],
    [404, 'alice', true],
    [405, 'alice', true],
    [405, '', false],
    [403, 'alice', false],
    [500, 'alice', false],
    [503, 'alice', false],
  ];
  for (const [status, username, fallback] of matrix) {
    test(`POST answered ${status}${username ? '' : ' (identity token)'} → ${fallback ? 'GET fallback' : 'no fallback'}`, async () => {
      const f = await tokens({ refreshTokens: { 'refresh-abc': 'alice' } });
      const cred: Credential = username ? alice : { username: '', password: 'refresh-abc', source: 'config.toml', identityToken: true };
      f.fault({
        method: 'POST',
        path: '/token',
        status,
        body: JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: `echo ${cred.password}` }] }),
      });
      const out = await auth(f, cred);
      assert.equal(f.count('POST', '/token'), 1);
      assert.equal(f.count('GET', '/token'), fallback ? 1 : 0);
      if (fallback) {
        assert.equal(out.ok, true, out.message);
        assert.equal(out.detail.tokenMethod, 'GET');
        assert.equal(out.detail.tokenPostStatus, status);
        assert.match(f.requests.find((r) => r.method === 'GET' && r.path === '/token')?.authorization ?? '', /^Basic /);
      } else {
        assert.equal(out.ok, false);
        assert.equal(out.detail.tokenMethod, 'POST');
        assert.equal(out.reason, status === 403 ? 'auth_rejected' : 'token_error');
        if (status >= 500)
          assert.match(
            out.message ?? '',
            new RegExp(`^failed to fetch oauth token: unexpected status from POST request to registry\\.test:${f.port}/token: ${status} `),
          );
        assert.ok(!(out.message ?? '').includes(cred.password), out.message);
      }
    });
  }

  test('bad credentials: POST 401, GET 401 → auth_rejected naming the credential source, never the password', async () => {
    const f = await tokens({ users: { alice: 'another-password' } });
    const out = await auth(f, alice);
    assert.equal(out.reason, 'auth_rejected');
    assert.equal(out.detail.tokenPostStatus, 401);
    assert.equal(out.detail.tokenMethod, 'GET');
    assert.match(out.message ?? '', /rejected the credentials from \/c\.json/);
  });

  test('a POST answer without access_token is containerd\'s "did not include a token" (no GET)', async () => {
    const f = await tokens({ tokenBody: (t) => JSON.stringify({ token: t, expires_in: 300 }) });
    const out = await auth(f, alice);
    assert.equal(out.reason, 'token_error');
    assert.match(out.message ?? '', /authorization server did not include a token in the response/);
    assert.equal(f.count('GET', '/token'), 0);
  });

  test('expires_in → tokenExpiresAt (epoch ms, uncapped); the form-encoded password is a secret', async () => {
    const f = await tokens({ tokenBody: (t) => JSON.stringify({ access_token: t, expires_in: 43_200 }) });
    const secrets = new Secrets();
    const out = await auth(f, alice, secrets);
    assert.equal(out.ok, true);
    assert.equal(out.detail.tokenExpiresIn, 3600); // kept at most an hour
    assert.equal(out.tokenExpiresAt, WALL + 43_200_000); // what the token service said
    const form = new URLSearchParams({ p: PASSWORD }).toString().slice(2);
    assert.notEqual(form, encodeURIComponent(PASSWORD));
    assert.equal(secrets.scrub(`body password=${form}`), 'body password=[redacted]');
  });
});
