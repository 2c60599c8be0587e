/**
 * explain on whole pastes: `kubectl describe pod` text, `kubectl get events
 * -o json` (JSON-escaped quotes), several events at once (the most specific
 * failure decides), and the excerpt of the user's own line that explain
 * shows back (trimmed, credentials masked, control characters escaped).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { REASONS } from '../../src/diagnosis/catalog.js';
import { KUBELET_ONLY_HINT, explainText } from '../../src/diagnosis/explain.js';
import { EXCERPT_MAX, candidateLines, excerpt } from '../../src/diagnosis/explain-input.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/explain/${name}`, import.meta.url), 'utf8');
const REF = 'registry.lab.test/team/app:v1';
const NOT_FOUND = `Failed to pull image "${REF}": rpc error: code = NotFound desc = failed to pull and unpack image "${REF}": failed to resolve reference "${REF}": ${REF}: not found`;

test('kubectl describe pod: the Failed event decides; the excerpt is its Message column', () => {
  const e = explainText(fixture('describe-pod-not-found.txt'));
  assert.equal(e.reason, 'manifest_unknown');
  assert.equal(e.cause, 'missing');
  assert.equal(e.hint, REASONS.manifest_unknown.hint);
  assert.equal(e.excerpt, NOT_FOUND);
});

test('kubectl describe pod with only back-off events: no reason, the hint says where the reason is', () => {
  const e = explainText(fixture('describe-pod-backoff-only.txt'));
  assert.deepEqual([e.stage, e.reason, e.cause], [null, null, null]);
  assert.equal(e.hint, KUBELET_ONLY_HINT);
  assert.equal(e.excerpt, 'Reason:       ImagePullBackOff', 'the first kubelet-only line (the container state) is shown');
});

test('kubectl describe pod of an InvalidImageName pod → invalid_reference', () => {
  const e = explainText(fixture('describe-pod-invalid-name.txt'));
  assert.equal(e.reason, 'invalid_reference');
  assert.equal(e.cause, 'name');
});

test('kubectl get events -o json: messages decoded (escaped quotes), the most specific failure wins over a bare deadline', () => {
  const e = explainText(fixture('events-not-found.json'));
  assert.equal(e.reason, 'manifest_unknown');
  assert.equal(e.excerpt, NOT_FOUND, 'the decoded message, with real quotes');
});

test('kubectl get events -o json: pull policy Never is the node, not the registry', () => {
  const e = explainText(fixture('events-never-pull.json'));
  assert.equal(e.reason, 'never_pull');
  assert.equal(e.cause, 'node');
  assert.equal(e.stage, 'runtime');
  assert.equal(e.excerpt, `Container image "${REF}" is not present with pull policy of Never`);
});

test('order of events does not matter: the most specific failure decides', () => {
  const deadline = `Failed to pull image "${REF}": rpc error: code = DeadlineExceeded desc = context deadline exceeded`;
  const nx = `Failed to pull image "${REF}": rpc error: code = Unknown desc = failed to pull and unpack image "${REF}": failed to resolve reference "${REF}": failed to do request: Head "https://registry.lab.test/v2/team/app/manifests/v1": dial tcp: lookup registry.lab.test on 10.96.0.10:53: no such host`;
  for (const msgs of [
    [deadline, nx],
    [nx, deadline],
  ]) {
    const e = explainText(JSON.stringify({ kind: 'List', items: msgs.map((message) => ({ kind: 'Event', reason: 'Failed', message })) }));
    assert.equal(e.reason, 'dns_nxdomain');
    assert.equal(e.excerpt, nx);
  }
});

test('a single event object, and a bare JSON string, are decoded too', () => {
  assert.equal(explainText(JSON.stringify({ message: NOT_FOUND })).reason, 'manifest_unknown');
  assert.equal(explainText(JSON.stringify(NOT_FOUND)).reason, 'manifest_unknown');
});

test('JSON that does not parse (cut off) still reads its escaped quotes', () => {
  const text = fixture('events-not-found.json');
  const cut = text.slice(0, text.indexOf('"message": "Error: ErrImagePull"'));
  assert.equal(explainText(cut).reason, 'manifest_unknown');
});

test('deeply nested or odd JSON neither crashes nor matches', () => {
  for (const text of ['['.repeat(200_000) + ']'.repeat(200_000), '['.repeat(200_000), '{"a":', '"', '[1,2,null,true,{}]']) {
    assert.equal(explainText(text).reason, null);
  }
});

test('candidate lines: CRLF and blank lines; JSON strings split into lines', () => {
  assert.deepEqual(candidateLines('a\r\n\r\nb\rc\n'), ['a', 'b', 'c']);
  assert.deepEqual(candidateLines('{"message":"x\\ny","n":1}'), ['x', 'y']);
});

test('excerpt: long lines are cut around the part that decided', () => {
  const line = `${'x'.repeat(5000)} dial tcp 10.0.0.10:443: connect: connection refused ${'y'.repeat(5000)}`;
  const e = explainText(line);
  assert.equal(e.reason, 'tcp_refused');
  assert.ok(e.excerpt !== null && e.excerpt.length <= EXCERPT_MAX + 2, String(e.excerpt?.length));
  assert.match(e.excerpt, /^….*connection refused.*…$/);
});

test('excerpt: control characters and bidi overrides escaped, credentials masked', () => {
  const line =
    'dial tcp 10.0.0.10:443: connect: connection refused \u001b[31mred\u001b[0m\u202e\u0007 Authorization: Basic dXNlcjpwYXNzd29yZA== https://bob:hunter22@proxy.lab.test:3128/';
  const shown = explainText(line).excerpt ?? '';
  assert.ok(!/[\p{Cc}\u202e]/u.test(shown), 'no raw control characters');
  assert.ok(shown.includes('\\u001b[31m') && shown.includes('\\u202e') && shown.includes('\\u0007'), shown);
  assert.ok(!shown.includes('dXNlcjpwYXNzd29yZA==') && !shown.includes('hunter22'), shown);
  assert.ok(shown.includes('Basic [redacted]') && shown.includes('//[redacted]@proxy.lab.test'));
});

test('excerpt: a describe row whose match is in the Reason column keeps the whole row', () => {
  const row = '  Warning  ErrImageNeverPull  5s (x3 over 20s)  kubelet  Container image "x" is not present with pull policy of Never';
  assert.equal(excerpt(row, 11, 28), row.trim());
  const e = explainText(row);
  assert.equal(e.reason, 'never_pull');
});
