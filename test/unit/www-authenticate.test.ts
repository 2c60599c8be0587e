import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseScope, parseWwwAuthenticate, type Challenge } from '../../src/probe/www-authenticate.js';

const cases: { name: string; headers: string[]; want: Challenge[] }[] = [
  {
    name: 'Docker Hub bearer with scope',
    headers: ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'],
    want: [
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' },
      },
    ],
  },
  {
    name: 'distribution insufficient_scope',
    headers: [
      'Bearer realm="https://auth.lab.test/token",service="token.lab.test",scope="repository:lab/probe:pull",error="insufficient_scope"',
    ],
    want: [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.lab.test/token',
          service: 'token.lab.test',
          scope: 'repository:lab/probe:pull',
          error: 'insufficient_scope',
        },
      },
    ],
  },
  {
    name: 'distribution htpasswd basic',
    headers: ['Basic realm="Registry Realm"'],
    want: [{ scheme: 'basic', params: { realm: 'Registry Realm' } }],
  },
  {
    name: 'scheme and keys case-insensitive, unquoted token values, spaces around =',
    headers: ['BEARER Realm=https://r.example/token , SERVICE = reg'],
    want: [{ scheme: 'bearer', params: { realm: 'https://r.example/token', service: 'reg' } }],
  },
  {
    name: 'several challenges in one header, sorted bearer > digest > basic',
    headers: ['Basic realm="b", Digest realm="d", nonce="n", Bearer realm="t",service="s"'],
    want: [
      { scheme: 'bearer', params: { realm: 't', service: 's' } },
      { scheme: 'digest', params: { realm: 'd', nonce: 'n' } },
      { scheme: 'basic', params: { realm: 'b' } },
    ],
  },
  {
    name: 'several headers',
    headers: ['Basic realm="one"', 'Bearer realm="two"'],
    want: [
      { scheme: 'bearer', params: { realm: 'two' } },
      { scheme: 'basic', params: { realm: 'one' } },
    ],
  },
  {
    name: 'commas and escapes inside quotes',
    headers: [
      'Bearer realm="https://x/token",scope="repository:a/b:pull,push repository:c:pull",error_description="say \\"hi\\", then go\\\\"',
    ],
    want: [
      {
        scheme: 'bearer',
        params: { realm: 'https://x/token', scope: 'repository:a/b:pull,push repository:c:pull', error_description: 'say "hi", then go\\' },
      },
    ],
  },
  {
    name: 'unknown schemes skipped with their params',
    headers: ['Negotiate abc==, NTLM, Basic realm="r"', 'Mutual realm="m"'],
    want: [{ scheme: 'basic', params: { realm: 'r' } }],
  },
  { name: 'empty and junk', headers: ['', ',,, =', '"quoted junk"'], want: [] },
  {
    name: 'first value of a repeated key wins',
    headers: ['Bearer realm="a",realm="b",service="s"'],
    want: [{ scheme: 'bearer', params: { realm: 'a', service: 's' } }],
  },
  {
    // containerd's expectTokenOrQuoted returns ("", ""): the key is set to "" and the rest of the header is not read.
    name: 'unterminated quoted value: empty, and nothing after it is read (as containerd)',
    headers: ['Bearer service="s",realm="https://x', 'Basic realm="b", Bearer realm="t'],
    want: [
      { scheme: 'bearer', params: { service: 's', realm: '' } },
      { scheme: 'bearer', params: { realm: '' } },
      { scheme: 'basic', params: { realm: 'b' } },
    ],
  },
  {
    name: 'unterminated quoted realm replaces an earlier realm (containerd keeps the last value it set)',
    headers: ['Bearer realm="https://good/token",realm="https://x'],
    want: [{ scheme: 'bearer', params: { realm: '' } }],
  },
  {
    name: 'a trailing backslash inside an unterminated quote',
    headers: ['Bearer realm="abc\\'],
    want: [{ scheme: 'bearer', params: { realm: '' } }],
  },
];

for (const c of cases) {
  test(`parseWwwAuthenticate: ${c.name}`, () => {
    assert.deepEqual(parseWwwAuthenticate(c.headers), c.want);
  });
}

test('parseScope: resource name with host:port, several scopes, type with class', () => {
  assert.deepEqual(parseScope('repository:localhost:5000/foo/bar:pull,push'), [
    { type: 'repository', name: 'localhost:5000/foo/bar', actions: ['pull', 'push'] },
  ]);
  assert.deepEqual(parseScope('repository:samalba/my-app:pull registry:catalog:*  repository(plugin):p/q:pull'), [
    { type: 'repository', name: 'samalba/my-app', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
    { type: 'repository(plugin)', name: 'p/q', actions: ['pull'] },
  ]);
  assert.deepEqual(parseScope('repository:lab/probe:'), [{ type: 'repository', name: 'lab/probe', actions: [] }]);
});

test('parseScope: malformed entries dropped', () => {
  assert.deepEqual(parseScope('nocolon repository:onlyone :x:pull repository::pull'), []);
  assert.deepEqual(parseScope(''), []);
});

test('parseWwwAuthenticate: linear on 1 MB pathological headers (CPU-bounded)', () => {
  const patterns = ['a=",', 'Bearer a=",', 'Bearer x=', '=', '"', '\\', 'Bearer a="\\"', ',a', 'Bearer realm="'];
  for (const p of patterns) {
    const h = p.repeat(Math.ceil(1_000_000 / p.length));
    const t = process.cpuUsage();
    parseWwwAuthenticate([h, h]);
    const used = process.cpuUsage(t);
    // Linear: ~50 ms for 2 MB; a quadratic parser takes minutes at this size.
    assert.ok((used.user + used.system) / 1000 < 2000, `${JSON.stringify(p)}: ${(used.user + used.system) / 1000} ms`);
  }
});
