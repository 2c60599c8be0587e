/**
 * The chain end to end against loopback registries on IP-literal hosts (no
 * DNS query needed): stage order, the endpoints containerd would try from
 * certs.d/hosts.toml (mirror first, server last, degraded on fallback), CA
 * trust from certs.d, and the overall deadline. The full fault matrix with
 * real daemons is in test/lab/probe-lab.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { FakeTime, settle, track } from '../support/fake-time.js';
import { until, within } from '../support/within.js';
import { FakeRegistry, DOCKER_MANIFEST } from '../support/fake-registry.js';
import { probeTarget } from '../../src/probe/chain.js';
import { walkEndpoint, type Walk } from '../../src/probe/endpoint-walk.js';
import { parseTarget } from '../../src/model/reference.js';
import { realClock, type Log, type ProbeContext } from '../../src/model/types.js';
import { loadEnvironment, type ProbeEnvironment } from '../../src/node-config/environment.js';
import { TokenCache } from '../../src/probe/token-cache.js';

let ca: TestCA;
let leaf: CertPair;
let dir: string;
const open: { close(): Promise<unknown> }[] = [];

before(() => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-chain-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
});
after(async () => {
  for (const o of open) await o.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function registry(): Promise<FakeRegistry> {
  const f = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key } });
  open.push(f);
  f.putManifest(
    'team/app',
    { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'a'.repeat(64)}` }, layers: [] },
    DOCKER_MANIFEST,
    'v1',
  );
  return f;
}

/** A port with nothing listening: bind, note the port, close. */
async function closedPort(): Promise<number> {
  const s: Server = createServer();
  await within(new Promise<void>((r) => s.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
  const port = (s.address() as { port: number }).port;
  await within(new Promise<void>((r) => s.close(() => r())), 5000, 'the server to close');
  return port;
}

function env(opts: { ca?: boolean; certsD?: string } = {}): ProbeEnvironment {
  return loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: null,
    caFiles: opts.ca === false ? [] : [join(dir, 'ca.crt')],
    containerdConfigPath: opts.certsD ? [opts.certsD] : [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
}

/** certs.d/<host>_<port>_/hosts.toml for the registry at `port`. */
function certsD(port: number, toml: string, files: Record<string, string> = {}): string {
  const root = mkdtempSync(join(dir, 'certs.d-'));
  const hostDir = join(root, `127.0.0.1_${port}_`);
  mkdirSync(hostDir);
  writeFileSync(join(hostDir, 'hosts.toml'), toml);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(hostDir, name), text);
  return root;
}

describe('probe chain', () => {
  test('a Target parsed by the caller travels as it is: its input labels the result, nothing is parsed again', async () => {
    const f = await registry();
    const parsed = parseTarget(`127.0.0.1:${f.port}/team/app:v1`);
    assert.ok(parsed.ok);
    // Parsed again, this label would be an invalid reference.
    const target = { ...parsed.target, input: 'Team App (configured)' };
    const r = await probeTarget(target, env(), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    assert.equal(r.target, 'Team App (configured)');
    assert.equal(r.image, `127.0.0.1:${f.port}/team/app:v1`);
    assert.deepEqual(
      r.steps.map((s) => s.stage),
      ['reference', 'dns', 'tcp', 'tls', 'http', 'auth', 'manifest'],
    );
  });

  test('every stage in order against an anonymous registry; IP literal needs no DNS query', async () => {
    const f = await registry();
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(), { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    assert.deepEqual(
      r.steps.map((s) => s.stage),
      ['reference', 'dns', 'tcp', 'tls', 'http', 'auth', 'manifest'],
    );
    const dns = r.steps[1];
    assert.equal(dns?.stage === 'dns' && dns.detail !== undefined && 'source' in dns.detail ? dns.detail.source : undefined, 'literal');
    assert.equal(r.registry, `127.0.0.1:${f.port}`);
    assert.equal(r.image, `127.0.0.1:${f.port}/team/app:v1`);
    assert.equal(r.degraded, false);
    assert.equal(f.count('HEAD', /manifests\/v1/), 1);
  });

  test('without the CA: tls_unknown_ca; the CA from certs.d (hosts.toml `ca`) is trusted as containerd does', async () => {
    const f = await registry();
    const target = `127.0.0.1:${f.port}/team/app:v1`;
    const bare = await probeTarget(target, env({ ca: false }), { timeoutMs: 5000 });
    assert.equal(bare.reason, 'tls_unknown_ca');
    assert.equal(bare.host, `127.0.0.1:${f.port}`);
    const root = certsD(f.port, `server = "https://127.0.0.1:${f.port}"\nca = "ca.crt"\n\n[host]\n`, { 'ca.crt': ca.cert });
    const trusted = await probeTarget(target, env({ ca: false, certsD: root }), { timeoutMs: 5000 });
    assert.equal(trusted.ok, true, `${trusted.reason}: ${trusted.message}`);
  });

  test('hosts.toml mirror is tried first; a healthy mirror serves the probe', async () => {
    const upstream = await registry();
    const mirror = await registry();
    const root = certsD(
      upstream.port,
      `server = "https://127.0.0.1:${upstream.port}"\n\n[host."https://127.0.0.1:${mirror.port}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const r = await probeTarget(`127.0.0.1:${upstream.port}/team/app:v1`, env({ certsD: root }), { timeoutMs: 5000 });
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    assert.equal(r.degraded, false);
    assert.equal(mirror.count('HEAD', /manifests\/v1/), 1);
    assert.equal(upstream.count('HEAD', /manifests\/v1/), 0, 'the server is only the fallback');
    const ref = r.steps[0];
    assert.deepEqual(ref?.stage === 'reference' ? ref.detail?.endpoints : undefined, [
      `https://127.0.0.1:${mirror.port}`,
      `https://127.0.0.1:${upstream.port}`,
    ]);
  });

  test('mirror down, server up: ok but degraded, the mirror failure kept in the steps', async () => {
    const upstream = await registry();
    const dead = await closedPort();
    const root = certsD(
      upstream.port,
      `server = "https://127.0.0.1:${upstream.port}"\n\n[host."https://127.0.0.1:${dead}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const r = await probeTarget(`127.0.0.1:${upstream.port}/team/app:v1`, env({ certsD: root }), { timeoutMs: 5000 });
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    assert.equal(r.degraded, true);
    const failed = r.steps.find((s) => !s.ok);
    assert.ok(failed, 'a failed step');
    assert.equal(failed.reason, 'tcp_refused');
    assert.equal(failed.host, `127.0.0.1:${dead}`);
    assert.equal(upstream.count('HEAD', /manifests\/v1/), 1);
  });

  test('mirror and server both down: the first error (the mirror) is the verdict, as containerd reports it', async () => {
    const deadServer = await closedPort();
    const deadMirror = await closedPort();
    const root = certsD(
      deadServer,
      `server = "https://127.0.0.1:${deadServer}"\n\n[host."https://127.0.0.1:${deadMirror}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const r = await probeTarget(`127.0.0.1:${deadServer}/team/app:v1`, env({ certsD: root }), { timeoutMs: 5000 });
    assert.equal(r.ok, false);
    assert.equal(r.reason, 'tcp_refused');
    assert.equal(r.host, `127.0.0.1:${deadMirror}`);
    assert.equal(r.steps.filter((s) => s.stage === 'tcp').length, 2, 'both endpoints were tried');
  });

  test('a pull-only mirror is skipped for a tag but used for a digest', async () => {
    const upstream = await registry();
    const mirror = await registry();
    const digest = mirror.putManifest(
      'team/app',
      { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'b'.repeat(64)}` }, layers: [] },
      DOCKER_MANIFEST,
    );
    upstream.putManifest(
      'team/app',
      { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'b'.repeat(64)}` }, layers: [] },
      DOCKER_MANIFEST,
    );
    const root = certsD(
      upstream.port,
      `server = "https://127.0.0.1:${upstream.port}"\n\n[host."https://127.0.0.1:${mirror.port}"]\n  capabilities = ["pull"]\n`,
    );
    const byTag = await probeTarget(`127.0.0.1:${upstream.port}/team/app:v1`, env({ certsD: root }), { timeoutMs: 5000 });
    assert.equal(byTag.ok, true);
    assert.equal(mirror.count('HEAD', /manifests/), 0, 'a public mirror is never trusted to resolve a tag');
    const byDigest = await probeTarget(`127.0.0.1:${upstream.port}/team/app@${digest}`, env({ certsD: root }), { timeoutMs: 5000 });
    assert.equal(byDigest.ok, true, `${byDigest.reason}: ${byDigest.message}`);
    assert.equal(mirror.count('HEAD', /manifests/), 1);
  });

  test('a registry that never answers: http_timeout at the deadline, never later', async () => {
    const f = await registry();
    f.fault({ path: '/v2/team/app/manifests/v1', hang: true });
    const time = new FakeTime();
    const run = track(probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(), { timeoutMs: 1200, clock: time, timers: time }));
    await until(() => f.count('HEAD', '/v2/team/app/manifests/v1') >= 1, 5000, 'the manifest HEAD at the registry');
    time.advance(1199);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still waiting 1 ms before the deadline');
    time.advance(1);
    const r = await settle(time, run.p, 'the probe at its deadline');
    assert.equal(r.reason, 'http_timeout');
    assert.equal(r.stage, 'http');
    assert.equal(r.seconds, 1.2, 'the probe ends at its deadline, never later');
  });

  test('an outer abort signal ends the probe (agent shutdown)', async () => {
    const f = await registry();
    f.fault({ path: '/v2/team/app/manifests/v1', hang: true });
    const ac = new AbortController();
    const time = new FakeTime();
    const run = probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(), { timeoutMs: 10_000, signal: ac.signal, clock: time, timers: time });
    await until(() => f.count('HEAD', '/v2/team/app/manifests/v1') >= 1, 5000, 'the manifest HEAD at the registry');
    ac.abort();
    // Time never advances: a result at all proves the abort ended the probe, not a timer.
    const r = await within(run, 5000, 'the probe to end on the outer abort');
    assert.equal(r.ok, false);
    assert.equal(r.seconds, 0, 'aborted long before the 10 s deadline');
  });

  test('a bug inside a stage is internal_error in that stage, with its message, logged — never a timeout', async () => {
    const f = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key }, auth: 'bearer' });
    open.push(f);
    f.putManifest('team/app', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
    const broken = new TokenCache();
    broken.get = () => {
      throw new TypeError('cache exploded');
    };
    const errors: object[] = [];
    const log: Log = {
      debug() {},
      info() {},
      warn() {},
      error(o) {
        errors.push(o);
      },
    };
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, env(), { timeoutMs: 5000, tokenCache: broken, log });
    assert.equal(r.ok, false);
    assert.equal(r.reason, 'internal_error');
    assert.equal(r.cause, 'internal');
    assert.equal(r.stage, 'auth');
    assert.match(r.message ?? '', /cache exploded/);
    const last = r.steps.at(-1);
    assert.ok(last, 'a last step');
    assert.equal(last.stage, 'auth');
    assert.equal(last.reason, 'internal_error');
    assert.equal(errors.length, 1, 'the bug is logged');
    assert.match(JSON.stringify(errors[0]), /cache exploded/);
  });

  test('localhost fallback: https answered in plain HTTP goes on in http on the same port, not degraded', async () => {
    const f = await FakeRegistry.start();
    open.push(f);
    f.putManifest('team/app', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
    const parsed = parseTarget(`127.0.0.1:${f.port}/team/app:v1`);
    assert.ok(parsed.ok);
    const ctx: ProbeContext = {
      signal: new AbortController().signal,
      deadlineAt: realClock.now() + 5000,
      clock: realClock,
      log: { debug() {}, info() {}, warn() {}, error() {} },
      wallNow: Date.now,
    };
    const walkWith = async (httpFallback: boolean): Promise<{ failure: Awaited<ReturnType<typeof walkEndpoint>>; w: Walk }> => {
      const w: Walk = {
        ctx,
        env: env(),
        steps: [],
        current: { stage: 'dns' },
        opts: { timeoutMs: 5000, checkPlatform: true, tokenCache: new TokenCache() },
      };
      const failure = await walkEndpoint(w, parsed.target, {
        endpoint: `127.0.0.1:${f.port}`,
        scheme: 'https',
        ca: [],
        skipVerify: true,
        ...(httpFallback ? { httpFallback } : {}),
      });
      return { failure, w };
    };
    const fell = await walkWith(true);
    assert.equal(fell.failure, null, `${fell.failure?.outcome.reason}: ${fell.failure?.outcome.message}`);
    assert.deepEqual(
      fell.w.steps.map((s) => [s.stage, s.ok]),
      [
        ['dns', true],
        ['tcp', true],
        ['tls', true],
        ['http', true],
        ['auth', true],
        ['manifest', true],
      ],
    );
    const tls = fell.w.steps[2];
    assert.equal(tls?.stage === 'tls' && tls.detail !== undefined && 'plainHttp' in tls.detail ? tls.detail.plainHttp : undefined, true);
    assert.equal(
      fell.w.steps.some((s) => s.degraded === true || !s.ok),
      false,
      "containerd's normal path: nothing degraded",
    );
    assert.equal(f.count('HEAD', '/v2/team/app/manifests/v1'), 1);
    // Without the flag (not localhost), the same port is a TLS failure, as before.
    const strict = await walkWith(false);
    assert.equal(strict.failure?.outcome.reason, 'tls_handshake');
  });

  test('a manifest redirect to another host name: that host is reached as its own dns/tcp hop, then the image is found', async () => {
    const blobs = await FakeRegistry.start();
    open.push(blobs);
    blobs.putManifest('team/app', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
    const f = await registry();
    f.fault({
      method: 'HEAD',
      path: '/v2/team/app/manifests/v1',
      status: 307,
      headers: { location: `http://blobs.test:${blobs.port}/v2/team/app/manifests/v1` },
    });
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 blobs.test\n');
    const e = loadEnvironment({
      resolvConfPath: join(dir, 'resolv.conf'),
      hostsPath: join(dir, 'hosts'),
      caFiles: [join(dir, 'ca.crt')],
      containerdConfigPath: [],
      platform: { os: 'linux', architecture: 'amd64' },
    });
    const r = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, e, { timeoutMs: 5000, tokenCache: new TokenCache() });
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    // The first request (the manifest HEAD, as containerd sends it) is the one redirected: the hop comes before its http step.
    assert.deepEqual(r.steps.map((s) => `${s.stage}:${s.host ?? ''}`).slice(-5), [
      'dns:blobs.test',
      `tcp:blobs.test:${blobs.port}`,
      `http:127.0.0.1:${f.port}`,
      `auth:127.0.0.1:${f.port}`,
      `manifest:127.0.0.1:${f.port}`,
    ]);
    assert.equal(blobs.count('HEAD', '/v2/team/app/manifests/v1'), 1);

    f.clearFaults();
    f.fault({
      method: 'HEAD',
      path: '/v2/team/app/manifests/v1',
      status: 307,
      headers: { location: `http://nowhere.test:${blobs.port}/v2/team/app/manifests/v1` },
    });
    const failed = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, e, { timeoutMs: 1500, tokenCache: new TokenCache() });
    assert.equal(failed.ok, false);
    assert.equal(failed.stage, 'dns');
    assert.equal(failed.host, 'nowhere.test');
    assert.equal(failed.steps.filter((s) => s.stage === 'dns' && s.host === 'nowhere.test').length, 1, 'the hop failure is recorded once');

    // A redirect to a cloud metadata name is refused before any lookup or connection.
    f.clearFaults();
    f.fault({
      method: 'HEAD',
      path: '/v2/team/app/manifests/v1',
      status: 307,
      headers: { location: 'http://metadata.google.internal/computeMetadata/v1/' },
    });
    const meta = await probeTarget(`127.0.0.1:${f.port}/team/app:v1`, e, { timeoutMs: 1500, tokenCache: new TokenCache() });
    assert.equal(meta.ok, false);
    assert.equal(meta.stage, 'http');
    assert.equal(meta.reason, 'http_status');
    assert.match(meta.message ?? '', /metadata\.google\.internal.*refused/);
    assert.equal(
      meta.steps.some((s) => s.host?.startsWith('metadata.google.internal') === true && s.stage !== 'manifest' && s.stage !== 'http'),
      false,
      'no dns/tcp hop to it',
    );
  });
});
