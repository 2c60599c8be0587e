import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { allowedIndex, createServer, probeTimeoutMs, resolveProbeRequest, type AllowedTarget } from '../../src/agent/server.js';
import { StatusStore } from '../../src/agent/status-store.js';
import { renderStatusPage } from '../../src/agent/status-page.js';
import { causeOf, reasonInfo, type Reason } from '../../src/diagnosis/catalog.js';
import { silentLog, type ProbeResult } from '../../src/model/types.js';

const IMAGE = 'registry.lab.test/app/api:v1';
const R = 'registry.lab.test';

function okResult(target: string): ProbeResult {
  return {
    target,
    image: target.includes('/') ? target : null,
    registry: R,
    ok: true,
    stage: null,
    reason: null,
    cause: null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0.02,
    steps: [
      { stage: 'reference', ok: true, seconds: 0.00001 },
      { stage: 'dns', ok: true, seconds: 0.001, host: R },
      { stage: 'tcp', ok: true, seconds: 0.002, host: `${R}:443` },
    ],
  };
}

function failResult(target: string, reason: Reason, message?: string): ProbeResult {
  const info = reasonInfo(reason);
  return {
    target,
    image: target,
    registry: R,
    ok: false,
    stage: info.stage ?? 'http',
    reason,
    cause: causeOf(reason),
    host: `${R}:443`,
    message: message ?? info.message,
    hint: info.hint,
    degraded: false,
    seconds: 0.01,
    steps: [
      { stage: 'reference', ok: true, seconds: 0.00001 },
      { stage: 'dns', ok: true, seconds: 0.001, host: R },
      { stage: info.stage ?? 'http', ok: false, seconds: 0.002, host: `${R}:443`, reason, message: message ?? info.message },
    ],
  };
}

const ALLOWED: AllowedTarget[] = [
  { target: IMAGE, timeoutMs: 10_000 },
  { target: 'nginx', timeoutMs: 8_000 },
  { target: 'ghcr.io', timeoutMs: 4_000 },
];

interface Harness {
  base: string;
  calls: Array<{ target: string; timeoutMs: number }>;
  metrics: AgentMetrics;
  store: StatusStore;
  setReady(v: boolean): void;
  close(): Promise<void>;
}

async function start(opts: { delayMs?: number; probeCacheMs?: number; result?: (t: string) => ProbeResult } = {}): Promise<Harness> {
  const calls: Harness['calls'] = [];
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const store = new StatusStore();
  let ready = false;
  const server = createServer({
    metrics,
    store,
    log: silentLog,
    allowed: () => ALLOWED,
    effectiveConfig: () => ({ interval: '60s', targets: ALLOWED.map((a) => a.target) }),
    ready: () => ready,
    probeCacheMs: opts.probeCacheMs ?? 5000,
    probeNow: async (target, timeoutMs) => {
      calls.push({ target, timeoutMs });
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      return (opts.result ?? ((t: string) => failResult(t, 'tcp_refused')))(target);
    },
  });
  const { port } = await server.listen('127.0.0.1', 0);
  return {
    base: `http://127.0.0.1:${port}`,
    calls,
    metrics,
    store,
    setReady: (v) => (ready = v),
    close: () => server.close(),
  };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

test('/healthz, /readyz flips, 404 and 405', async () => {
  const h = await start();
  try {
    assert.equal((await get(`${h.base}/healthz`)).status, 200);
    assert.equal((await get(`${h.base}/readyz`)).status, 503);
    h.setReady(true);
    assert.equal((await get(`${h.base}/readyz`)).status, 200);
    assert.equal((await get(`${h.base}/nope`)).status, 404);
    const post = await fetch(`${h.base}/metrics`, { method: 'POST' });
    await post.text();
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  } finally {
    await h.close();
  }
});

test('/metrics serves the cached series in the text exposition format', async () => {
  const h = await start();
  try {
    h.metrics.record(IMAGE, failResult(IMAGE, 'tcp_refused'), 1000);
    const res = await get(`${h.base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    assert.ok(
      res.body.includes(`pullprobe_failure_info{registry="${R}",target="${IMAGE}",stage="tcp",reason="tcp_refused",cause="network"} 1`),
    );
  } finally {
    await h.close();
  }
});

test('/probe rejects bad parameters with 400 and unconfigured targets with 403, without probing', async () => {
  const h = await start();
  try {
    const cases: Array<[string, number]> = [
      ['', 400],
      [`?registry=${R}&image=${IMAGE}`, 400],
      [`?target=${R}&registry=${R}`, 400],
      [`?target=${R}&image=${IMAGE}`, 400],
      ['?target=', 400],
      ['?target=UPPER/Case', 400],
      [`?target=${R}&target=ghcr.io`, 400],
      [`?registry=${R}&modul=http_2xx`, 400],
      ['?target=evil.example.com&module=http_2xx', 403],
      [`?registry=${R}&registry=ghcr.io`, 400],
      ['?registry=', 400],
      [`?registry=${R}&format=xml`, 400],
      [`?registry=${R}&debug=yes`, 400],
      [`?registry=${R}&debug=true&format=json`, 400],
      ['?registry=not/a/host', 400],
      ['?image=UPPER/Case', 400],
      ['?registry=evil.example.com', 403],
      ['?registry=127.0.0.1:22', 403],
      ['?image=registry.lab.test/app/other:v1', 403],
      ['?image=registry.lab.test/app/api:v2', 403],
    ];
    for (const [query, status] of cases) {
      const res = await get(`${h.base}/probe${query}`);
      assert.equal(res.status, status, `GET /probe${query}`);
    }
    const denied = await get(`${h.base}/probe?registry=evil.example.com`);
    assert.ok(denied.body.includes('evil.example.com'), 'the 403 names the refused value');
    const asJson = await get(`${h.base}/probe?registry=evil.example.com&format=json`);
    assert.equal(asJson.status, 403);
    assert.equal(typeof (JSON.parse(asJson.body) as { error: unknown }).error, 'string');
    assert.equal(h.calls.length, 0);
  } finally {
    await h.close();
  }
});

test('/probe answers a configured target in normalised form, and the registry of an image target', async () => {
  const h = await start({ probeCacheMs: 0, result: (t) => okResult(t) });
  try {
    const dockerHub = await get(`${h.base}/probe?image=docker.io/library/nginx:latest`);
    assert.equal(dockerHub.status, 200);
    assert.match(dockerHub.type, /^text\/plain; version=0\.0\.4/);
    assert.match(dockerHub.body, /^probe_success 1$/m);
    const registry = await get(`${h.base}/probe?registry=${R.toUpperCase()}`);
    assert.equal(registry.status, 200);
    const legacyHub = await get(`${h.base}/probe?registry=index.docker.io`);
    assert.equal(legacyHub.status, 200);
    assert.deepEqual(
      h.calls.map((c) => c.target),
      ['nginx', R, 'docker.io'],
    );
    assert.deepEqual(
      h.calls.map((c) => c.timeoutMs),
      [8_000, 10_000, 8_000],
    );
  } finally {
    await h.close();
  }
});

test("/probe takes blackbox's target= (a registry host or an image reference) and ignores module=", async () => {
  const h = await start({ probeCacheMs: 0, result: (t) => okResult(t) });
  try {
    const registry = await get(`${h.base}/probe?target=${R}&module=http_2xx`);
    assert.equal(registry.status, 200, registry.body);
    assert.match(registry.body, /^probe_success 1$/m);
    const image = await get(`${h.base}/probe?module=pullprobe&target=${encodeURIComponent(IMAGE)}`);
    assert.equal(image.status, 200, image.body);
    const hub = await get(`${h.base}/probe?target=nginx&format=json`);
    assert.equal(hub.status, 200, hub.body);
    assert.deepEqual(
      h.calls.map((c) => c.target),
      [R, IMAGE, 'nginx'],
    );
  } finally {
    await h.close();
  }
  // The pure resolver: target= names the same key as registry=/image=, so they share a flight.
  for (const [target, same] of [
    [R, `registry=${R}`],
    [IMAGE, `image=${IMAGE}`],
    ['ghcr.io', 'registry=ghcr.io'],
  ] as const) {
    const viaTarget = resolveProbeRequest(new URLSearchParams({ target, module: 'http_2xx' }), ALLOWED);
    const direct = resolveProbeRequest(new URLSearchParams(same), ALLOWED);
    assert.deepEqual(viaTarget, direct, target);
    assert.equal(viaTarget.ok, true);
  }
});

test('/probe format=json returns the ProbeResult; debug=true the trace, metrics and config', async () => {
  const h = await start({ probeCacheMs: 0 });
  try {
    const json = await get(`${h.base}/probe?image=${IMAGE}&format=json`);
    assert.equal(json.status, 200);
    assert.match(json.type, /^application\/json/);
    assert.deepEqual(JSON.parse(json.body), failResult(IMAGE, 'tcp_refused'));

    const debug = await get(`${h.base}/probe?image=${IMAGE}&debug=true`);
    assert.equal(debug.status, 200);
    assert.match(debug.type, /^text\/plain/);
    const trace = debug.body.indexOf('✗ tcp');
    const metrics = debug.body.indexOf('\nprobe_success 0\n');
    const config = debug.body.indexOf('"interval": "60s"');
    assert.ok(trace > 0 && metrics > trace && config > metrics, debug.body);
    assert.ok(debug.body.includes('tcp/tcp_refused'));
  } finally {
    await h.close();
  }
});

test('20 concurrent /probe requests for one target run one probe; a burst right after hits the cache', async () => {
  const h = await start({ delayMs: 50 });
  try {
    const urls = Array.from({ length: 20 }, (_, i) =>
      i % 2 ? `${h.base}/probe?image=${IMAGE}` : `${h.base}/probe?image=${IMAGE}&format=json`,
    );
    const answers = await Promise.all(urls.map((u) => get(u)));
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(h.calls.length, 1);
    await get(`${h.base}/probe?image=${IMAGE}`);
    assert.equal(h.calls.length, 1);
    await get(`${h.base}/probe?registry=${R}`);
    assert.equal(h.calls.length, 2, 'another target is probed separately');
  } finally {
    await h.close();
  }
});

test('X-Prometheus-Scrape-Timeout-Seconds shortens the probe deadline', async () => {
  const h = await start({ probeCacheMs: 0 });
  try {
    await get(`${h.base}/probe?image=${IMAGE}`, { 'X-Prometheus-Scrape-Timeout-Seconds': '3' });
    await get(`${h.base}/probe?image=${IMAGE}`, { 'X-Prometheus-Scrape-Timeout-Seconds': '30' });
    await get(`${h.base}/probe?image=${IMAGE}`, { 'X-Prometheus-Scrape-Timeout-Seconds': 'soon' });
    await get(`${h.base}/probe?image=${IMAGE}`);
    assert.deepEqual(
      h.calls.map((c) => c.timeoutMs),
      [2_500, 10_000, 10_000, 10_000],
    );
  } finally {
    await h.close();
  }
  assert.equal(probeTimeoutMs(10_000, '0.4'), 200);
  assert.equal(probeTimeoutMs(10_000, '-1'), 10_000);
  assert.equal(probeTimeoutMs(10_000, ''), 10_000);
});

test('a probe that throws answers 500 and is not cached', async () => {
  let fail = true;
  const h = await start({
    result: (t) => {
      if (fail) throw new Error('boom');
      return okResult(t);
    },
  });
  try {
    assert.equal((await get(`${h.base}/probe?registry=ghcr.io`)).status, 500);
    fail = false;
    const again = await get(`${h.base}/probe?registry=ghcr.io`);
    assert.equal(again.status, 200);
    assert.equal(h.calls.length, 2);
  } finally {
    await h.close();
  }
});

test('resolveProbeRequest keys image and registry requests apart', () => {
  const img = resolveProbeRequest(new URLSearchParams(`image=${IMAGE}`), ALLOWED);
  const reg = resolveProbeRequest(new URLSearchParams(`registry=${R}`), ALLOWED);
  assert.ok(img.ok && reg.ok);
  assert.notEqual(img.key, reg.key);
  const both = resolveProbeRequest(new URLSearchParams('registry=ghcr.io'), [
    { target: 'ghcr.io/a/b:1', timeoutMs: 9_000 },
    { target: 'ghcr.io', timeoutMs: 2_000 },
    { target: 'ghcr.io/c/d:1', timeoutMs: 7_000 },
  ]);
  assert.ok(both.ok);
  assert.equal(both.timeoutMs, 2_000, 'a registry listed as a target keeps its own timeout');
});

test('status page lists targets, escapes text, and keeps a failure after it clears', async () => {
  let now = Date.parse('2025-01-01T00:00:00Z');
  const store = new StatusStore({ wallNow: () => now });
  store.setTargets([IMAGE, 'ghcr.io']);
  store.update(IMAGE, failResult(IMAGE, 'manifest_unknown', '<script>alert(1)</script>'));
  now += 60_000;
  store.update(IMAGE, okResult(IMAGE));
  const html = renderStatusPage(store.snapshot());
  assert.ok(html.includes(IMAGE));
  assert.ok(html.includes('<meta http-equiv="refresh" content="10">'));
  assert.ok(!html.includes('<script>'), 'no raw script tag');
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the message is shown escaped');
  assert.ok(html.includes('manifest/manifest_unknown'), 'the cleared failure is still listed');
  assert.ok(html.includes('pending'), 'ghcr.io has no result yet');
  assert.match(
    html,
    /<span class="chip ok" title="tcp: ok in 0\.002s at registry\.lab\.test:443">tcp ✓<\/span>/,
    'stage chip with its seconds in the title',
  );
  assert.match(
    html,
    /manifest\/manifest_unknown<\/span> <span class="arrow">→<\/span> <span class="v ok">✓ ok/,
    'the change says what it changed to',
  );

  const h = await start();
  try {
    h.store.setTargets([IMAGE]);
    h.store.update(IMAGE, failResult(IMAGE, 'tcp_refused', 'a <b>bold</b> claim'));
    const page = await get(`${h.base}/`);
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.body, /<li class="t failing"/);
    assert.ok(page.body.includes('a &lt;b&gt;bold&lt;/b&gt; claim'));
  } finally {
    await h.close();
  }
});

test('status store: since moves only on a verdict change; failures are episodes in a bounded ring', () => {
  let now = 1_000;
  const store = new StatusStore({ wallNow: () => now, maxFailures: 2 });
  store.update(IMAGE, failResult(IMAGE, 'tcp_refused'));
  now = 2_000;
  store.update(IMAGE, failResult(IMAGE, 'tcp_refused'));
  assert.equal(store.get(IMAGE)?.since, 1_000);
  let snap = store.snapshot();
  assert.equal(snap.recentFailures.length, 1);
  const [failure] = snap.recentFailures;
  assert.ok(failure, 'a recent failure');
  assert.equal(failure.count, 2);
  assert.equal(failure.clearedAt, null);
  now = 3_000;
  assert.deepEqual(store.update(IMAGE, failResult(IMAGE, 'tcp_timeout')), { changed: true, recorded: true });
  assert.equal(store.get(IMAGE)?.since, 3_000);
  now = 4_000;
  store.update(IMAGE, okResult(IMAGE));
  now = 5_000;
  store.update('ghcr.io', failResult('ghcr.io', 'auth_required'));
  snap = store.snapshot();
  assert.deepEqual(
    snap.recentFailures.map((f) => [f.target, f.reason, f.clearedAt]),
    [
      ['ghcr.io', 'auth_required', null],
      [IMAGE, 'tcp_timeout', 4_000],
    ],
  );
});

test('/probe finds its target in an index built once per list of configured targets, not per request', () => {
  const allowed = [
    { target: 'reg.example', timeoutMs: 1000 },
    { target: 'reg.example/team/app:v1', timeoutMs: 2000 },
  ];
  assert.equal(allowedIndex(allowed), allowedIndex(allowed), 'the same list reuses its index');
  assert.notEqual(allowedIndex(allowed), allowedIndex([...allowed]), 'a new list (a reload) gets its own');
  assert.equal(allowedIndex(allowed).byImage.get('reg.example/team/app:v1')?.timeoutMs, 2000);
});
