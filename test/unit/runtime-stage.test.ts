/**
 * The runtime stage against a real containerd 1.6 (CRI plugin, native
 * snapshotter) and real docker-registry instances, all on loopback and a
 * unix socket under one temp dir (test/support/cri-fixture.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { REASONS } from '../../src/diagnosis/catalog.js';
import { openCriClient } from '../../src/net/cri-client.js';
import { realClock, silentLog, type ProbeContext } from '../../src/model/types.js';
import { runtimeStage } from '../../src/probe/stages/runtime.js';
import { Secrets } from '../../src/probe/scrub.js';
import { CriFixture, freePort, pushSingleImage, type Registry } from '../support/cri-fixture.js';
import { within } from '../support/within.js';

function ctx(timeoutMs = 20_000): ProbeContext {
  return {
    signal: new AbortController().signal,
    deadlineAt: realClock.now() + timeoutMs,
    clock: realClock,
    log: silentLog,
    wallNow: () => Date.now(),
  };
}

const USER = 'puller';
const PASSWORD = 'S3cret-pa55-for-cri';

describe('runtime stage: a real containerd pulling from loopback registries', { timeout: 120_000 }, () => {
  const fx = new CriFixture();
  let open: Registry;
  let locked: Registry;
  let endpoint: string;

  before(async () => {
    open = await fx.startRegistry('open');
    locked = await fx.startRegistry('locked', `${USER}:${PASSWORD}`);
    await fx.startContainerd();
    await pushSingleImage(open);
    await pushSingleImage(locked);
    endpoint = `unix://${fx.socket}`;
  });

  after(async () => {
    const pids = fx.pids;
    const dir = fx.dir;
    await fx.stop();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} still running`);
    // nothing started from the fixture's dir is left (pgrep exits 1 when no process matches)
    assert.throws(
      () => execFileSync('pgrep', ['-f', dir], { stdio: 'pipe' }),
      (e: { status?: number }) => e.status === 1,
    );
  });

  /** A fresh pull each time: the image is removed from containerd first. */
  async function freshPull(
    image: string,
    auth?: { username: string; password: string },
    secrets?: Secrets,
  ): ReturnType<typeof runtimeStage> {
    const c = openCriClient(endpoint);
    try {
      await c.removeImage(image, { timeoutMs: 5000 });
    } finally {
      c.close();
    }
    return runtimeStage(
      ctx(),
      auth === undefined ? { image } : { image, auth },
      secrets ? { endpoint, timeoutMs: 15_000, secrets } : { endpoint, timeoutMs: 15_000 },
    );
  }

  it('pulls an image: ok, with the runtime, the image id and the digest in the detail', async () => {
    const out = await freshPull(`${open.host}/lab/single:v1`);
    assert.equal(out.ok, true, out.message);
    assert.equal(out.detail.runtimeName, 'containerd');
    assert.equal(out.detail.runtimeApiVersion, 'v1');
    assert.match(out.detail.imageId ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(out.detail.imageRef, out.detail.imageId);
    assert.ok(out.detail.repoDigests?.some((d) => d.startsWith(`${open.host}/lab/single@sha256:`)));
    assert.equal(out.detail.auth, 'none');
    assert.equal(out.detail.classified, null);
  });

  it('a missing tag: runtime_pull_failed, the runtime text classified manifest_unknown (cause missing)', async () => {
    const out = await freshPull(`${open.host}/lab/single:no-such-tag`);
    assert.equal(out.reason, 'runtime_pull_failed');
    assert.deepEqual(out.detail.classified, { stage: 'manifest', reason: 'manifest_unknown', cause: 'missing' });
    assert.equal(out.detail.call, 'PullImage');
    assert.equal(out.detail.grpcStatus, 'NOT_FOUND');
    assert.equal(out.hint, REASONS.manifest_unknown.hint);
    assert.match(out.message ?? '', /no-such-tag: not found/);
  });

  it('a closed registry port: classified tcp_refused (cause network)', async () => {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    fx.hostsFor(host, `http://${host}`);
    const out = await freshPull(`${host}/lab/single:v1`);
    assert.equal(out.reason, 'runtime_pull_failed');
    assert.deepEqual(out.detail.classified, { stage: 'tcp', reason: 'tcp_refused', cause: 'network' });
    assert.match(out.message ?? '', /connection refused/);
  });

  it('basic-auth registry: without AuthConfig the pull is refused (credentials); with it the pull works', async () => {
    const image = `${locked.host}/lab/single:v1`;
    const anon = await freshPull(image);
    assert.equal(anon.reason, 'runtime_pull_failed');
    assert.equal(anon.detail.classified?.cause, 'credentials');
    assert.equal(anon.detail.auth, 'none');

    const secrets = new Secrets();
    const authed = await freshPull(image, { username: USER, password: PASSWORD }, secrets);
    assert.equal(authed.ok, true, authed.message);
    assert.equal(authed.detail.auth, 'basic');
    assert.ok(secrets.size > 0, 'the credentials sent are added to the probe secrets');

    const wrong = await freshPull(image, { username: USER, password: 'not-the-Password-9' });
    assert.equal(wrong.ok, false);
    // containerd words both 401s alike; credentials were sent, so they were refused
    assert.deepEqual(anon.detail.classified, { stage: 'auth', reason: 'auth_required', cause: 'credentials' });
    assert.deepEqual(wrong.detail.classified, { stage: 'auth', reason: 'auth_rejected', cause: 'credentials' });
    for (const o of [anon, authed, wrong]) {
      const json = JSON.stringify(o);
      assert.ok(!json.includes(PASSWORD) && !json.includes('not-the-Password-9'), json);
    }
  });

  it('no socket at the endpoint: runtime_unavailable naming the endpoint', async () => {
    const missing = `unix://${join(fx.dir, 'no-such.sock')}`;
    const out = await runtimeStage(ctx(), { image: `${open.host}/lab/single:v1` }, { endpoint: missing, timeoutMs: 5000 });
    assert.equal(out.reason, 'runtime_unavailable');
    assert.equal(out.host, missing);
    assert.equal(out.detail.error, 'ENOENT');
    assert.ok(out.message?.includes(join(fx.dir, 'no-such.sock')), out.message);
  });

  it('a socket that accepts and never answers: runtime_unavailable within the stage deadline', async () => {
    const path = join(fx.dir, 'silent.sock');
    rmSync(path, { force: true });
    const held: Socket[] = [];
    const server: Server = createServer((s) => held.push(s));
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const out = await within(
        runtimeStage(ctx(), { image: `${open.host}/lab/single:v1` }, { endpoint: path, timeoutMs: 400 }),
        10_000,
        'the stage to give up on a silent socket',
      );
      assert.equal(out.reason, 'runtime_unavailable');
      assert.equal(out.detail.timedOut, true);
      assert.equal(out.detail.call, 'Version');
      assert.ok(held.length > 0, 'the client did connect to the socket');
    } finally {
      for (const s of held) s.destroy();
      server.close();
    }
  });
});
