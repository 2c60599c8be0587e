/**
 * Which proxy each endpoint containerd would try goes through (probe/endpoints.ts
 * planEndpoints), with Go's ProxyFromEnvironment choice by scheme: an https
 * server through HTTPS_PROXY, a plain-http one (hosts.toml `server =
 * "http://…"`) through HTTP_PROXY, and NO_PROXY for either. The walk through
 * each kind of proxy is in proxy-walk.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { planEndpoints } from '../../src/probe/endpoints.js';
import { loadEnvironment } from '../../src/node-config/environment.js';
import { RoadCache } from '../../src/node-config/road.js';
import { parseTarget } from '../../src/model/reference.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-endpoint-proxy-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'hosts'), '');
  const hostsToml: Record<string, string> = {
    'plain.corp:5000': 'server = "http://plain.corp:5000"\n[host."http://plain.corp:5000"]\n  capabilities = ["pull", "resolve"]\n',
    'mirrored.corp': 'server = "https://mirrored.corp"\n[host."http://cache.corp:8080"]\n  capabilities = ["pull", "resolve"]\n',
  };
  for (const [host, text] of Object.entries(hostsToml)) {
    const p = join(dir, 'root', 'etc', 'containerd', 'certs.d', host, 'hosts.toml');
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

const silent = { debug() {}, info() {}, warn() {}, error() {} };

async function plan(image: string, proxyEnv: Record<string, string>): Promise<Array<[string, string | null]>> {
  const env = loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: join(dir, 'hosts'),
    caFiles: [],
    containerdConfigPath: [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
  env.road = new RoadCache({ wallNow: () => 0, env: { PATH: process.env['PATH'], ...proxyEnv } }).load({
    hostRoot: join(dir, 'root'),
    proxy: 'env',
    criEndpoint: `unix://${join(dir, 'no-runtime.sock')}`,
  });
  const parsed = parseTarget(image);
  assert.ok(parsed.ok);
  const p = await planEndpoints(parsed.target, env, silent);
  return p.endpoints.map((e) => [`${e.endpoint.scheme}://${e.endpoint.endpoint}`, e.endpoint.proxy?.href ?? null]);
}

const PROXIES = { HTTPS_PROXY: 'http://tunnel.corp:3128', HTTP_PROXY: 'http://forward.corp:3128' };

test('a plain-http server goes through HTTP_PROXY, an https one through HTTPS_PROXY', async () => {
  assert.deepEqual(await plan('plain.corp:5000/team/app:v1', PROXIES), [['http://plain.corp:5000', 'http://forward.corp:3128/']]);
  assert.deepEqual(await plan('mirrored.corp/team/app:v1', PROXIES), [
    ['http://cache.corp:8080', 'http://forward.corp:3128/'],
    ['https://mirrored.corp', 'http://tunnel.corp:3128/'],
  ]);
  assert.deepEqual(await plan('other.corp/team/app:v1', PROXIES), [['https://other.corp', 'http://tunnel.corp:3128/']]);
});

test('only the variable for the scheme counts: HTTPS_PROXY alone leaves plain http direct, HTTP_PROXY alone https', async () => {
  assert.deepEqual(await plan('plain.corp:5000/team/app:v1', { HTTPS_PROXY: PROXIES.HTTPS_PROXY }), [['http://plain.corp:5000', null]]);
  assert.deepEqual(await plan('other.corp/team/app:v1', { HTTP_PROXY: PROXIES.HTTP_PROXY }), [['https://other.corp', null]]);
});

test('NO_PROXY takes a plain-http host off the proxy as it does an https one', async () => {
  assert.deepEqual(await plan('mirrored.corp/team/app:v1', { ...PROXIES, NO_PROXY: 'cache.corp' }), [
    ['http://cache.corp:8080', null],
    ['https://mirrored.corp', 'http://tunnel.corp:3128/'],
  ]);
});
