/**
 * Hostile registries (issue 6, "Done when"): loopback servers that misbehave
 * on purpose, probed with the real chain in-process and, for a subset, through
 * the CLI process. Every case: no exception, the probe ends within its
 * deadline + 1 s, a reason from the closed set that fits the fault, no secret
 * the probe sent in any output, and (CLI) a peak RSS under 150 MiB read from
 * the child itself. Host names resolve through a hosts file (no DNS query
 * leaves the machine); every listener is on 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { createCA, type CertPair, type TestCA } from '../support/certs.js';
import { prepareCli } from '../support/run-cli.js';
import {
  DOCKER_MANIFEST,
  HostileServer,
  OCI_INDEX,
  REGISTRY_HEADERS,
  errorBody,
  respond,
  respondJson,
  type Handler,
  type RawRequest,
} from '../support/hostile-registry.js';
import { probeTarget } from '../../src/probe/chain.js';
import { loadEnvironment, type ProbeEnvironment } from '../../src/node-config/environment.js';
import { TokenCache } from '../../src/probe/token-cache.js';
import { REASONS, causeOf, type Reason } from '../../src/diagnosis/catalog.js';
import type { ProbeResult } from '../../src/model/types.js';

const REG = 'reg.hostile.test';
const OTHER = 'other.hostile.test';
const TIMEOUT_MS = 2000;
const RSS_LIMIT_KIB = 150 * 1024;
const USER = 'hostile-user';
const PASSWORD = 'S3cr3t-pa55-w0rd';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const ROOT = new URL('../../', import.meta.url).pathname;

let ca: TestCA;
let leaf: CertPair;
let dir: string;
let cliArgv: string[];
const open: HostileServer[] = [];

before(() => {
  ca = createCA();
  leaf = ca.issue('hostile', { sans: [REG, OTHER, '127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-hostile-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  writeFileSync(join(dir, 'hosts'), `127.0.0.1 ${REG} ${OTHER}\n`);
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  cliArgv = prepareCli();
});
after(async () => {
  for (const s of open) await s.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (b: string | Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function server(handler: Handler | undefined, o: { tls?: boolean; onConnection?: (s: Socket) => void } = {}): Promise<HostileServer> {
  const s = await HostileServer.start({
    ...(o.tls === false ? {} : { tls: { cert: leaf.cert, key: leaf.key } }),
    ...(handler ? { handler } : {}),
    ...(o.onConnection ? { onConnection: o.onConnection } : {}),
  });
  open.push(s);
  return s;
}

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: DOCKER_MANIFEST,
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 2, digest: `sha256:${'a'.repeat(64)}` },
  layers: [],
});

function sendManifest(sock: Socket, req: RawRequest, body: string | Buffer, mediaType: string): void {
  respond(sock, req, 200, { 'content-type': mediaType, 'docker-content-digest': sha256(body), ...REGISTRY_HEADERS }, body);
}

/** A registry: /v2/ 200, manifests and tags/list by the given handlers (a plain manifest by default). */
function registry(h: { v2?: Handler; manifest?: Handler; tags?: Handler; token?: Handler } = {}): Handler {
  const v2 =
    h.v2 ??
    ((req, sock) => {
      respondJson(sock, req, 200, {});
    });
  const tags =
    h.tags ??
    ((req, sock) => {
      respondJson(sock, req, 404, errorBody('NAME_UNKNOWN', 'repository name not known to registry'));
    });
  const manifest =
    h.manifest ??
    ((req, sock) => {
      sendManifest(sock, req, MANIFEST, DOCKER_MANIFEST);
    });
  return (req, sock, srv) => {
    if (req.path === '/v2/' || req.path === '/v2') v2(req, sock, srv);
    else if (req.path === '/token' && h.token) h.token(req, sock, srv);
    else if (/\/tags\/list$/.test(req.path)) tags(req, sock, srv);
    else if (/\/manifests\//.test(req.path)) manifest(req, sock, srv);
    else respondJson(sock, req, 404, errorBody('UNSUPPORTED', 'not supported'));
  };
}

/** Basic auth on every /v2 path; `inner` answers once the credentials match. */
function basicAuth(inner: Handler): Handler {
  return (req, sock, srv) => {
    if (req.headers['authorization'] !== BASIC) {
      respondJson(sock, req, 401, errorBody('UNAUTHORIZED', 'authentication required'), { 'www-authenticate': 'Basic realm="hostile"' });
      return;
    }
    inner(req, sock, srv);
  };
}

function dockerConfig(port: number, host = REG): string {
  const p = join(dir, `docker-config-${host}-${port}.json`);
  writeFileSync(p, JSON.stringify({ auths: { [`${host}:${port}`]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
  return p;
}

function env(o: { dockerConfig?: string } = {}): ProbeEnvironment {
  return loadEnvironment({
    resolvConfPath: join(dir, 'resolv.conf'),
    hostsPath: join(dir, 'hosts'),
    caFiles: [join(dir, 'ca.crt')],
    dockerConfigPath: o.dockerConfig ?? null,
    containerdConfigPath: [],
    platform: { os: 'linux', architecture: 'amd64' },
  });
}

/** The closed set, a stage that fits the reason, a bounded result, and the deadline held. */
function assertSane(r: ProbeResult, ms: number, label: string): void {
  assert.ok(ms <= TIMEOUT_MS + 1000, `${label}: the probe took ${ms.toFixed(0)} ms against a ${TIMEOUT_MS} ms deadline`);
  assert.ok(r.seconds * 1000 <= TIMEOUT_MS + 1000, `${label}: result says ${r.seconds} s`);
  if (!r.ok) {
    assert.ok(r.reason !== null && Object.hasOwn(REASONS, r.reason), `${label}: reason ${String(r.reason)} is not in the closed set`);
    const reason = r.reason;
    assert.notEqual(reason, 'internal_error', `${label}: internal error: ${r.message}`);
    assert.equal(r.cause, causeOf(reason), `${label}: cause`);
    const stage = REASONS[reason].stage;
    if (stage !== null) assert.equal(r.stage, stage, `${label}: stage`);
  }
  const size = JSON.stringify(r).length;
  assert.ok(size < 32 * 1024, `${label}: the result is ${size} bytes: registry data must be bounded`);
  assert.ok((r.message ?? '').length <= 2000, `${label}: message of ${(r.message ?? '').length} chars`);
  assert.ok((r.hint ?? '').length <= 2000, `${label}: hint of ${(r.hint ?? '').length} chars`);
}

async function probe(target: string, o: { dockerConfig?: string; cache?: TokenCache } = {}): Promise<ProbeResult> {
  const t0 = performance.now();
  let r: ProbeResult;
  try {
    r = await probeTarget(target, env(o), { timeoutMs: TIMEOUT_MS, tokenCache: o.cache ?? new TokenCache() });
  } catch (err) {
    assert.fail(`${target}: probeTarget threw ${(err as Error).name}: ${(err as Error).message}`);
  }
  assertSane(r, performance.now() - t0, target);
  return r;
}

const target = (s: HostileServer, host = REG): string => `${host}:${s.port}/team/app:v1`;
const expectReason = (r: ProbeResult, reasons: Reason[], label: string): void =>
  assert.ok(
    !r.ok && reasons.includes(r.reason as Reason),
    `${label}: want ${reasons.join(' or ')}, got ${r.ok ? 'ok' : `${r.reason} (${r.message})`}`,
  );

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  rssKiB: number;
  wallMs: number;
}

/** The real CLI (compiled like dist/) in a child process: `probe --timeout 2s` with the test hosts file, CA and resolv.conf. */
async function cli(args: string[], o: { dockerConfig?: string } = {}): Promise<CliRun> {
  const rssFile = join(dir, `rss-${Math.random().toString(36).slice(2)}`);
  const argv = [
    ...cliArgv,
    'probe',
    '--timeout',
    `${TIMEOUT_MS}ms`,
    '--resolv-conf',
    join(dir, 'resolv.conf'),
    '--hosts',
    join(dir, 'hosts'),
    '--ca-file',
    join(dir, 'ca.crt'),
    '--containerd-config-path=',
    '--platform',
    'linux/amd64',
    '--concurrency',
    '1',
    ...(o.dockerConfig ? ['--docker-config', o.dockerConfig] : []),
    ...args,
  ];
  const t0 = performance.now();
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', PULLPROBE_TEST_RSS_FILE: rssFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(kill);
  let rssKiB = Number.NaN;
  try {
    rssKiB = Number(readFileSync(rssFile, 'utf8'));
  } catch {
    /* the child died before its exit handler */
  }
  return { code, stdout, stderr, rssKiB, wallMs: performance.now() - t0 };
}

/** CLI --json: exits 0/1 with a parseable array, no stack trace, RSS bounded; returns the results. */
async function cliJson(
  targets: string[],
  label: string,
  o: { dockerConfig?: string } = {},
): Promise<{ run: CliRun; results: ProbeResult[] }> {
  const run = await cli(['--json', ...targets], o);
  assert.ok(run.code === 0 || run.code === 1, `${label}: CLI exit ${run.code}\n${run.stderr.slice(0, 2000)}`);
  assert.doesNotMatch(
    run.stderr,
    /\n\s+at |internal error/,
    `${label}: stack trace or internal error on stderr:\n${run.stderr.slice(0, 2000)}`,
  );
  console.log(`# ${label}: CLI peak RSS ${(run.rssKiB / 1024).toFixed(1)} MiB`);
  assert.ok(run.rssKiB > 0 && run.rssKiB < RSS_LIMIT_KIB, `${label}: CLI peak RSS ${(run.rssKiB / 1024).toFixed(1)} MiB (limit 150 MiB)`);
  let results: ProbeResult[];
  try {
    results = JSON.parse(run.stdout) as ProbeResult[];
  } catch {
    assert.fail(`${label}: stdout is not JSON: ${run.stdout.slice(0, 500)}`);
  }
  for (const r of results) assertSane(r, r.seconds * 1000, `${label} (CLI)`);
  return { run, results };
}

/** An OCI index of `n` entries, none for linux/amd64 unless `amd64Last`; `bare` entries hold only a platform (75k fit in 4 MB). */
function bigIndex(n: number, amd64Last: boolean, bare = false): string {
  const d = `sha256:${'b'.repeat(64)}`;
  const entry = (platform: object): object =>
    bare ? { platform } : { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500, digest: d, platform };
  const manifests = Array.from({ length: n }, (_, i) => entry({ os: 'plan9', architecture: `x${i}` }));
  if (amd64Last) manifests.push(entry({ os: 'linux', architecture: 'amd64' }));
  return JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
}

/** HEAD answers the index's digest and type; GET by tag or digest sends it. */
const serveIndex =
  (body: string): Handler =>
  (req, sock) =>
    sendManifest(sock, req, body, OCI_INDEX);

describe('hostile registries: slow, huge and malformed answers', () => {
  test('headers that never finish (slow-loris): http_timeout within the deadline, in-process and through the CLI', async () => {
    const s = await server(
      registry({
        manifest: (_req, sock, srv) => {
          sock.write('HTTP/1.1 200 OK\r\ndocker-distribution-api-version: registry/2.0\r\n');
          srv.every(100, () => {
            if (!sock.destroyed) sock.write('x-slow: 1\r\n');
          });
        },
      }),
    );
    expectReason(await probe(target(s)), ['http_timeout'], 'slow-loris');
    const { results } = await cliJson([target(s)], 'slow-loris');
    expectReason(results[0] as ProbeResult, ['http_timeout'], 'slow-loris CLI');
  });

  test('a manifest body that never finishes: http_timeout within the deadline', async () => {
    const index = bigIndex(3, true);
    const s = await server(
      registry({
        manifest: (req, sock) => {
          if (req.method === 'HEAD') {
            sendManifest(sock, req, index, OCI_INDEX);
            return;
          }
          sock.write(
            `HTTP/1.1 200 OK\r\ncontent-type: ${OCI_INDEX}\r\ncontent-length: 100000\r\ndocker-content-digest: ${sha256(index)}\r\n\r\n{"schemaVersion":2,`,
          );
        },
      }),
    );
    expectReason(await probe(target(s)), ['http_timeout'], 'endless body');
  });

  test('200 KB of response headers (Go accepts up to 1 MB) is a healthy registry, not a timeout', async () => {
    const pad = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x-pad-${i}`, 'p'.repeat(1000)]));
    const s = await server(
      registry({
        manifest: (req, sock) =>
          respond(
            sock,
            req,
            200,
            { 'content-type': DOCKER_MANIFEST, 'docker-content-digest': sha256(MANIFEST), ...REGISTRY_HEADERS, ...pad },
            MANIFEST,
          ),
      }),
    );
    const r = await probe(target(s));
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
  });

  test('1.5 MB of response headers: the registry is at fault (not a network timeout); CLI memory bounded', async () => {
    const pad = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`x-pad-${i}`, 'p'.repeat(1000)]));
    const s = await server(registry({ manifest: (req, sock) => respondJson(sock, req, 200, {}, pad) }));
    const r = await probe(target(s));
    expectReason(r, ['http_status', 'not_a_registry'], '1.5 MB headers');
    const { results } = await cliJson([target(s)], '1.5 MB headers');
    expectReason(results[0] as ProbeResult, ['http_status', 'not_a_registry'], '1.5 MB headers CLI');
  });

  test('a 4 MB image index with the platform last: found, within the deadline, CLI under 150 MiB', async () => {
    const index = bigIndex(19_500, true);
    assert.ok(index.length > 3_500_000 && index.length < 4 * 1024 * 1024, `index is ${index.length} bytes`);
    const s = await server(registry({ manifest: serveIndex(index) }));
    const r = await probe(target(s));
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    const { results } = await cliJson([target(s)], '4 MB index');
    assert.equal(results[0]?.ok, true, `${results[0]?.reason}: ${results[0]?.message}`);
  });

  test('a new 4 MB index on every probe: 12 probes in one CLI run stay under 150 MiB (no index kept per digest)', async () => {
    let n = 0;
    const s = await server(
      registry({
        manifest: (req, sock) => {
          if (req.method === 'HEAD') n++;
          sendManifest(
            sock,
            req,
            bigIndex(19_500, true).replace('"schemaVersion":2', `"schemaVersion":2,"annotations":{"n":"${n}"}`),
            OCI_INDEX,
          );
        },
      }),
    );
    const { results } = await cliJson(
      Array.from({ length: 12 }, (_, i) => `${REG}:${s.port}/team/app${i}:v1`),
      'fresh index per probe',
    );
    assert.equal(results.length, 12);
  });

  test('a 4 MB nested-array "index" is rejected as not an index (never platform_missing), memory bounded', async () => {
    const chunk = '[[[[[[[[[[]]]]]]]]]],';
    const body = `{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[${chunk.repeat(Math.floor(4_000_000 / chunk.length))}[]]}`;
    const s = await server(registry({ manifest: serveIndex(body) }));
    const r = await probe(target(s));
    expectReason(r, ['not_a_registry', 'http_status'], 'nested arrays');
    const { results } = await cliJson([target(s)], 'nested arrays');
    expectReason(results[0] as ProbeResult, ['not_a_registry', 'http_status'], 'nested arrays CLI');
  });

  test('an index with 75k platforms and none for the node: platform_missing within the deadline, short message', async () => {
    const index = bigIndex(75_000, false, true);
    assert.ok(index.length < 4 * 1024 * 1024, `index is ${index.length} bytes`);
    const s = await server(registry({ manifest: serveIndex(index) }));
    // entries without a digest may also be refused as not an index; either way fast and short
    const fits: Reason[] = ['platform_missing', 'not_a_registry'];
    expectReason(await probe(target(s)), fits, '75k platforms');
    const { results } = await cliJson([target(s)], '75k platforms');
    expectReason(results[0] as ProbeResult, fits, '75k platforms CLI');
  });

  test('33k long tags on tags/list and a 404 manifest: manifest_unknown within the deadline', async () => {
    const tags = Array.from({ length: 33_000 }, (_, i) => `v1-${String(i).padStart(6, '0')}-${'x'.repeat(90)}`);
    const s = await server(
      registry({
        manifest: (req, sock) => respondJson(sock, req, 404, errorBody('MANIFEST_UNKNOWN', 'manifest unknown')),
        tags: (req, sock) => respondJson(sock, req, 200, { name: 'team/app', tags }),
      }),
    );
    expectReason(await probe(target(s)), ['manifest_unknown'], '33k tags');
    const { results } = await cliJson([target(s)], '33k tags');
    expectReason(results[0] as ProbeResult, ['manifest_unknown'], '33k tags CLI');
  });
});

describe('hostile registries: redirects and protocols', () => {
  test('a manifest redirect loop ends with the registry at fault', async () => {
    const s = await server(
      registry({
        manifest: (req, sock) => respond(sock, req, 307, { location: req.target, ...REGISTRY_HEADERS }),
      }),
    );
    expectReason(await probe(target(s)), ['http_status', 'not_a_registry'], 'redirect loop');
  });

  for (const to of ['host name', 'port'] as const) {
    test(`a manifest 307 to another loopback ${to} is followed, without the credentials`, async () => {
      const other = await server(registry());
      const otherHost = to === 'host name' ? `${OTHER}:${other.port}` : `127.0.0.1:${other.port}`;
      const s = await server(
        basicAuth(
          registry({
            manifest: (req, sock) => respond(sock, req, 307, { location: `https://${otherHost}${req.target}`, ...REGISTRY_HEADERS }),
          }),
        ),
      );
      const r = await probe(target(s), { dockerConfig: dockerConfig(s.port) });
      assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
      assert.ok(other.count('HEAD', /\/manifests\/v1$/) >= 1, 'the redirect target was asked');
      assert.deepEqual(
        other.requests.filter((q) => q.authorization !== undefined),
        [],
        'credentials never follow a redirect to another host',
      );
    });
  }

  test('plain HTTP on the TLS port: tls_handshake', async () => {
    const s = await server(registry(), { tls: false });
    expectReason(await probe(target(s)), ['tls_handshake'], 'plain HTTP');
    const { results } = await cliJson([target(s)], 'plain HTTP');
    expectReason(results[0] as ProbeResult, ['tls_handshake'], 'plain HTTP CLI');
  });

  test('TLS then garbage: the endpoint is not a registry', async () => {
    const s = await server((_req, sock) => {
      sock.end(Buffer.from('\x00\x01\x02GARBAGE\xff\xfe not http at all\r\n\r\n', 'latin1'));
    });
    expectReason(await probe(target(s)), ['not_a_registry', 'http_status'], 'TLS garbage');
    const { results } = await cliJson([target(s)], 'TLS garbage');
    expectReason(results[0] as ProbeResult, ['not_a_registry', 'http_status'], 'TLS garbage CLI');
  });
});

describe('hostile registries: connections closed before an answer', () => {
  // An index, so the probe sends a second request (the index GET) after the HEAD.
  const child = JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] });
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: DOCKER_MANIFEST, digest: sha256(child), size: child.length, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  });
  const indexDigest = sha256(index);
  /** The index and its child; `drop(req)` true: the connection is closed instead of an answer. */
  const withIndex =
    (drop: (req: RawRequest, sock: Socket) => boolean): Handler =>
    (req, sock, srv) => {
      if (drop(req, sock)) {
        sock.destroy();
        return;
      }
      registry({
        manifest: (r, so) => {
          if (r.path.endsWith(`/${sha256(child)}`)) sendManifest(so, r, child, DOCKER_MANIFEST);
          else sendManifest(so, r, index, OCI_INDEX);
        },
      })(req, sock, srv);
    };

  test('closed after one answer without saying so: the next GET goes again on a new connection, as Go retries it', async () => {
    const served = new WeakMap<Socket, number>();
    const s = await server(
      withIndex((_req, sock) => {
        const n = served.get(sock) ?? 0;
        served.set(sock, n + 1);
        return n >= 1; // every connection answers its first request only
      }),
    );
    const r = await probe(target(s));
    assert.equal(r.ok, true, `${r.reason}: ${r.message}`);
    assert.deepEqual(
      s.requests.map((q) => `${q.method} ${q.path}`),
      ['HEAD /v2/team/app/manifests/v1', `GET /v2/team/app/manifests/${indexDigest}`, `GET /v2/team/app/manifests/${indexDigest}`],
    );
    assert.equal(s.accepts, 2);
  });

  test('the retry is sent once: a GET closed on the new connection too is the verdict', async () => {
    const s = await server(withIndex((req) => req.method === 'GET'));
    const r = await probe(target(s));
    expectReason(r, ['http_timeout'], 'closed twice');
    assert.deepEqual(
      s.requests.map((q) => `${q.method} ${q.path}`),
      ['HEAD /v2/team/app/manifests/v1', `GET /v2/team/app/manifests/${indexDigest}`, `GET /v2/team/app/manifests/${indexDigest}`],
    );
  });

  test("a connection's first request closed unanswered is not sent again", async () => {
    const s = await server(withIndex(() => true));
    const r = await probe(target(s));
    expectReason(r, ['http_timeout'], 'closed at once');
    assert.deepEqual(
      s.requests.map((q) => `${q.method} ${q.path}`),
      ['HEAD /v2/team/app/manifests/v1'],
    );
    assert.equal(s.accepts, 1);
  });
});

describe('hostile registries: secrets and terminal safety', () => {
  const echo: Handler = (req, sock) => {
    const auth = req.headers['authorization'] ?? '';
    const decoded = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString('utf8') : '';
    respondJson(sock, req, 429, errorBody('TOOMANYREQUESTS', `too many requests for ${auth} (${decoded}); retry later`), {
      'x-echo': auth,
    });
  };

  function assertNoSecret(text: string, secrets: string[], label: string): void {
    for (const s of secrets) assert.ok(!text.includes(s), `${label}: a credential the probe sent appears in the output`);
  }

  test('a registry echoing the Basic Authorization into TOOMANYREQUESTS: rate_limited, the credential never shown', async () => {
    const s = await server(basicAuth(registry({ manifest: echo })));
    const config = dockerConfig(s.port);
    const secrets = [BASIC.slice(6), PASSWORD];
    const r = await probe(target(s), { dockerConfig: config });
    expectReason(r, ['rate_limited'], 'echo basic');
    assertNoSecret(JSON.stringify(r), secrets, 'result');
    const { run } = await cliJson([target(s)], 'echo basic', { dockerConfig: config });
    assertNoSecret(run.stdout + run.stderr, secrets, 'CLI --json');
    const human = await cli([target(s)], { dockerConfig: config });
    assert.equal(human.code, 1, human.stderr);
    assertNoSecret(human.stdout + human.stderr, secrets, 'CLI human output');
  });

  test('a registry echoing the Bearer token into TOOMANYREQUESTS: the token never shown', async () => {
    const token = `tok-${'Z'.repeat(24)}-secret`;
    const s = await server((req, sock, srv) => {
      const realm = `https://${REG}:${srv.port}/token`;
      if (req.path === '/token') respondJson(sock, req, 200, { token, expires_in: 300 });
      else if (req.headers['authorization'] !== `Bearer ${token}`) {
        respondJson(sock, req, 401, errorBody('UNAUTHORIZED', 'authentication required'), {
          'www-authenticate': `Bearer realm="${realm}",service="hostile"`,
        });
      } else registry({ manifest: echo })(req, sock, srv);
    });
    const r = await probe(target(s));
    expectReason(r, ['rate_limited'], 'echo bearer');
    assertNoSecret(JSON.stringify(r), [token], 'result');
    const human = await cli([target(s)]);
    assertNoSecret(human.stdout + human.stderr, [token], 'CLI human output');
  });

  test('ANSI escapes in registry messages and tags never reach the terminal raw', async () => {
    const s = await server(
      registry({
        manifest: (req, sock) =>
          respondJson(sock, req, 404, errorBody('MANIFEST_UNKNOWN', '\x1b[2J\x1b[31mmanifest unknown\x1b]0;pwned\x07')),
        tags: (req, sock) => respondJson(sock, req, 200, { name: 'team/app', tags: ['v1\x1b[2J', 'v\x1b[31m1', 'v1\x07', 'v1\r\n'] }),
      }),
    );
    const r = await probe(target(s));
    expectReason(r, ['manifest_unknown'], 'ANSI');
    const human = await cli([target(s)]);
    assert.equal(human.code, 1, human.stderr);
    assert.ok(human.rssKiB < RSS_LIMIT_KIB, `RSS ${human.rssKiB} KiB`);
    assert.ok(
      !['\x1b', '\x07'].some((c) => (human.stdout + human.stderr).includes(c)),
      `raw control characters in human output: ${JSON.stringify(human.stdout.slice(0, 600))}`,
    );
  });
});

describe('hostile token services and challenges', () => {
  /** A bearer registry whose token service (same server, /token) answers with `tokenBody`. */
  function bearer(tokenBody: () => unknown, o: { rejectIssued?: boolean; realm?: (port: number) => string } = {}): Handler {
    const issued = new Set<string>();
    return (req, sock, srv) => {
      const realm = o.realm ? o.realm(srv.port) : `https://${REG}:${srv.port}/token`;
      if (req.path === '/token') {
        const body = tokenBody() as { token?: string };
        if (typeof body.token === 'string') issued.add(body.token);
        respondJson(sock, req, 200, body);
        return;
      }
      const auth = req.headers['authorization'] ?? '';
      const presented = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
      if (presented === undefined || o.rejectIssued || !issued.has(presented)) {
        const error = presented === undefined ? '' : ',error="invalid_token"';
        respondJson(sock, req, 401, errorBody('UNAUTHORIZED', 'authentication required'), {
          'www-authenticate': `Bearer realm="${realm}",service="hostile",scope="repository:team/app:pull"${error}`,
        });
        return;
      }
      registry()(req, sock, srv);
    };
  }

  test('expires_in 1e308 is capped: a day later the token is fetched again', async () => {
    let n = 0;
    const s = await server(bearer(() => ({ token: `t${++n}`, expires_in: 1e308 })));
    let now = Date.now();
    const cache = new TokenCache({ wallNow: () => now });
    assert.equal((await probe(target(s), { cache })).ok, true);
    assert.equal(s.count('GET', '/token'), 1);
    now += 2 * 24 * 3600 * 1000;
    assert.equal((await probe(target(s), { cache })).ok, true);
    assert.equal(s.count('GET', '/token'), 2, 'a token "valid" for 1e308 s must not be kept for days');
  });

  test('a token with a newline: token_error (not a timeout), and it is not cached', async () => {
    const s = await server(bearer(() => ({ token: 'abc\ndef', expires_in: 300 })));
    const cache = new TokenCache();
    expectReason(await probe(target(s), { cache }), ['token_error'], 'newline token');
    expectReason(await probe(target(s), { cache }), ['token_error'], 'newline token again');
    assert.equal(s.count('GET', '/token'), 2, 'an unusable token is never cached');
  });

  test('an unterminated quoted realm is rejected as containerd does: no token request', async () => {
    const listener = await server(undefined);
    const s = await server((req, sock) =>
      respondJson(
        sock,
        req,
        401,
        errorBody('UNAUTHORIZED', 'authentication required'),
        // The realm's quote never closes (service comes first, so no later quote closes it).
        { 'www-authenticate': `Bearer service="hostile",realm="https://127.0.0.1:${listener.port}/token` },
      ),
    );
    const r = await probe(target(s));
    expectReason(r, ['auth_required', 'token_error'], 'unterminated realm');
    assert.equal(listener.accepts, 0, 'the realm of a malformed challenge was contacted');
  });

  for (const scheme of ['ftp', 'file'] as const) {
    test(`a ${scheme}:// realm is refused before any connection: token_error in the auth stage`, async () => {
      const listener = await server(undefined, { tls: false });
      const realm = scheme === 'ftp' ? `ftp://127.0.0.1:${listener.port}/token` : 'file:///etc/passwd';
      const s = await server(bearer(() => ({ token: 't' }), { realm: () => realm }));
      const r = await probe(target(s));
      expectReason(r, ['token_error'], `${scheme} realm`);
      assert.equal(listener.accepts, 0, `${scheme}:// realm: a connection was attempted`);
      assert.equal(s.count('GET', '/token'), 0);
    });
  }

  test('401 invalid_token for an issued token: token_error anonymously, auth_rejected with credentials', async () => {
    // access_token too: with credentials the token comes from containerd's OAuth POST, whose answer must carry it.
    const s = await server(
      bearer(() => ({ token: 'issued-but-refused', access_token: 'issued-but-refused', expires_in: 300 }), { rejectIssued: true }),
    );
    expectReason(await probe(target(s)), ['token_error'], 'invalid_token anonymous');
    expectReason(await probe(target(s), { dockerConfig: dockerConfig(s.port) }), ['auth_rejected'], 'invalid_token with credentials');
  });
});
