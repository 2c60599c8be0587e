import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  DockerConfigError,
  credentialFor,
  loadDockerConfig,
  normalizeAuthKey,
  parseDockerConfig,
  kubeletDockerConfigPaths,
  readKubeletDockerConfig,
  type DockerAuths,
} from '../../src/node-config/docker-config.js';
import { FileUnreadableError } from '../../src/shared/errors.js';

const CANARY = 'CANARY-s3cr3t-9f2b';
const SRC = '/x/config.json';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const cfg = (auths: unknown): string => JSON.stringify({ auths });

test('auth is base64 user:password; source names file and key', () => {
  const auths = parseDockerConfig(cfg({ 'reg.io': { auth: b64(`alice:${CANARY}:x`) } }), SRC);
  assert.deepEqual(credentialFor(auths, 'reg.io'), {
    username: 'alice',
    password: `${CANARY}:x`,
    source: '/x/config.json: auths["reg.io"]',
    origin: { source: 'docker-config', name: SRC, expiresAt: null },
  });
});

test('username/password fields, and auth wins over them (kubelet DockerConfigEntry)', () => {
  const a = parseDockerConfig(
    cfg({ 'a.io': { username: 'u', password: 'p' }, 'b.io': { username: 'u', password: 'p', auth: b64('bob:pw') } }),
    SRC,
  );
  assert.deepEqual(credentialFor(a, 'a.io'), {
    username: 'u',
    password: 'p',
    source: `${SRC}: auths["a.io"]`,
    origin: { source: 'docker-config', name: SRC, expiresAt: null },
  });
  const b = credentialFor(a, 'b.io');
  assert.ok(b, 'a credential for b.io');
  assert.equal(b.username, 'bob');
  assert.equal(b.password, 'pw');
});

test('identitytoken gives ("", token) as containerd does', () => {
  const a = parseDockerConfig(cfg({ 'acr.io': { identitytoken: 'tok' } }), SRC);
  const c = credentialFor(a, 'acr.io');
  assert.ok(c, 'a credential for acr.io');
  assert.equal(c.username, '');
  assert.equal(c.password, 'tok');
  assert.equal(c.identityToken, true);
  assert.equal(credentialFor(a, 'acr.io', undefined)?.origin?.source, 'docker-config');
});

test('NULs trimmed from a decoded password; empty entries are anonymous', () => {
  const a = parseDockerConfig(cfg({ 'r.io': { auth: b64('u:pw\0\0') }, 'empty.io': {} }), SRC);
  assert.equal(credentialFor(a, 'r.io')?.password, 'pw');
  assert.equal(credentialFor(a, 'empty.io'), undefined);
  assert.equal(a.entries.length, 1);
});

test('keys normalised: scheme stripped, /v1/ and /v2/ removed, hosts lowercased', () => {
  assert.deepEqual(normalizeAuthKey('https://index.docker.io/v1/'), { host: 'docker.io', path: '' });
  assert.deepEqual(normalizeAuthKey('http://Reg.IO:5000/v2/'), { host: 'reg.io:5000', path: '' });
  assert.deepEqual(normalizeAuthKey('reg.io/v2/team'), { host: 'reg.io', path: '/team' });
  assert.deepEqual(normalizeAuthKey('reg.io/'), { host: 'reg.io', path: '' });
  assert.deepEqual(normalizeAuthKey('registry-1.docker.io'), { host: 'docker.io', path: '' });
});

test('Docker Hub aliases are one registry', () => {
  for (const key of ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io', 'registry-1.docker.io']) {
    const a = parseDockerConfig(cfg({ [key]: { auth: b64('hub:pw') } }), SRC);
    for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      assert.equal(credentialFor(a, host)?.username, 'hub', `${key} vs ${host}`);
    }
    assert.equal(credentialFor(a, 'quay.io'), undefined);
  }
});

test('ports must be equal', () => {
  const a = parseDockerConfig(cfg({ 'https://reg.io:5000/v2/': { auth: b64('u:p') } }), SRC);
  assert.equal(credentialFor(a, 'reg.io:5000')?.username, 'u');
  assert.equal(credentialFor(a, 'reg.io'), undefined);
  assert.equal(credentialFor(a, 'reg.io:443'), undefined);
});

test('globs match one label each; exact keys beat globs', () => {
  const a = parseDockerConfig(cfg({ '*.azurecr.io': { auth: b64('glob:p') }, 'team.azurecr.io': { auth: b64('exact:p') } }), SRC);
  assert.equal(credentialFor(a, 'team.azurecr.io')?.username, 'exact');
  assert.equal(credentialFor(a, 'other.azurecr.io')?.username, 'glob');
  assert.equal(credentialFor(a, 'a.b.azurecr.io'), undefined);
  assert.equal(credentialFor(a, 'azurecr.io'), undefined);
});

test('keys with a path only match repositories under it; longer path wins', () => {
  const a = parseDockerConfig(cfg({ 'reg.io': { auth: b64('host:p') }, 'reg.io/team': { auth: b64('team:p') } }), SRC);
  assert.equal(credentialFor(a, 'reg.io', 'team/app')?.username, 'team');
  assert.equal(credentialFor(a, 'reg.io', 'other/app')?.username, 'host');
  assert.equal(credentialFor(a, 'reg.io')?.username, 'host');
  const only = parseDockerConfig(cfg({ 'reg.io/team': { auth: b64('team:p') } }), SRC);
  assert.equal(credentialFor(only, 'reg.io', 'other/app'), undefined);
});

test('legacy .dockercfg (no auths wrapper) and configs without auths', () => {
  const legacy = parseDockerConfig(JSON.stringify({ 'https://reg.io': { auth: b64('old:p'), email: 'x@y' } }), SRC);
  assert.equal(credentialFor(legacy, 'reg.io')?.username, 'old');
  const none = parseDockerConfig(JSON.stringify({ credsStore: 'desktop' }), SRC);
  assert.deepEqual(none.entries, []);
});

const BAD: Array<[string, string, string]> = [
  ['not JSON (V8 would quote the input)', `{"auths":{"reg.io":{"auth":"${CANARY}"`, ''],
  ['top level not an object', JSON.stringify([CANARY]), ''],
  ['auths not an object', JSON.stringify({ auths: [CANARY] }), 'auths'],
  ['entry not an object', cfg({ 'reg.io': CANARY }), 'reg.io'],
  ['auth not base64', cfg({ 'reg.io': { auth: `${CANARY}!!` } }), 'reg.io'],
  ['auth with a space after the padding', cfg({ 'reg.io': { auth: `${b64(`u:${CANARY}`)} ` } }), 'reg.io'],
  ['auth padded in the middle', cfg({ 'reg.io': { auth: `dTo=${b64(`u:${CANARY}`)}` } }), 'reg.io'],
  ['auth unpadded with a dangling character', cfg({ 'reg.io': { auth: `${b64(`u:${CANARY}1`).replace(/=+$/, '')}A` } }), 'reg.io'],
  ['email not a string', cfg({ 'reg.io': { auth: b64(`u:${CANARY}`), email: false } }), 'reg.io'],
  ['auth decodes without a colon', cfg({ 'reg.io': { auth: b64(CANARY) } }), 'reg.io'],
  ['username not a string', cfg({ 'reg.io': { username: 7, password: CANARY } }), 'reg.io'],
  ['password not a string', cfg({ 'reg.io': { username: 'u', password: { v: CANARY } } }), 'reg.io'],
  ['key with no host', cfg({ 'https://': { auth: b64(`u:${CANARY}`) } }), 'https://'],
];

for (const [name, text, key] of BAD) {
  test(`DockerConfigError without the secret: ${name}`, () => {
    assert.throws(
      () => parseDockerConfig(text, SRC),
      (err: unknown) => {
        assert.ok(err instanceof DockerConfigError);
        assert.ok(err instanceof ConfigError, 'the old name still works');
        assert.equal(err.code, 'PULLPROBE_DOCKER_CONFIG');
        assert.ok(err.message.includes(SRC));
        if (key) assert.ok(err.message.includes(key));
        assert.ok(!err.message.includes(CANARY), err.message);
        assert.ok(!String(err.stack).includes(CANARY));
        assert.equal(err.cause, undefined);
        return true;
      },
    );
  });
}

test('loadDockerConfig reads through the injected reader and the real fs', () => {
  const seen: string[] = [];
  const fake = (p: string): string => {
    seen.push(p);
    return cfg({ 'reg.io': { auth: b64('u:p') } });
  };
  const a: DockerAuths = loadDockerConfig('/etc/x.json', fake);
  assert.deepEqual(seen, ['/etc/x.json']);
  assert.equal(credentialFor(a, 'reg.io')?.source, '/etc/x.json: auths["reg.io"]');

  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-dc-'));
  try {
    const file = join(dir, 'config.json');
    writeFileSync(file, cfg({ 'reg.io': { auth: b64('disk:p') } }));
    assert.equal(credentialFor(loadDockerConfig(file), 'reg.io')?.username, 'disk');
    assert.throws(
      () => loadDockerConfig(join(dir, 'missing.json')),
      (err: unknown) => {
        assert.ok(err instanceof FileUnreadableError);
        assert.equal(err.code, 'PULLPROBE_FILE_UNREADABLE');
        assert.ok(err.path.endsWith('missing.json') && err.message.includes('missing.json'), err.message);
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('auth is decoded as the kubelet does: padded or not, line breaks skipped', () => {
  const padded = b64('user:pass1'); // "dXNlcjpwYXNzMQ=="
  assert.ok(padded.endsWith('=='));
  for (const auth of [
    padded,
    padded.replace(/=+$/, ''),
    `${padded.slice(0, 5)}\n${padded.slice(5)}\n`,
    `${padded.slice(0, 7)}\r\n${padded.slice(7).replace(/=+$/, '')}`,
  ]) {
    const a = parseDockerConfig(cfg({ 'reg.io': { auth } }), SRC);
    assert.deepEqual(
      { u: credentialFor(a, 'reg.io')?.username, p: credentialFor(a, 'reg.io')?.password },
      { u: 'user', p: 'pass1' },
      JSON.stringify(auth),
    );
  }
});

test('glob keys are Go filepath.Match per label: ?, [a-c], [^x], escapes; a malformed glob matches nothing', () => {
  const a = (key: string) => parseDockerConfig(cfg({ [key]: { auth: b64('g:p') } }), SRC);
  const hit = (key: string, host: string) => credentialFor(a(key), host) !== undefined;
  assert.equal(hit('reg?.example.com', 'reg1.example.com'), true);
  assert.equal(hit('reg?.example.com', 'reg12.example.com'), false);
  assert.equal(hit('reg[0-3].example.com', 'reg2.example.com'), true);
  assert.equal(hit('reg[0-3].example.com', 'reg7.example.com'), false);
  assert.equal(hit('reg[^0-3].example.com', 'reg7.example.com'), true);
  assert.equal(hit('reg[^0-3].example.com', 'reg2.example.com'), false);
  assert.equal(hit('r*g*.example.com', 'rxxgyy.example.com'), true);
  assert.equal(hit('r*g*x.example.com', 'rxxgyy.example.com'), false);
  assert.equal(hit('*.example.com', 'a.b.example.com'), false);
  assert.equal(hit('reg[.example.com', 'reg[.example.com'), false);
  assert.equal(hit('reg[].example.com', 'reg].example.com'), false);
});

test('a glob key with many stars costs linear time, not exponential (kubelet per-label match)', () => {
  // The old regex translation took ~4 s for one 45-character label and doubles every few characters.
  const a = parseDockerConfig(cfg({ '*a*a*a*a*a*a*a*a*b.example.com': { auth: b64('g:p') } }), SRC);
  const start = process.cpuUsage();
  assert.equal(credentialFor(a, `${'a'.repeat(45)}.example.com`), undefined);
  assert.equal(credentialFor(a, `${'a'.repeat(44)}b.example.com`)?.username, 'g');
  const used = process.cpuUsage(start);
  assert.ok((used.user + used.system) / 1e6 < 1, `CPU ${(used.user + used.system) / 1e6} s`);
});

test("kubeletDockerConfigPaths: the kubelet's search order (root dir, working dir, $HOME/.docker, /.docker, then .dockercfg)", () => {
  assert.deepEqual(kubeletDockerConfigPaths({ home: '/root' }), [
    '/var/lib/kubelet/config.json',
    '/config.json',
    '/root/.docker/config.json',
    '/.docker/config.json',
    '/var/lib/kubelet/.dockercfg',
    '/.dockercfg',
    '/root/.dockercfg',
  ]);
  // HOME unset (systemd service without User=): "$HOME/.docker" is ".docker" under the working dir.
  assert.deepEqual(kubeletDockerConfigPaths({ rootDir: '/data/kubelet', workingDir: '/srv' }), [
    '/data/kubelet/config.json',
    '/srv/config.json',
    '/srv/.docker/config.json',
    '/.docker/config.json',
    '/data/kubelet/.dockercfg',
    '/srv/.dockercfg',
    '/.dockercfg',
  ]);
});

test('readKubeletDockerConfig: under a host root, the first file that reads and parses wins; broken ones are skipped and named', () => {
  const root = mkdtempSync(join(tmpdir(), 'pullprobe-kubelet-dockercfg-'));
  try {
    const put = (file: string, text: string): void => {
      mkdirSync(join(root, file, '..'), { recursive: true });
      writeFileSync(join(root, file), text);
    };
    const paths = kubeletDockerConfigPaths({ home: '/root' });
    const lookup = (): { file: string | null; user: string | undefined; problems: string[] } => {
      const r = readKubeletDockerConfig(paths, root);
      return { file: r.found?.source ?? null, user: r.found?.entries[0]?.username, problems: r.problems };
    };
    assert.deepEqual(lookup(), { file: null, user: undefined, problems: [] });
    put('.dockercfg', JSON.stringify({ 'reg.io': { auth: b64('legacy:pw') } }));
    assert.deepEqual(lookup(), { file: '/.dockercfg', user: 'legacy', problems: [] });
    put('root/.docker/config.json', cfg({ 'reg.io': { auth: b64('home:pw') } }));
    assert.deepEqual(lookup(), { file: '/root/.docker/config.json', user: 'home', problems: [] });
    put('var/lib/kubelet/config.json', `{"auths": {"reg.io": {"auth": "${CANARY}!!"}}}`);
    const broken = lookup();
    assert.equal(broken.file, '/root/.docker/config.json');
    assert.match(broken.problems[0] ?? '', /^\/var\/lib\/kubelet\/config\.json: .*auth.*the kubelet skips this file$/);
    assert.ok(!broken.problems.join('').includes(CANARY));
    put('var/lib/kubelet/config.json', cfg({ 'reg.io': { auth: b64('kubelet:pw') } }));
    assert.deepEqual(lookup(), { file: '/var/lib/kubelet/config.json', user: 'kubelet', problems: [] });
    // config.json is read as the kubelet reads it: no "auths" means no entries (and the search stops there).
    put('var/lib/kubelet/config.json', JSON.stringify({ 'reg.io': { auth: b64('x:y') } }));
    const noAuths = readKubeletDockerConfig(paths, root);
    assert.equal(noAuths.found?.source, '/var/lib/kubelet/config.json');
    assert.deepEqual(noAuths.found.entries, []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
