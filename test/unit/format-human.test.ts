/**
 * Human output: a failed manifest request is shown as the manifest step (not
 * as a second "GET /v2/" line), and registry-supplied text never reaches the
 * terminal with its control characters.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatResult, visible } from '../../src/output/format-human.js';
import { probeTarget } from '../../src/probe/chain.js';
import { loadEnvironment } from '../../src/node-config/environment.js';
import { TokenCache } from '../../src/probe/token-cache.js';
import type { ProbeResult, StepResult } from '../../src/model/types.js';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { DOCKER_LIST, FakeRegistry } from '../support/fake-registry.js';

let ca: TestCA;
let leaf: CertPair;
let dir: string;
const open: FakeRegistry[] = [];
before(() => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-format-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
});
after(async () => {
  for (const f of open) await f.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function probe(setup: (f: FakeRegistry) => void, image: string): Promise<ProbeResult> {
  const f = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key } });
  open.push(f);
  setup(f);
  const env = loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: null,
    caFiles: [join(dir, 'ca.crt')],
    containerdConfigPath: [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
  return probeTarget(`127.0.0.1:${f.port}/${image}`, env, { timeoutMs: 5000, tokenCache: new TokenCache() });
}

const ESC = '\u001b';

describe('human output', () => {
  test('a manifest HEAD answered 503 is the manifest step, not a second http step', async () => {
    const r = await probe((f) => f.fault({ method: 'HEAD', path: '/v2/team/app/manifests/v1', status: 503 }), 'team/app:v1');
    assert.equal(r.reason, 'http_status');
    const text = formatResult(r, { color: false });
    const lines = text.split('\n');
    assert.equal(lines.filter((l) => /^\s+✓ http\b/.test(l)).length, 1, text);
    assert.equal(lines.filter((l) => /^\s+✗ http\b/.test(l)).length, 0, text);
    const failed = lines.find((l) => /^\s+✗ manifest\b/.test(l));
    assert.ok(failed, text);
    assert.match(failed, /HEAD \/v2\/team\/app\/manifests\/v1 → 503/);
    assert.doesNotMatch(text, /not reached/, 'every stage was reached');
  });

  test('control characters from the registry (platforms, messages, hosts) are escaped, not printed', async () => {
    const evil = `${ESC}]0;pwned${ESC}\\${ESC}[2J`;
    const r = await probe((f) => {
      f.putManifest(
        'team/app',
        { schemaVersion: 2, manifests: [{ digest: 'sha256:a', platform: { os: 'linux', architecture: `s390x${evil}` } }] },
        DOCKER_LIST,
        'v1',
      );
    }, 'team/app:v1');
    assert.equal(r.reason, 'platform_missing');
    assert.ok(r.message?.includes(ESC), "the JSON keeps the registry's text as it came");
    const plain = formatResult(r, { color: false });
    assert.equal(plain.includes(ESC), false, JSON.stringify(plain));
    assert.match(plain, /s390x\\u001b\]0;pwned\\u001b\\\\u001b\[2J/);
    const coloured = formatResult(r, { color: true });
    assert.ok(
      coloured
        .split(ESC)
        .slice(1)
        .every((after) => /^\[\d+m/.test(after)),
      'only our own colour codes remain',
    );

    const crafted: ProbeResult = {
      target: 'x',
      image: 'reg/app:v1',
      registry: 'reg',
      ok: false,
      stage: 'manifest',
      reason: 'manifest_unknown',
      cause: 'missing',
      host: `reg${ESC}[31m`,
      message: `manifest unknown\r\n${ESC}[1Afake ok\u202e`,
      hint: `Nearest existing tags: v1\u0007.`,
      degraded: false,
      seconds: 0.1,
      steps: [{ stage: 'manifest', ok: false, seconds: 0.1, host: `reg\u009b31m`, reason: 'manifest_unknown', message: `tag ${ESC}[8m` }],
    };
    const out = formatResult(crafted, { color: false });
    assert.equal(/(?!\n)[\p{Cc}\u202e]/u.test(out), false, JSON.stringify(out));
    assert.match(out, /\\u000d\\u000a\\u001b\[1Afake ok\\u202e/);
    assert.match(out, /\\u0007/);
    assert.equal(visible('plain text: ok'), 'plain text: ok');
  });
});

describe('human output from typed step details', () => {
  const R = 'registry.lab.test';
  const base = {
    target: `${R}/app:v1`,
    image: `${R}/app:v1`,
    registry: R,
    ok: true,
    stage: null,
    reason: null,
    cause: null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0.5,
  } as const;

  test('each stage summarises its own detail: addresses, nameservers, connects, protocol and expiry, status, scheme, digest', () => {
    const r: ProbeResult = {
      ...base,
      steps: [
        { stage: 'reference', ok: true, seconds: 0, detail: { image: `${R}/app:v1`, endpoint: R } },
        {
          stage: 'dns',
          ok: true,
          seconds: 0.001,
          host: R,
          detail: {
            addresses: ['10.0.0.10'],
            source: 'dns',
            name: R,
            nameservers: [
              { server: '10.0.0.53', rcode: 'NOERROR', seconds: 0.001 },
              { server: '10.0.0.54', rcode: 'NOERROR', seconds: 0.001 },
            ],
          },
        },
        {
          stage: 'tcp',
          ok: true,
          seconds: 0.001,
          host: `${R}:443`,
          degraded: true,
          detail: {
            addresses: [
              { address: '10.0.0.10', ok: true, seconds: 0 },
              { address: '10.0.0.11', ok: false, error: 'ECONNREFUSED', seconds: 0 },
            ],
            connected: ['10.0.0.10'],
          },
        },
        {
          stage: 'tls',
          ok: true,
          seconds: 0.001,
          host: `${R}:443`,
          detail: { address: '10.0.0.10', protocol: 'TLSv1.3', earliestExpiry: '2031-01-02T00:00:00Z' },
        },
        { stage: 'http', ok: true, seconds: 0.001, host: R, detail: { status: 401, challenges: [], request: 'HEAD /v2/app/manifests/v1' } },
        { stage: 'auth', ok: true, seconds: 0.001, host: R, detail: { scheme: 'bearer', tokenCached: true } },
        {
          stage: 'manifest',
          ok: true,
          seconds: 0.001,
          host: R,
          detail: { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.index.v1+json' },
        },
        {
          stage: 'runtime',
          ok: true,
          seconds: 0.9,
          detail: {
            endpoint: 'unix:///run/containerd/containerd.sock',
            runtimeName: 'containerd',
            runtimeVersion: '1.6.20',
            auth: 'basic',
            imageId: `sha256:${'b'.repeat(64)}`,
            classified: null,
          },
        },
      ],
      credentials: { source: 'credential-provider', name: 'ecr-credential-provider', expiresAt: '2031-01-01T12:00:00Z' },
      proxy: 'http://proxy.corp:3128',
    };
    const lines = formatResult(r, { color: false })
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(lines.slice(1, 10), [
      `✓ reference 0.000s ${R}/app:v1`,
      `✓ dns 0.001s ${R} → 10.0.0.10 (2 nameservers)`,
      `! tcp 0.001s ${R}:443 (1/2 addresses connect)`,
      `✓ tls 0.001s ${R}:443 TLSv1.3, expires 2031-01-02`,
      `✓ http 0.001s ${R} HEAD /v2/app/manifests/v1 → 401`,
      `✓ auth 0.001s ${R} bearer (cached token)`,
      `✓ manifest 0.001s ${R} sha256:aaaaaaaaaaaa… vnd.oci.image.index.v1+json`,
      `✓ runtime 0.900s unix:///run/containerd/containerd.sock containerd 1.6.20 pulled sha256:bbbbbbbbbbbb…`,
      `· credentials from credential-provider ecr-credential-provider, valid until 2031-01-01T12:00:00Z; through proxy http://proxy.corp:3128`,
    ]);
  });

  test('a request filed under another stage keeps its own summary: plain HTTP on a TLS port is said so; a token request refused at connect is a bare tcp line, one that timed out an http line', () => {
    const r: ProbeResult = {
      ...base,
      ok: false,
      stage: 'http',
      reason: 'http_timeout',
      cause: 'network',
      host: R,
      message: 'x',
      hint: 'y',
      steps: [
        {
          stage: 'tls',
          ok: true,
          seconds: 0,
          host: 'localhost:5000',
          detail: { plainHttp: true, error: 'ERR_SSL_WRONG_VERSION_NUMBER', fallback: 'http', note: 'n' },
        },
        {
          stage: 'tcp',
          ok: false,
          seconds: 0,
          host: R,
          reason: 'tcp_refused',
          message: 'connection refused',
          detail: { scheme: 'bearer', status: 503 },
        },
        {
          stage: 'http',
          ok: false,
          seconds: 0,
          host: R,
          reason: 'http_timeout',
          message: 'deadline',
          detail: { scheme: 'bearer', status: 502 },
        },
      ],
    };
    const lines = formatResult(r, { color: false })
      .split('\n')
      .map((l) => l.replace(/\s+/g, ' ').trim());
    assert.deepEqual(lines.slice(1, 4), [
      '✓ tls 0.000s localhost:5000 plain HTTP (containerd falls back from HTTPS to HTTP for localhost)',
      `✗ tcp 0.000s ${R} connection refused`,
      `✗ http 0.000s ${R} GET /v2/ → 502 deadline`,
    ]);
  });

  test('the detail type follows the stage: a dns step has no tls fields (checked by tsc)', () => {
    // Typed as any step (not narrowed by its initialiser), so the check on `stage` below is what narrows it.
    const anyStep = (s: StepResult): StepResult => s;
    const step = anyStep({
      stage: 'dns',
      ok: true,
      seconds: 0,
      detail: { addresses: [], source: 'literal', name: '::1', nameservers: [] },
    });
    if (step.stage === 'dns' && step.detail !== undefined && 'nameservers' in step.detail) {
      // @ts-expect-error earliestExpirySeconds belongs to a tls step's detail
      assert.equal(step.detail.earliestExpirySeconds, undefined);
      assert.deepEqual(step.detail.nameservers, []);
    }
    const wrong: StepResult = {
      stage: 'tcp',
      ok: true,
      seconds: 0,
      // @ts-expect-error a tcp step cannot carry a dns detail
      detail: { addresses: [], source: 'literal', name: '::1', nameservers: [] },
    };
    assert.equal(wrong.stage, 'tcp');
  });
});
