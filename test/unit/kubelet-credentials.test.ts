/**
 * resolveKubeletCredential: the kubelet's union of docker config keyrings and
 * credential-provider plugins (real executables written here), then containerd's
 * registry.configs auth only when the keyring matched nothing.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CredentialProviders, parseCredentialProviderConfig } from '../../src/node-config/credential-provider.js';
import { parseDockerConfig } from '../../src/node-config/docker-config.js';
import { resolveKubeletCredential, type CredentialSources } from '../../src/node-config/kubelet-credentials.js';
import type { Credential } from '../../src/model/types.js';

const V1 = 'credentialprovider.kubelet.k8s.io/v1';
const NOW = 1_700_000_000_000;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-kubelet-creds-'));
  for (const name of ['first', 'second']) {
    const p = join(dir, name);
    writeFileSync(p, '#!/bin/sh\ncat > /dev/null\nprintf "%s" "$RESPONSE"\n');
    chmodSync(p, 0o755);
  }
  writeFileSync(join(dir, 'broken'), '#!/bin/sh\necho "no role attached" >&2\nexit 3\n');
  chmodSync(join(dir, 'broken'), 0o755);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ctx = { signal: new AbortController().signal, deadlineMs: 10_000 };
const lab = { registry: 'registry.lab.test', repository: 'lab/probe' };

function plugin(name: string, auth: Record<string, { username: string; password: string }>, matchImages = ['*.lab.test']): object {
  const response = JSON.stringify({
    apiVersion: V1,
    kind: 'CredentialProviderResponse',
    cacheKeyType: 'Registry',
    cacheDuration: '1h',
    auth,
  });
  return { name, matchImages, defaultCacheDuration: '5m', apiVersion: V1, env: [{ name: 'RESPONSE', value: response }] };
}

function providers(list: object[]): CredentialProviders {
  const text = JSON.stringify({ apiVersion: 'kubelet.config.k8s.io/v1', kind: 'CredentialProviderConfig', providers: list });
  return new CredentialProviders(parseCredentialProviderConfig(text, '/etc/kubernetes/cp.json'), dir, {
    wallNow: () => NOW,
    env: { PATH: process.env.PATH },
  });
}

function docker(file: string, auths: object): { file: string; auths: ReturnType<typeof parseDockerConfig> } {
  return { file, auths: parseDockerConfig(JSON.stringify({ auths }), file) };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const who = (c: Credential | undefined): string | undefined =>
  c ? `${c.origin?.source ?? '?'}:${c.origin?.name ?? '?'}:${c.username}` : undefined;
const containerd = (user: string): NonNullable<CredentialSources['containerd']> => ({
  auths: (host) =>
    host === 'registry.lab.test'
      ? {
          username: user,
          password: 'ctr-pw',
          source: 'config.toml',
          origin: { source: 'containerd-config', name: '/etc/containerd/config.toml', expiresAt: null },
        }
      : undefined,
});

describe('resolveKubeletCredential', () => {
  it('docker config keyrings first (in the order given), then the plugins; each credential names its origin', async () => {
    const r = await resolveKubeletCredential(
      {
        dockerConfigs: [
          docker('/given.json', { 'registry.lab.test': { auth: b64('given:pw') } }),
          docker('/var/lib/kubelet/config.json', { 'registry.lab.test/lab': { auth: b64('node:pw') } }),
        ],
        providers: providers([plugin('first', { 'registry.lab.test': { username: 'plugin', password: 'p' } })]),
        containerd: containerd('ctr'),
      },
      lab,
      'registry.lab.test',
      ctx,
    );
    assert.deepEqual(r.candidates.map(who), [
      'docker-config:/given.json:given',
      'docker-config:/var/lib/kubelet/config.json:node',
      'credential-provider:first:plugin',
    ]);
    assert.equal(who(r.credential), 'docker-config:/given.json:given');
    assert.deepEqual(r.problems, []);
  });

  it('credentials only from a plugin: its expiry is the cache end; the earlier provider first for one key', async () => {
    const r = await resolveKubeletCredential(
      {
        dockerConfigs: [docker('/var/lib/kubelet/config.json', { 'other.example': { auth: b64('x:y') } })],
        providers: providers([
          plugin('first', { '*.lab.test': { username: 'one', password: 'p1' } }),
          plugin('second', {
            '*.lab.test': { username: 'two', password: 'p2' },
            'registry.lab.test/lab': { username: 'narrow', password: 'p3' },
          }),
        ]),
      },
      lab,
      'registry.lab.test',
      ctx,
    );
    // BasicDockerKeyring: keys in reverse byte order ("registry…" before "*…"), same key in provider order.
    assert.deepEqual(r.candidates.map(who), [
      'credential-provider:second:narrow',
      'credential-provider:first:one',
      'credential-provider:second:two',
    ]);
    const c = r.credential;
    assert.ok(c);
    assert.equal(c.origin?.expiresAt, NOW + 3600_000);
    assert.match(c.source, /^credential provider second \(\/etc\/kubernetes\/cp\.json\): auth\["registry\.lab\.test\/lab"\]$/);
  });

  it("containerd's registry.configs auth only when the keyring matched nothing", async () => {
    const none = await resolveKubeletCredential(
      { dockerConfigs: [docker('/c.json', { 'other.example': { auth: b64('x:y') } })], containerd: containerd('ctr') },
      lab,
      'registry.lab.test',
      ctx,
    );
    assert.equal(who(none.credential), 'containerd-config:/etc/containerd/config.toml:ctr');
    assert.equal(none.keyringMatched, false);
    // The host is the host contacted: a mirror gets none of the registry's containerd auth.
    const mirror = await resolveKubeletCredential({ dockerConfigs: [], containerd: containerd('ctr') }, lab, 'mirror.lab.test', ctx);
    assert.equal(mirror.credential, undefined);
    const keyring = await resolveKubeletCredential(
      { dockerConfigs: [docker('/c.json', { 'registry.lab.test': { auth: b64('k:pw') } })], containerd: containerd('ctr') },
      lab,
      'registry.lab.test',
      ctx,
    );
    assert.equal(who(keyring.credential), 'docker-config:/c.json:k');
    assert.equal(keyring.keyringMatched, true);
  });

  it('an identitytoken-only entry matches but the kubelet passes it empty: anonymous, containerd config not used, said why', async () => {
    const r = await resolveKubeletCredential(
      { dockerConfigs: [docker('/c.json', { 'registry.lab.test': { identitytoken: 'tok-123' } })], containerd: containerd('ctr') },
      lab,
      'registry.lab.test',
      ctx,
    );
    assert.equal(r.credential, undefined);
    assert.match(
      r.problems[0] ?? '',
      /\/c\.json: auths\["registry\.lab\.test"\] holds only an identitytoken, which the kubelet does not read/,
    );
    assert.ok(!r.problems.join('').includes('tok-123'));
  });

  it('a failing plugin: its problem is listed and the next source answers', async () => {
    const r = await resolveKubeletCredential(
      { dockerConfigs: [], providers: providers([{ ...plugin('broken', {}), name: 'broken' }]), containerd: containerd('ctr') },
      lab,
      'registry.lab.test',
      ctx,
    );
    assert.match(r.problems[0] ?? '', /credential provider broken .*exit status 3: no role attached/);
    assert.equal(who(r.credential), 'containerd-config:/etc/containerd/config.toml:ctr');
  });

  it('a static ECR token in a docker config carries its own expiry; an ordinary password none', async () => {
    const expiration = 1_900_000_000;
    const pw = Buffer.from(JSON.stringify({ payload: 'p', datakey: 'd', version: '2', type: 'DATA_KEY', expiration })).toString('base64');
    const ecr = { registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', repository: 'team/app' };
    const cfg = docker('/var/lib/kubelet/config.json', {
      [ecr.registry]: { username: 'AWS', password: pw },
      'registry.lab.test': { auth: b64('u:plain') },
    });
    const r = await resolveKubeletCredential({ dockerConfigs: [cfg] }, ecr, ecr.registry, ctx);
    assert.equal(r.credential?.origin?.expiresAt, expiration * 1000);
    const plain = await resolveKubeletCredential({ dockerConfigs: [cfg] }, lab, 'registry.lab.test', ctx);
    assert.equal(plain.credential?.origin?.expiresAt, null);
  });

  it('Docker Hub images fall back to index.docker.io keys; a plugin not matching is not run', async () => {
    const ps = providers([plugin('first', { '*.lab.test': { username: 'one', password: 'p1' } })]);
    const r = await resolveKubeletCredential(
      { dockerConfigs: [docker('/c.json', { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } })], providers: ps },
      { registry: 'docker.io', repository: 'library/nginx' },
      'registry-1.docker.io',
      ctx,
    );
    assert.equal(who(r.credential), 'docker-config:/c.json:hub');
    assert.equal(ps.stats.execs, 0);
  });
});
