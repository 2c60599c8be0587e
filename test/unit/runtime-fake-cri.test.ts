/**
 * The runtime stage and CRI client against a scripted CRI server (grpc-js on
 * a unix socket): what a real containerd rarely does on demand — echo a
 * credential in its error text, answer 503 text, time out by itself, hang
 * past the stage deadline, speak another API, lose the image.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { readFields } from '../../src/net/cri-codec.js';
import { realClock, silentLog, type Credential, type ProbeContext } from '../../src/model/types.js';
import { criAuthFor, runtimeCause, runtimeStage, type CriAuth } from '../../src/probe/stages/runtime.js';
import { REDACTED, Secrets } from '../../src/probe/scrub.js';
import { until, within } from '../support/within.js';

function ctx(timeoutMs = 20_000): ProbeContext {
  return {
    signal: new AbortController().signal,
    deadlineAt: realClock.now() + timeoutMs,
    clock: realClock,
    log: silentLog,
    wallNow: () => Date.now(),
  };
}

const str = (field: number, text: string): Buffer => {
  const b = Buffer.from(text);
  return Buffer.concat([Buffer.from([field * 8 + 2, b.length]), b]);
};
const VERSION = Buffer.concat([str(1, '0.1.0'), str(2, 'fake-cri'), str(3, '9.9'), str(4, 'v1')]);

/** The AuthConfig inside a PullImageRequest, as the server received it. */
function receivedAuth(req: Buffer): Record<number, string> | null {
  for (const { field, v } of readFields(req)) {
    if (field === 2 && v.wire === 2) {
      const out: Record<number, string> = {};
      for (const f of readFields(v.value)) if (f.v.wire === 2) out[f.field] = f.v.value.toString('utf8');
      return out;
    }
  }
  return null;
}

type Answer = { code: number; details: string } | Buffer | 'hang';
interface Script {
  version: Answer;
  pull: (req: Buffer) => Answer;
  status: Answer;
}

const identity = (b: Buffer): Buffer => b;
const method = (path: string): ServiceDefinition[string] => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});

describe('runtime stage against a scripted CRI server', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-fakecri-'));
  const socket = join(dir, 'cri.sock');
  const server = new Server();
  let script: Script;
  const pending: Array<() => void> = [];

  const answer = (a: Answer, cb: sendUnaryData<Buffer>): void => {
    if (a === 'hang') pending.push(() => cb({ code: status.UNAVAILABLE, details: 'test over' }));
    else if (Buffer.isBuffer(a)) cb(null, a);
    else cb(a);
  };

  before(async () => {
    const def: ServiceDefinition = {
      Version: method('/runtime.v1.RuntimeService/Version'),
      PullImage: method('/runtime.v1.ImageService/PullImage'),
      ImageStatus: method('/runtime.v1.ImageService/ImageStatus'),
    };
    const impl: UntypedServiceImplementation = {
      Version: (_c: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => answer(script.version, cb),
      PullImage: (c: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => answer(script.pull(c.request), cb),
      ImageStatus: (_c: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => answer(script.status, cb),
    };
    server.addService(def, impl);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  });

  after(async () => {
    for (const p of pending) p();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const imageOk = Buffer.concat([Buffer.from([0x0a, 12]), str(1, 'sha256:abc')]);
  const run = (auth?: CriAuth, timeoutMs = 10_000, secrets?: Secrets): ReturnType<typeof runtimeStage> =>
    runtimeStage(ctx(), auth ? { image: 'reg.test/app:v1', auth } : { image: 'reg.test/app:v1' }, {
      endpoint: `unix://${socket}`,
      timeoutMs,
      ...(secrets ? { secrets } : {}),
    });

  it('the AuthConfig reaches the runtime, and a runtime text that echoes it is scrubbed', async () => {
    const user = 'robot';
    const password = 'pw-Echoed-7731';
    const b64 = Buffer.from(`${user}:${password}`).toString('base64');
    let got: Record<number, string> | null = null;
    script = {
      version: VERSION,
      pull: (req) => {
        got = receivedAuth(req);
        return {
          code: status.UNKNOWN,
          details: `failed to pull and unpack image "reg.test/app:v1": failed to resolve reference: Authorization: Basic ${b64} for https://${user}:${password}@reg.test/v2/: 401 Unauthorized`,
        };
      },
      status: imageOk,
    };
    const secrets = new Secrets();
    const out = await run({ username: user, password }, 10_000, secrets);
    assert.deepEqual(got, { 1: user, 2: password });
    assert.equal(out.reason, 'runtime_pull_failed');
    const json = JSON.stringify(out);
    assert.ok(!json.includes(password) && !json.includes(b64), json);
    assert.ok(out.message?.includes(REDACTED));
    assert.deepEqual(out.detail.classified, { stage: 'auth', reason: 'auth_rejected', cause: 'credentials' });
    assert.ok(secrets.scrub(password) === REDACTED, 'the probe secrets learned the password');
  });

  it('an identity token goes in identity_token (field 5) alone', async () => {
    let got: Record<number, string> | null = null;
    script = { version: VERSION, pull: (req) => ((got = receivedAuth(req)), str(1, 'sha256:abc')), status: imageOk };
    const out = await run({ identityToken: 'refresh-tok-1' });
    assert.equal(out.ok, true, out.message);
    assert.equal(out.detail.auth, 'identity_token');
    assert.deepEqual(got, { 5: 'refresh-tok-1' });
  });

  it("containerd 1.6's resolver text for a 503 is classified http_status (cause registry)", async () => {
    script = {
      version: VERSION,
      pull: () => ({
        code: status.UNKNOWN,
        details:
          'failed to pull and unpack image "reg.test/app:v1": failed to resolve reference "reg.test/app:v1": pulling from host reg.test failed with status code [manifests v1]: 503 Service Unavailable',
      }),
      status: imageOk,
    };
    const out = await run();
    assert.deepEqual(out.detail.classified, { stage: 'http', reason: 'http_status', cause: 'registry' });
    assert.equal(runtimeCause(out), 'registry', "the result's cause follows the classified text");
  });

  it("the runtime's own DEADLINE_EXCEEDED (an i/o timeout inside) is the runtime's text, not the stage's timeout", async () => {
    script = {
      version: VERSION,
      pull: () => ({
        code: status.DEADLINE_EXCEEDED,
        details: 'failed to do request: Head "https://reg.test/v2/app/manifests/v1": dial tcp 10.0.0.9:443: i/o timeout',
      }),
      status: imageOk,
    };
    const out = await run();
    assert.deepEqual(out.detail.classified, { stage: 'tcp', reason: 'tcp_timeout', cause: 'network' });
    assert.equal(out.detail.grpcStatus, 'DEADLINE_EXCEEDED');
    assert.equal(out.detail.timedOut, undefined);
  });

  it('a pull that outlives the stage budget: runtime_pull_failed, timedOut, nothing classified', async () => {
    script = { version: VERSION, pull: () => 'hang', status: imageOk };
    const out = await within(run(undefined, 500), 10_000, 'the stage to give up on a hung pull');
    assert.equal(out.reason, 'runtime_pull_failed');
    assert.equal(out.detail.timedOut, true);
    assert.equal(out.detail.classified, null);
    assert.equal(out.detail.call, 'PullImage');
  });

  it("the probe's signal aborting mid-pull cancels the call: runtime_pull_failed, timedOut", async () => {
    script = { version: VERSION, pull: () => 'hang', status: imageOk };
    const ac = new AbortController();
    const c: ProbeContext = { ...ctx(), signal: ac.signal };
    const hung = pending.length;
    const running = runtimeStage(c, { image: 'reg.test/app:v1' }, { endpoint: `unix://${socket}`, timeoutMs: 60_000 });
    await until(() => pending.length > hung, 10_000, 'the pull to reach the server');
    ac.abort();
    const out = await within(running, 10_000, 'the stage to stop on abort');
    assert.equal(out.reason, 'runtime_pull_failed');
    assert.equal(out.detail.timedOut, true);
    assert.equal(runtimeCause(out), 'node');
  });

  it('a server that does not implement CRI v1 Version: runtime_unavailable', async () => {
    script = {
      version: { code: status.UNIMPLEMENTED, details: 'unknown service runtime.v1.RuntimeService' },
      pull: () => imageOk,
      status: imageOk,
    };
    const out = await run();
    assert.equal(out.reason, 'runtime_unavailable');
    assert.equal(out.detail.grpcStatus, 'UNIMPLEMENTED');
    assert.equal(out.detail.timedOut, undefined);
  });

  it('a pull the runtime reports done but whose image ImageStatus does not find: runtime_pull_failed', async () => {
    script = { version: VERSION, pull: () => str(1, 'sha256:abc'), status: Buffer.alloc(0) };
    const out = await run();
    assert.equal(out.reason, 'runtime_pull_failed');
    assert.equal(out.detail.call, 'ImageStatus');
    assert.equal(out.detail.imageRef, 'sha256:abc');
  });

  it('a non-unix endpoint: runtime_unavailable naming it, no connection tried', async () => {
    const out = await runtimeStage(ctx(), { image: 'reg.test/app:v1' }, { endpoint: 'tcp://127.0.0.1:1', timeoutMs: 1000 });
    assert.equal(out.reason, 'runtime_unavailable');
    assert.match(out.message ?? '', /^tcp:\/\/127\.0\.0\.1:1: not a unix socket endpoint/);
  });
});

describe('criAuthFor: the AuthConfig the kubelet passes', () => {
  const base: Credential = { username: 'u', password: 'p', source: 'f' };
  it('username/password; identity token alone; nothing for containerd config.toml credentials or none', () => {
    assert.deepEqual(criAuthFor(base), { username: 'u', password: 'p' });
    assert.deepEqual(criAuthFor({ ...base, username: '', identityToken: true }), { identityToken: 'p' });
    assert.equal(criAuthFor({ ...base, origin: { source: 'containerd-config', name: 'x', expiresAt: null } }), undefined);
    assert.deepEqual(criAuthFor({ ...base, origin: { source: 'credential-provider', name: 'ecr', expiresAt: null } }), {
      username: 'u',
      password: 'p',
    });
    assert.equal(criAuthFor(undefined), undefined);
  });
});

describe('the gRPC library is loaded only when the runtime stage runs', () => {
  it('importing the stage module does not load @grpc/grpc-js; running it does', () => {
    const script = `
      import { createRequire } from 'node:module';
      const req = createRequire(import.meta.url);
      const grpcLoaded = () => Object.keys(req.cache).some((k) => k.includes('@grpc'));
      const m = await import('./src/probe/stages/runtime.ts');
      const before = grpcLoaded();
      const t = { now: () => performance.now() };
      await m.runtimeStage({ signal: new AbortController().signal, deadlineAt: t.now() + 2000, clock: t, log: { debug() {}, info() {}, warn() {}, error() {} }, wallNow: Date.now },
        { image: 'x/y:z' }, { endpoint: '/nonexistent/cri.sock', timeoutMs: 1000 });
      console.log(JSON.stringify({ before, after: grpcLoaded() }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: process.cwd(),
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(out.trim()), { before: false, after: true });
  });
});
