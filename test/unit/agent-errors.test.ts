/**
 * Errors that must not escape: the SIGHUP reload, the node writer's drain,
 * the HTTP server after listen and its request handlers. Each is logged and
 * the process keeps running; no 'unhandledRejection' or 'uncaughtException'.
 * Also: log levels are words.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { createLogger } from '../../src/agent/agent.js';
import { reloadOnSignal } from '../../src/commands/agent-command.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { createServer } from '../../src/agent/server.js';
import { Scheduler } from '../../src/agent/scheduler.js';
import { StatusStore } from '../../src/agent/status-store.js';
import { NodeWriter, type Timers } from '../../src/kube/node-writer.js';
import type { KubeClient, KubeNode } from '../../src/kube/client.js';
import type { Log, ProbeResult } from '../../src/model/types.js';

/** Fails the test if anything escapes to the process while it runs. */
function watchProcess(t: TestContext): { escaped: unknown[] } {
  const escaped: unknown[] = [];
  const onRejection = (err: unknown): void => {
    escaped.push(err);
  };
  const onException = (err: unknown): void => {
    escaped.push(err);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  t.after(() => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  });
  return { escaped };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
  await new Promise((r) => setTimeout(r, 20));
}

function captureLog(): { log: Log; lines: { level: string; obj: object; msg?: string | undefined }[] } {
  const lines: { level: string; obj: object; msg?: string | undefined }[] = [];
  const mk =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return { log: { debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error') }, lines };
}

/** An error whose every property throws when read: the worst a client library could hand back. */
function hostileError(): unknown {
  return new Proxy(
    {},
    {
      get() {
        throw new Error('do not touch');
      },
      getPrototypeOf() {
        throw new Error('do not touch');
      },
    },
  );
}

/** A promise rejected with that hostile value. */
function rejectHostile(): Promise<never> {
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a non-Error rejection is what these tests feed the code
  return Promise.reject(hostileError());
}

test('SIGHUP: a reload that rejects or throws is logged, never an unhandled rejection', async (t) => {
  const { escaped } = watchProcess(t);
  const { log, lines } = captureLog();
  reloadOnSignal({ log, reload: () => Promise.reject(new Error('disk on fire')) })();
  reloadOnSignal({
    log,
    reload: () => {
      throw new Error('sync failure');
    },
  })();
  reloadOnSignal({ log, reload: rejectHostile })();
  await settle();
  assert.deepEqual(escaped, []);
  const errors = lines.filter((l) => l.level === 'error');
  assert.equal(errors.length, 3);
  assert.ok(errors.every((l) => l.msg === 'config reload failed; keeping the previous config'));
  assert.deepEqual(errors.map((l) => (l.obj as { err: string }).err).sort(), ['disk on fire', 'sync failure', 'unprintable error']);
});

class RejectingKube implements KubeClient {
  failWith: (() => unknown) | null = null;
  writes = 0;
  getNode(): Promise<KubeNode> {
    return Promise.reject(new Error('unused'));
  }
  async patchNode(): Promise<KubeNode> {
    return this.answer();
  }
  async patchNodeStatus(): Promise<KubeNode> {
    return this.answer();
  }
  async createEvent(): Promise<void> {
    await this.answer();
  }
  async close(): Promise<void> {}
  private answer(): Promise<KubeNode> {
    return new Promise((resolve) => {
      if (this.failWith) throw this.failWith();
      this.writes++;
      resolve({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' } });
    });
  }
}

function okResult(target: string): ProbeResult {
  return {
    target,
    image: null,
    registry: target,
    ok: true,
    stage: null,
    reason: null,
    cause: null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0.01,
    steps: [],
  };
}

test('node writer: a client that rejects with an unreadable error during the drain is logged and retried, nothing escapes', async (t) => {
  const { escaped } = watchProcess(t);
  const { log, lines } = captureLog();
  const kube = new RejectingKube();
  const pending: (() => void)[] = [];
  const timers: Timers = {
    setTimeout: (fn) => {
      pending.push(fn);
      return pending.length;
    },
    clearTimeout: () => undefined,
  };
  const w = new NodeWriter({ client: kube, node: 'n', log, timers, random: () => 0.5, outputs: { events: false } });
  kube.failWith = hostileError;
  w.update([okResult('ghcr.io')]);
  await assert.doesNotReject(w.whenIdle());
  await settle();
  assert.deepEqual(escaped, []);
  assert.ok(
    lines.some((l) => l.level === 'error' && l.msg === 'node writer internal error'),
    JSON.stringify(lines),
  );
  // The write is retried once the backoff timer fires, and then succeeds.
  kube.failWith = null;
  pending.shift()?.();
  await w.whenIdle();
  assert.equal(kube.writes, 2, 'annotation and condition written after the retry');
  await w.stop();
});

test('node writer: a logger that throws inside the drain does not escape either', async (t) => {
  const { escaped } = watchProcess(t);
  const kube = new RejectingKube();
  kube.failWith = () => new Error('apiserver down');
  const throwing: Log = {
    debug() {},
    info() {},
    warn() {
      throw new Error('log sink broken');
    },
    error() {
      throw new Error('log sink broken');
    },
  };
  const w = new NodeWriter({
    client: kube,
    node: 'n',
    log: throwing,
    timers: { setTimeout: () => 0, clearTimeout: () => undefined },
    outputs: { events: false },
  });
  w.update([okResult('ghcr.io')]);
  await assert.doesNotReject(w.whenIdle());
  await settle();
  assert.deepEqual(escaped, []);
  await w.stop();
});

async function startServer(t: TestContext, over: { store?: StatusStore; metrics?: AgentMetrics } = {}) {
  const { log, lines } = captureLog();
  const server = createServer({
    metrics: over.metrics ?? new AgentMetrics({ defaultMetrics: false }),
    store: over.store ?? new StatusStore(),
    log,
    probeNow: (target) => Promise.resolve(okResult(target)),
    allowed: () => [],
    effectiveConfig: () => ({}),
    ready: () => true,
  });
  const { port } = await server.listen('127.0.0.1', 0);
  t.after(() => server.close());
  return { server, port, lines };
}

test('http server: an error after listen (EMFILE on accept) is logged and the server keeps serving', async (t) => {
  const { escaped } = watchProcess(t);
  const { server, port, lines } = await startServer(t);
  const emfile = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });
  assert.doesNotThrow(() => server.http.emit('error', emfile));
  await settle();
  assert.deepEqual(escaped, []);
  assert.ok(
    lines.some((l) => l.level === 'error' && (l.obj as { code?: string }).code === 'EMFILE'),
    JSON.stringify(lines),
  );
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok\n');
});

test('http server: a listen error still rejects listen() (and is not only logged)', async (t) => {
  const first = await startServer(t);
  const { log } = captureLog();
  const second = createServer({
    metrics: new AgentMetrics({ defaultMetrics: false }),
    store: new StatusStore(),
    log,
    probeNow: (target) => Promise.resolve(okResult(target)),
    allowed: () => [],
    effectiveConfig: () => ({}),
    ready: () => true,
  });
  await assert.rejects(second.listen('127.0.0.1', first.port), { code: 'EADDRINUSE' });
});

test('http server: a handler that throws answers 500, logs, and keeps serving', async (t) => {
  const { escaped } = watchProcess(t);
  const store = new StatusStore();
  store.snapshot = () => {
    throw new Error('store broken');
  };
  const metrics = new AgentMetrics({ defaultMetrics: false });
  metrics.text = () => Promise.reject(new Error('registry broken'));
  const { port, lines } = await startServer(t, { store, metrics });
  for (const path of ['/', '/metrics']) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    assert.equal(res.status, 500, path);
    assert.equal(await res.text(), 'internal error\n');
  }
  assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  await settle();
  assert.deepEqual(escaped, []);
  assert.deepEqual(
    lines.filter((l) => l.msg === 'request failed').map((l) => (l.obj as { err: string }).err),
    ['store broken', 'registry broken'],
  );
});

test('agent logs write their level as a word', () => {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out.push(String(chunk));
      cb();
    },
  });
  const log = createLogger('debug', sink);
  log.info({ target: 'ghcr.io' }, 'target reachable');
  log.warn({ password: 'hunter2' }, 'target failing');
  log.debug({}, 'details');
  const lines = out
    .join('')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: unknown; msg: string; password?: string });
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg]),
    [
      ['info', 'target reachable'],
      ['warn', 'target failing'],
      ['debug', 'details'],
    ],
  );
  assert.equal(lines[1]?.password, '[redacted]');
});

test('scheduler: a failing run with a logger that throws still frees its slot; nothing escapes', async (t) => {
  const escaped = watchProcess(t).escaped;
  let now = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  let seq = 0;
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      pending.set(++seq, { at: now + ms, fn });
      return seq;
    },
    clearTimeout: (h) => {
      pending.delete(h as number);
    },
  };
  const fire = async (until: number): Promise<void> => {
    for (;;) {
      await settle();
      const next = [...pending.entries()].filter(([, v]) => v.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      pending.delete(next[0]);
      now = next[1].at;
      next[1].fn();
    }
    now = until;
  };
  const throwing: Log = {
    debug() {},
    info() {},
    warn() {},
    error() {
      throw new Error('log sink broken');
    },
  };
  let runs = 0;
  const s = new Scheduler({
    targets: [{ target: 'ghcr.io', kind: 'registry', intervalMs: 1000, timeoutMs: 500, jitter: 0 }],
    concurrency: 1,
    node: 'n',
    clock: { now: () => now },
    timers,
    log: throwing,
    run: () => {
      runs++;
      return rejectHostile();
    },
  });
  s.start();
  await fire(3500);
  await settle();
  assert.equal(runs, 4, 'every slot ran: the failed runs did not keep their slot');
  assert.deepEqual(escaped, []);
  await s.stop(0);
});
