import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MAX_CONTAINERS, jsonShape, parseBoundedJson } from '../../src/net/bounded-json.js';

const MODULE = fileURLToPath(new URL('../../src/net/bounded-json.ts', import.meta.url));
/** containerd's MaxManifestSize, as src/probe/stages/manifest.ts has it. */
const MAX_MANIFEST = 4 * 1048 * 1048;
const BOUNDS = { maxLength: MAX_MANIFEST, maxDepth: 8 };

/**
 * Builds a document with `build` (source of a function returning the text) and parses it in a child
 * Node capped at 48 MB of heap, below the DaemonSet's 64: the child prints the verdict as JSON.
 */
function parseInCappedNode(build: string): { status: number | null; out: string; err: string } {
  const script = `
    import { parseBoundedJson } from ${JSON.stringify(MODULE)};
    const text = (${build})();
    const r = parseBoundedJson(text, ${JSON.stringify(BOUNDS)});
    process.stdout.write(JSON.stringify({ length: text.length, ok: r.ok, problem: r.ok ? undefined : r.problem }));`;
  const r = spawnSync(process.execPath, ['--max-old-space-size=48', '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return { status: r.status, out: r.stdout, err: r.stderr.slice(0, 400) };
}

interface Verdict {
  length: number;
  ok: boolean;
  problem?: string;
}

/** A plausible image index of `n` manifests: platforms, Windows os.version/os.features, attestation annotations. */
function realisticIndex(n: number): string {
  const archs = [['amd64'], ['arm64', 'v8'], ['arm', 'v7'], ['ppc64le'], ['s390x'], ['386'], ['riscv64']] as const;
  const manifests = [];
  for (let i = 0; i < n; i++) {
    const [architecture, variant] = archs[i % archs.length] ?? ['amd64'];
    const digest = `sha256:${createHash('sha256').update(String(i)).digest('hex')}`;
    const windows = i % 5 === 0;
    manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest,
      size: 1000 + i,
      platform: {
        architecture,
        os: windows ? 'windows' : 'linux',
        ...(variant === undefined ? {} : { variant }),
        ...(windows ? { 'os.version': '10.0.17763.1234', 'os.features': ['win32k'] } : {}),
      },
      ...(i % 2 === 1
        ? { annotations: { 'vnd.docker.reference.digest': digest, 'vnd.docker.reference.type': 'attestation-manifest' } }
        : {}),
    });
  }
  return JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests });
}

test('4 MB of empty objects (1.4 million) is a named problem in a 48 MB heap, not an out-of-memory crash', () => {
  const r = parseInCappedNode(`() => '{"manifests":[' + '{},'.repeat(1_400_000) + '{}]}'`);
  assert.equal(r.status, 0, `child exited ${r.status}: ${r.err}`);
  const verdict = JSON.parse(r.out) as Verdict;
  assert.ok(verdict.length > 4_000_000 && verdict.length <= MAX_MANIFEST, `document of ${verdict.length} characters`);
  assert.equal(verdict.ok, false);
  assert.equal(verdict.problem, `JSON with more than ${DEFAULT_MAX_CONTAINERS} objects and arrays`);
});

test('the costliest document under the limit (one-member objects, each with a key of its own) parses in a 48 MB heap', () => {
  const objects = DEFAULT_MAX_CONTAINERS - 2;
  const r = parseInCappedNode(
    `() => { const p = []; for (let i = 0; i < ${objects}; i++) p.push('{"' + i.toString(36) + '":1.5}'); return '{"manifests":[' + p.join(',') + ']}'; }`,
  );
  assert.equal(r.status, 0, `child exited ${r.status}: ${r.err}`);
  assert.equal((JSON.parse(r.out) as Verdict).ok, true);
});

test('a realistic index of 10,000 manifests (3 MB) parses, with room under the limit', () => {
  const text = realisticIndex(10_000);
  const shape = jsonShape(text, 8, Number.POSITIVE_INFINITY);
  assert.ok(shape.containers * 5 < DEFAULT_MAX_CONTAINERS, `${shape.containers} objects and arrays`);
  const r = parseBoundedJson(text, BOUNDS);
  const manifests = r.ok ? r.value['manifests'] : undefined;
  assert.ok(Array.isArray(manifests), r.ok ? 'no manifests' : r.problem);
  assert.equal(manifests.length, 10_000);
});

test('a full 4 MB realistic index still parses', () => {
  const perManifest = realisticIndex(10_000).length / 10_000;
  let n = Math.floor(MAX_MANIFEST / perManifest);
  let text = realisticIndex(n);
  while (text.length > MAX_MANIFEST) text = realisticIndex((n -= 10));
  assert.ok(text.length > MAX_MANIFEST - 5_000, `${text.length}`);
  assert.ok(text.length <= MAX_MANIFEST, `${text.length}`);
  assert.equal(parseBoundedJson(text, BOUNDS).ok, true);
});

test('the leanest valid 4 MB index (75,000 entries with a platform) is under the limit', () => {
  const entries = Array.from({ length: 75_000 }, (_, i) => `{"digest":"d","platform":{"os":"l","architecture":"${i.toString(36)}"}}`);
  const text = `{"manifests":[${entries.join(',')}]}`;
  assert.ok(text.length > 4_000_000 && text.length <= MAX_MANIFEST, `${text.length}`);
  assert.equal(parseBoundedJson(text, BOUNDS).ok, true);
});

test('objects and arrays are counted outside strings only, and the limit is exact', () => {
  const inString = `{"a":"${'{},['.repeat(100)}"}`;
  assert.equal(jsonShape(inString, 8, 1_000).containers, 1); // the outer { only
  assert.equal(parseBoundedJson(inString, { ...BOUNDS, maxContainers: 1 }).ok, true);
  const escaped = `{"a":"\\"{,[","b":[{},[]]}`;
  assert.equal(jsonShape(escaped, 8, 1_000).containers, 4); // the outer {, the [ after "b", the {} and the [] in it
  assert.equal(parseBoundedJson(escaped, { ...BOUNDS, maxContainers: 4 }).ok, true);
  assert.deepEqual(parseBoundedJson(escaped, { ...BOUNDS, maxContainers: 3 }), {
    ok: false,
    problem: 'JSON with more than 3 objects and arrays',
  });
});

test('depth, size, emptiness and the top-level object are still checked', () => {
  assert.deepEqual(parseBoundedJson(`{"a":${'['.repeat(9)}${']'.repeat(9)}}`, BOUNDS), {
    ok: false,
    problem: 'JSON nested more than 8 levels deep',
  });
  assert.equal(parseBoundedJson(`{"a":${'['.repeat(7)}${']'.repeat(7)}}`, BOUNDS).ok, true);
  assert.deepEqual(parseBoundedJson('', BOUNDS), { ok: false, problem: 'an empty body' });
  assert.deepEqual(parseBoundedJson('[1]', BOUNDS), { ok: false, problem: 'not a JSON object' });
  assert.deepEqual(parseBoundedJson('{"a":', BOUNDS), { ok: false, problem: 'not valid JSON' });
  assert.deepEqual(parseBoundedJson('{"a":1}', { ...BOUNDS, maxLength: 3 }), { ok: false, problem: '7 characters, over the 3 limit' });
});
