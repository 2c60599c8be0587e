/**
 * The manifest stage against registries that misbehave on purpose (issue 6,
 * "hostile servers"): memory bounded whatever the index, garbage JSON called
 * garbage, CPU bounded on huge indexes and tag lists, absurd platforms
 * refused, redirects followed as containerd follows them. Loopback servers
 * only; cost bounds are measured with process.cpuUsage on inputs that took
 * seconds before the fix.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import type { Agent } from 'undici';
import { causeOf } from '../../src/diagnosis/catalog.js';
import { createDispatcher } from '../../src/net/dispatcher.js';
import { manifestStage, MAX_MANIFEST, nearestTags, type ManifestDetail, type ManifestOptions } from '../../src/probe/stages/manifest.js';
import { IndexCache } from '../../src/probe/index-cache.js';
import { parseBoundedJson } from '../../src/net/bounded-json.js';
import { matchPlatform, parsePlatform, platformRank, summarizeIndex } from '../../src/model/platform.js';
import { editDistance } from '../../src/shared/edit-distance.js';
import { realClock, silentLog, type ProbeContext, type StageOutcome } from '../../src/model/types.js';
import { DOCKER_LIST, DOCKER_MANIFEST, FakeRegistry } from '../support/fake-registry.js';
import { within } from '../support/within.js';

const open: { close(): Promise<unknown> }[] = [];
after(async () => {
  for (const o of open) await o.close();
});

function ctxFor(ms = 5000): ProbeContext {
  return { signal: new AbortController().signal, deadlineAt: realClock.now() + ms, clock: realClock, log: silentLog, wallNow: Date.now };
}

function dispatcher(pinned = new Map<string, string[]>()): Agent {
  const d = createDispatcher({ pinned, ca: [], connectTimeoutMs: 2000, headersTimeoutMs: 5000, bodyTimeoutMs: 5000 });
  open.push(d);
  return d;
}

async function plain(): Promise<FakeRegistry> {
  const f = await FakeRegistry.start();
  open.push(f);
  return f;
}

const amd64 = { os: 'linux', architecture: 'amd64' };
/** This file's index cache, as the agent owns one: passed to every manifest stage below. */
const indexCache = new IndexCache();

async function probe(
  endpoint: string,
  repo: string,
  ref: string,
  o: Partial<ManifestOptions> & { authorization?: string; d?: Agent } = {},
): Promise<StageOutcome<ManifestDetail>> {
  const { authorization, d, ...manifest } = o;
  return manifestStage(
    ctxFor(),
    {
      endpoint,
      repository: repo,
      reference: ref,
      hasCredential: authorization !== undefined,
      scheme: 'http',
      ...(authorization ? { authorization } : {}),
    },
    { dispatcher: d ?? dispatcher(), timeoutMs: 5000, platform: amd64, indexCache, ...manifest },
  );
}

/** Store `body` as the index behind tag `tag` (its digest is the sha256 of the bytes). */
function putIndex(f: FakeRegistry, repo: string, body: string, tag = 'latest'): string {
  return f.putManifest(repo, body, DOCKER_LIST, tag);
}

/** A syntactically valid index with `n` distinct platforms, none of them the node's. */
function wideIndex(n: number): string {
  const entries = Array.from({ length: n }, (_, i) => `{"digest":"d","platform":{"os":"l","architecture":"${i.toString(36)}"}}`);
  return `{"manifests":[${entries.join(',')}]}`;
}

function cpuMs(): () => number {
  const start = process.cpuUsage();
  return () => {
    const u = process.cpuUsage(start);
    return (u.user + u.system) / 1000;
  };
}

describe('hostile registries: the index', () => {
  test('a 4 MB nested-array "index" is the registry answering garbage (http_status, registry), not platform_missing; no deep parse', async () => {
    const f = await plain();
    const depth = 2 * 1024 * 1024 - 8;
    putIndex(f, 'bomb/img', `{"manifests":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    const before = process.memoryUsage().heapUsed;
    const out = await probe(`127.0.0.1:${f.port}`, 'bomb/img', 'latest');
    const grew = process.memoryUsage().heapUsed - before;
    assert.equal(out.ok, false);
    assert.equal(out.reason, 'http_status');
    assert.equal(causeOf('http_status'), 'registry');
    assert.match(out.message ?? '', /not an image index/);
    assert.match(out.message ?? '', /nested/);
    assert.ok(grew < 200 * 1024 * 1024, `heap grew ${Math.round(grew / 1048576)} MiB parsing a hostile index`);
  });

  test('manifests entries that are arrays (4 MB of shallow nesting) are not an index either, refused before a deep parse', async () => {
    const f = await plain();
    const chunk = '[[[[[[[[[[]]]]]]]]]],';
    putIndex(f, 'shallow/img', `{"schemaVersion":2,"manifests":[${chunk.repeat(Math.floor(4_000_000 / chunk.length))}[]]}`);
    putIndex(f, 'flat/img', '{"schemaVersion":2,"manifests":[[],[]]}');
    const used = cpuMs();
    const deep = await probe(`127.0.0.1:${f.port}`, 'shallow/img', 'latest');
    assert.equal(deep.reason, 'http_status', `${deep.reason}: ${deep.message}`);
    assert.ok(used() < 1500, 'no parse into millions of arrays');
    const flat = await probe(`127.0.0.1:${f.port}`, 'flat/img', 'latest');
    assert.equal(flat.reason, 'http_status', `${flat.reason}: ${flat.message}`);
    assert.match(flat.message ?? '', /not an image index/);
  });

  test('the node platform last of 20k platforms is found; the cached summary answers for it without a second GET', async () => {
    const f = await plain();
    indexCache.clear();
    const body = wideIndex(20_000).replace(']}', ',{"digest":"sha256:mine","platform":{"os":"linux","architecture":"amd64"}}]}');
    const digest = putIndex(f, 'last/img', body);
    const first = await probe(`127.0.0.1:${f.port}`, 'last/img', 'latest');
    assert.equal(first.ok, true, `${first.reason}: ${first.message}`);
    assert.equal(first.detail.platformDigest, 'sha256:mine');
    const again = await probe(`127.0.0.1:${f.port}`, 'last/img', 'latest');
    assert.equal(again.ok, true);
    assert.equal(again.detail.indexCached, true);
    assert.equal(f.count('GET', `/v2/last/img/manifests/${digest}`), 1);
    // Another node platform cannot be decided from the kept part of so wide an index: it is read again.
    const arm = await probe(`127.0.0.1:${f.port}`, 'last/img', 'latest', { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(arm.reason, 'platform_missing');
    assert.equal(f.count('GET', `/v2/last/img/manifests/${digest}`), 2);
    const kept = indexCache.get(digest);
    assert.deepEqual([...(kept?.matched.keys() ?? [])].sort(), ['linux/amd64', 'linux/arm64']);
  });

  test('JSON that is not an index, and text that is not JSON, are garbage too (the HEAD alone does not make it ok)', async () => {
    const f = await plain();
    putIndex(f, 'junk/obj', '{"schemaVersion":2,"layers":[]}');
    putIndex(f, 'junk/txt', '<html>gateway says hi</html>');
    putIndex(f, 'junk/arr', '[1,2,3]');
    for (const repo of ['junk/obj', 'junk/txt', 'junk/arr']) {
      const out = await probe(`127.0.0.1:${f.port}`, repo, 'latest');
      assert.equal(out.reason, 'http_status', `${repo}: ${out.reason} ${out.message}`);
      assert.match(out.message ?? '', /not an image index/);
    }
  });

  test("an index over containerd's MaxManifestSize is refused with that limit named", async () => {
    const f = await plain();
    const pad = 'x'.repeat(MAX_MANIFEST);
    putIndex(
      f,
      'big/img',
      `{"manifests":[{"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}}],"annotations":{"pad":"${pad}"}}`,
    );
    const out = await probe(`127.0.0.1:${f.port}`, 'big/img', 'latest');
    assert.equal(out.reason, 'http_status');
    assert.match(out.message ?? '', /larger than 4393216 bytes/);
  });

  test('a new digest every probe: the cache keeps a small summary, bounded in entries and bytes', async () => {
    const f = await plain();
    indexCache.clear();
    for (let i = 0; i < 6; i++) {
      const digest = putIndex(f, 'churn/img', wideIndex(20_000).replace('{', `{"n":${i},`));
      const out = await probe(`127.0.0.1:${f.port}`, 'churn/img', 'latest');
      assert.equal(out.reason, 'platform_missing');
      const kept = indexCache.get(digest);
      assert.ok(kept, 'the summary is remembered');
      assert.ok(kept.entries.length <= 256, `kept ${kept.entries.length} entries of a 20000-platform index`);
      assert.equal(kept.platformCount, 20_000);
    }
    assert.ok(indexCache.bytes <= 1024 * 1024, `cache holds ~${indexCache.bytes} bytes`);

    const small = new IndexCache({ maxEntries: 3, maxBytes: 10_000 });
    const summary = summarizeIndex(JSON.parse(wideIndex(20)));
    assert.ok(summary);
    for (let i = 0; i < 50; i++) small.set(`sha256:${i}`, summary);
    assert.ok(small.size <= 3);
    assert.ok(small.bytes <= 10_000);
    assert.equal(small.get('sha256:0'), undefined, 'oldest dropped first');
    assert.ok(small.get('sha256:49'));
  });

  test('75k platforms: linear matching within a CPU bound, and a short message naming the first few', async () => {
    const f = await plain();
    indexCache.clear();
    const body = wideIndex(75_000);
    assert.ok(body.length > 4_000_000 && body.length <= MAX_MANIFEST, `index is ${body.length} bytes`);
    putIndex(f, 'wide/img', body);
    const used = cpuMs();
    const out = await probe(`127.0.0.1:${f.port}`, 'wide/img', 'latest');
    const ms = used();
    assert.equal(out.reason, 'platform_missing');
    assert.ok(ms < 2500, `platform check took ${Math.round(ms)} ms of CPU`);
    assert.ok((out.message ?? '').length < 600, `message is ${(out.message ?? '').length} characters`);
    assert.match(out.message ?? '', /and 74990 more\]/);
    assert.equal(out.detail.platforms?.length, 10);
    assert.equal(out.detail.platformCount, 75_000);
    const direct = cpuMs();
    matchPlatform(JSON.parse(body), amd64);
    assert.ok(direct() < 1000, 'matchPlatform over 75k entries is linear');
  });
});

describe('hostile registries: tags and platforms', () => {
  test('nearest tags over 33k long tags: bounded work, still the right answer for near tags', () => {
    const tags = Array.from({ length: 33_000 }, (_, i) => `${'release-candidate-build-'.repeat(5)}${i}`.slice(-128));
    tags.push('v2.5.1', 'v2.5.0');
    const used = cpuMs();
    const near = nearestTags('v2.5.2', tags);
    const ms = used();
    assert.ok(ms < 500, `nearestTags took ${Math.round(ms)} ms of CPU`);
    assert.deepEqual(near, []); // only the first MAX_TAGS_CONSIDERED tags are looked at: never all 33k
    assert.deepEqual(nearestTags('v2.5.2', ['v2.5.1', 'v2.5.0', ...tags.slice(0, 1000)]), ['v2.5.0', 'v2.5.1']);
    assert.deepEqual(nearestTags('lates', ['latest', 'v1', 'stable', 'last']), ['latest', 'last', 'stable']);
  });

  test('banded edit distance agrees with the full one up to its limit', () => {
    const words = ['', 'a', 'ab', 'latest', 'lates', 'stable', 'v2.5.1', 'v2.5.12', 'kitten', 'sitting', 'x'.repeat(40)];
    for (const a of words) {
      for (const b of words) {
        const full = editDistance(a, b);
        for (const k of [0, 1, 2, 3, 5, 8]) assert.equal(editDistance(a, b, k), Math.min(full, k + 1), `${a} / ${b} / ${k}`);
      }
    }
    const used = cpuMs();
    for (let i = 0; i < 2000; i++) editDistance('a'.repeat(128), 'b'.repeat(128), 8);
    assert.ok(used() < 300, 'far strings give up early');
  });

  test('--platform with an absurd variant is refused; matching a huge variant costs nothing', () => {
    assert.equal(parsePlatform('linux/amd64/v999999999'), undefined);
    assert.equal(parsePlatform(`linux/${'a'.repeat(40)}`), undefined);
    assert.equal(parsePlatform('linux/amd64/\u001b[31m'), undefined);
    assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    const used = cpuMs();
    const huge = { os: 'linux', architecture: 'amd64', variant: 'v999999999' };
    assert.equal(platformRank(huge, { os: 'linux', architecture: 'amd64', variant: 'v3' }), 999999996);
    assert.equal(platformRank(huge, { os: 'linux', architecture: 'amd64' }), 999999998);
    const index = {
      manifests: [
        { digest: 'sha256:a', platform: { os: 'linux', architecture: 'amd64', variant: 'v2' } },
        { digest: 'sha256:b', platform: { os: 'linux', architecture: 'amd64', variant: 'v3' } },
      ],
    };
    assert.equal(matchPlatform(index, huge).match?.digest, 'sha256:b');
    assert.ok(used() < 100);
  });

  test('bounded JSON: depth and shape checked before any deep parse', () => {
    assert.equal(parseBoundedJson('{"a":[[[[1]]]]}', { maxLength: 100, maxDepth: 5 }).ok, true);
    assert.equal(parseBoundedJson('{"a":[[[[[1]]]]]}', { maxLength: 100, maxDepth: 5 }).ok, false);
    assert.equal(parseBoundedJson('{"a":"[[[[[[[["}', { maxLength: 100, maxDepth: 2 }).ok, true, 'brackets inside strings do not count');
    assert.equal(parseBoundedJson('{"a":"\\"[[[[["}', { maxLength: 100, maxDepth: 2 }).ok, true);
    assert.equal(parseBoundedJson('x'.repeat(101), { maxLength: 100, maxDepth: 5 }).ok, false);
    assert.equal(parseBoundedJson('{', { maxLength: 100, maxDepth: 5 }).ok, false);
  });
});

/** A loopback server answering every request with `answer(url, headers)`; records what it saw. */
async function redirector(
  answer: (url: string) => { status: number; location?: string },
): Promise<{ port: number; seen: { url: string; authorization?: string }[] }> {
  const seen: { url: string; authorization?: string }[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const a = answer(req.url ?? '');
    res.writeHead(a.status, a.location ? { location: a.location } : {});
    res.end();
  });
  await within(new Promise<void>((r) => server.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
  open.push({
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

describe('hostile registries: redirects', () => {
  test('a 307 to another host is followed; the Authorization header stays behind', async () => {
    const target = await plain();
    target.putManifest('app/api', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
    const front = await redirector((url) => ({ status: 307, location: `http://127.0.0.1:${target.port}${url}` }));
    const out = await probe(`127.0.0.1:${front.port}`, 'app/api', 'v1', { authorization: 'Bearer front-secret' });
    assert.equal(out.ok, true, `${out.reason}: ${out.message}`);
    assert.equal(front.seen[0]?.authorization, 'Bearer front-secret');
    assert.equal(target.count('HEAD', '/v2/app/api/manifests/v1'), 1);
    assert.equal(
      target.requests.some((r) => r.authorization !== undefined),
      false,
      'no credential sent to the other host',
    );
    assert.deepEqual(out.detail.redirects, [`http://127.0.0.1:${target.port}`]);
  });

  test("a redirect to a new host name is reached first through the chain's hop (reach), then followed", async () => {
    const target = await plain();
    target.putManifest('app/api', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, layers: [] }, DOCKER_MANIFEST, 'v1');
    const front = await redirector((url) => ({ status: 302, location: `http://blobs.test:${target.port}${url}` }));
    const pinned = new Map<string, string[]>();
    const reached: string[] = [];
    const ok = await probe(`127.0.0.1:${front.port}`, 'app/api', 'v1', {
      d: dispatcher(pinned),
      reach: (url) => {
        reached.push(url.host);
        pinned.set(url.hostname, ['127.0.0.1']);
        return Promise.resolve(null);
      },
    });
    assert.equal(ok.ok, true, `${ok.reason}: ${ok.message}`);
    assert.deepEqual(reached, [`blobs.test:${target.port}`]);
    const hop = { ok: false, reason: 'dns_nxdomain' as const, message: 'no such host', host: 'blobs.test', seconds: 0, detail: {} };
    const failed = await probe(`127.0.0.1:${front.port}`, 'app/api', 'v1', { d: dispatcher(new Map()), reach: () => Promise.resolve(hop) });
    assert.equal(failed.reason, 'dns_nxdomain');
    assert.equal(failed.host, 'blobs.test');
  });

  test('a redirect loop, too many redirects and a non-http scheme are registry faults with a clear message', async () => {
    const loop = await redirector((url) => ({
      status: 301,
      location: url.endsWith('/a') ? url.replace(/a$/, 'b') : url.replace(/[^/]+$/, 'a'),
    }));
    const l = await probe(`127.0.0.1:${loop.port}`, 'app/api', 'a');
    assert.equal(l.reason, 'http_status');
    assert.match(l.message ?? '', /redirect loop/);

    let n = 0;
    const endless = await redirector(() => ({ status: 302, location: `/v2/app/api/manifests/v1?n=${++n}` }));
    const e = await probe(`127.0.0.1:${endless.port}`, 'app/api', 'v1');
    assert.equal(e.reason, 'http_status');
    assert.match(e.message ?? '', /stopped after 10 redirects/);
    assert.equal(endless.seen.length, 11, 'the first request and 10 redirects, no more');

    const file = await redirector(() => ({ status: 307, location: 'file:///etc/passwd' }));
    const fl = await probe(`127.0.0.1:${file.port}`, 'app/api', 'v1');
    assert.equal(fl.reason, 'http_status');
    assert.match(fl.message ?? '', /file URL, which is never followed/);
    assert.doesNotMatch(fl.message ?? '', /passwd/);
  });
});
