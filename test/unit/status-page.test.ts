import { test } from 'node:test';
import assert from 'node:assert/strict';
import { esc, renderStatusPage } from '../../src/agent/status-page.js';
import { buildPageModel } from '../../src/agent/status-page-model.js';
import { StatusStore } from '../../src/agent/status-store.js';
import { reasonInfo } from '../../src/diagnosis/catalog.js';
import { chainResult, manyStore, SCENE, sceneStore } from './status-page-fixture.js';

const G = 'ghcr.io/acme/api:1';

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

test('status store: a failure that turns into another is a change from one to the other, not "cleared"', () => {
  let now = 1_000;
  const store = new StatusStore({ wallNow: () => now });
  store.setTargets([G, 'quay.io']);
  store.update('quay.io', chainResult('quay.io', 'quay.io'));
  store.update(G, chainResult(G, 'ghcr.io', { fail: 'tcp_refused' }));
  now = 2_000;
  store.update(G, chainResult(G, 'ghcr.io', { fail: 'tcp_refused' }));
  now = 5_000;
  store.update(G, chainResult(G, 'ghcr.io', { fail: 'tls_expired', message: 'certificate has expired' }));

  const snap = store.snapshot();
  assert.deepEqual(
    snap.recentChanges,
    [
      {
        target: G,
        at: 5_000,
        fromSince: 1_000,
        from: { state: 'failing', stage: 'tcp', reason: 'tcp_refused', message: 'connection refused' },
        to: { state: 'failing', stage: 'tls', reason: 'tls_expired', message: 'certificate has expired' },
      },
      {
        target: G,
        at: 1_000,
        fromSince: null,
        from: null,
        to: { state: 'failing', stage: 'tcp', reason: 'tcp_refused', message: 'connection refused' },
      },
    ],
    'a first ok result is no change; a first failing one is',
  );
  const ended = snap.recentFailures.find((f) => f.reason === 'tcp_refused');
  assert.ok(ended);
  assert.equal(ended.clearedAt, 5_000);
  assert.deepEqual(ended.changedTo, { state: 'failing', stage: 'tls', reason: 'tls_expired', message: 'certificate has expired' });
  assert.equal(snap.recentFailures.find((f) => f.reason === 'tls_expired')?.changedTo, null, 'still going on');

  const html = renderStatusPage(snap);
  assert.match(
    html,
    /✗ tcp\/tcp_refused<\/span> <span class="arrow">→<\/span> <span class="v failing"[^>]*>✗ tls\/tls_expired<\/span> <span class="muted">after 4s/,
  );
  assert.doesNotMatch(html, /cleared/i);
});

test('status store: recovery, removal and the bound on kept changes', () => {
  let now = 0;
  const store = new StatusStore({ wallNow: () => now, maxChanges: 3 });
  store.setTargets([G]);
  store.update(G, chainResult(G, 'ghcr.io', { fail: 'auth_rejected' }));
  now = 60_000;
  store.update(G, chainResult(G, 'ghcr.io'));
  now = 120_000;
  store.update(G, chainResult(G, 'ghcr.io', { degraded: 'dns' }));
  assert.equal(store.snapshot().recentChanges?.length, 2, 'ok to degraded keeps the verdict: no change');
  store.setTargets([]);
  const snap = store.snapshot();
  assert.deepEqual(
    snap.recentChanges?.map((c) => [c.from?.state ?? null, c.to.state, c.at]),
    [
      ['ok', 'removed', 120_000],
      ['failing', 'ok', 60_000],
      [null, 'failing', 0],
    ],
  );
  assert.deepEqual(snap.recentFailures[0]?.changedTo, { state: 'ok', degraded: false });
  now = 180_000;
  store.setTargets([G]);
  store.update(G, chainResult(G, 'ghcr.io', { fail: 'dns_nxdomain' }));
  assert.deepEqual(
    store.snapshot().recentChanges?.map((c) => c.to.state),
    ['failing', 'removed', 'ok'],
    'oldest dropped first',
  );
  assert.match(renderStatusPage(snap), /removed from the configuration/);
});

test('esc: markup escaped; terminal colours dropped; other control and bidi characters shown as symbols', () => {
  assert.equal(esc(`<a href="x" title='y'>&`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;');
  assert.equal(esc('\u001b[1;31mred\u001b[0m'), 'red');
  assert.equal(esc('a\u001b]8;;http://x\u0007b'), 'a\u241b]8;;http://x\u2407b');
  assert.equal(esc('nul\u0000 del\u007f c1\u009b rlo\u202egnp.exe'), 'nul\u2400 del\u2421 c1\ufffd rlo\ufffdgnp.exe');
  assert.equal(esc('tab\tnewline\n'), 'tab\tnewline\n', 'tab and newline are text');
});

test('status page: banner, failing registries first, the fix once per registry, chips with seconds', () => {
  const { store } = sceneStore();
  const html = renderStatusPage(store.snapshot());
  assert.match(
    html,
    /<span class="pill failing">4 failing<\/span><span class="pill degraded">1 degraded<\/span><span class="pill pending">1 pending<\/span><span class="pill ok">5 ok<\/span>/,
  );
  assert.match(
    html,
    /<dt>node<\/dt><dd>ip-10-0-3-17\.eu-west-1\.compute\.internal<\/dd>.*<dt>subnet<\/dt><dd>subnet-0a1b2c3d4e5f67890<\/dd>.*<dt>zone<\/dt><dd>eu-west-1b<\/dd>/s,
  );
  assert.match(html, /failing since <time datetime="2026-11-29T09:07:00Z"[^>]*>1m ago<\/time>/, 'since the oldest ongoing failure began');
  const sections = [...html.matchAll(/<(?:section|details) class="reg (\w+)" data-registry="([^"]+)"/g)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(sections, [
    `failing ${SCENE.harbor}`,
    'failing ghcr.io',
    `degraded ${SCENE.ecr}`,
    'pending registry.gitlab.com',
    'ok registry.k8s.io',
    'ok docker.io',
    'ok quay.io',
  ]);
  for (const reason of ['dns_nxdomain', 'tls_expired'] as const) {
    assert.equal(count(html, esc(reasonInfo(reason).hint)), 1, `fix for ${reason} once`);
  }
  assert.ok(!html.includes('\u001b'), 'no raw ESC');
  assert.ok(!/<img/i.test(html), 'registry text stays text');
  assert.match(
    html,
    /<span class="chip failing" title="tls: failed in 0\.038s at ghcr\.io:443">tls ✗<\/span><span class="chip" title="http: not reached">http ·<\/span>/,
  );
  assert.match(html, /<span class="chip degraded" title="dns: degraded in 0\.004s at public\.ecr\.aws">dns !<\/span>/);
  assert.equal(count(html, "Problems reading this node's files"), 1);
});

test('status page: two different problems in one registry name their reason on each row; the same fix twice is shown once', () => {
  const store = new StatusStore({ wallNow: () => 0 });
  const a = 'ghcr.io/acme/a:1';
  const b = 'ghcr.io/acme/b:1';
  const c = 'ghcr.io/acme/c:1';
  store.setTargets([a, b, c]);
  store.update(a, chainResult(a, 'ghcr.io', { fail: 'manifest_unknown', message: 'manifest unknown: a:1' }));
  store.update(b, chainResult(b, 'ghcr.io', { fail: 'manifest_unknown', message: 'manifest unknown: b:1' }));
  store.update(c, chainResult(c, 'ghcr.io', { fail: 'access_denied' }));
  const html = renderStatusPage(store.snapshot());
  assert.equal(count(html, esc(reasonInfo('manifest_unknown').hint)), 1);
  assert.equal(count(html, esc(reasonInfo('access_denied').hint)), 1);
  assert.match(
    html,
    /<div class="sub"><span class="why">manifest\/manifest_unknown<\/span> · manifest unknown: b:1<\/div>/,
    'own message when it differs',
  );
  assert.match(html, /<span class="tally">3 of 3 targets failing<\/span>/);
});

test('status page: no targets, and 200 targets', () => {
  const empty = renderStatusPage(new StatusStore().snapshot());
  assert.match(empty, /<p class="headline">No targets configured<\/p>/);
  assert.match(empty, /No changes since the agent started/);
  assert.doesNotMatch(empty, /class="reg/);
  assert.doesNotMatch(empty, /class="pill/, 'no counts of nothing');

  let now = Date.parse('2026-11-29T10:00:00Z');
  const healthy = new StatusStore({ wallNow: () => now });
  healthy.setTargets([G, 'quay.io']);
  healthy.update(G, chainResult(G, 'ghcr.io', { fail: 'tcp_timeout' }));
  healthy.update('quay.io', chainResult('quay.io', 'quay.io'));
  now += 120_000;
  healthy.update(G, chainResult(G, 'ghcr.io'));
  now += 60_000;
  const ok = renderStatusPage(healthy.snapshot());
  assert.match(ok, /<header class="banner ok" id="summary">\n<p class="headline">✓ All registries reachable<\/p>/);
  assert.match(ok, /<span class="pill">0 failing<\/span><span class="pill ok">2 ok<\/span>/);
  assert.match(ok, /ok since <time datetime="2026-11-29T10:02:00Z"[^>]*>1m ago<\/time>/, 'since the last change');

  const many = manyStore(200).snapshot();
  const model = buildPageModel(many);
  assert.equal(model.total, 200);
  assert.equal(model.registries.length, 40);
  assert.deepEqual(model.registries.map((r) => r.state).lastIndexOf('failing'), 5, 'the six registries with a failure first');
  assert.ok(model.registries.slice(0, 6).every((r) => r.state === 'failing'));
  const html = renderStatusPage(many);
  assert.equal(count(html, '<li class="t '), 200);
  assert.equal(count(html, '<details class="reg ok"'), 34);
  assert.equal(
    count(html, '<details class="reg ok" data-registry="registry-1.mirror.internal.example.org">'),
    1,
    'healthy registries folded at 200 targets',
  );
  assert.match(
    renderStatusPage(sceneStore().store.snapshot()),
    /<details class="reg ok" data-registry="quay\.io" open>/,
    'and open with a few',
  );
  assert.ok(html.length < 400_000, `page stays small: ${html.length} bytes`);
});
