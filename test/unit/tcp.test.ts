import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { tcpStage, joinHostPort } from '../../src/probe/stages/tcp.js';
import { realClock, silentLog, type Clock, type ProbeContext } from '../../src/model/types.js';
import { FakeTime, settle, track } from '../support/fake-time.js';
import { within } from '../support/within.js';

function makeCtx(timeoutMs = 10_000, clock: Clock = realClock, signal = new AbortController().signal): ProbeContext {
  return { signal, deadlineAt: clock.now() + timeoutMs, clock, log: silentLog, wallNow: () => Date.now() };
}

/** A context whose clock and stage timers are `time` (fake: they wait for time.advance()). */
function fakeCtx(time: FakeTime, timeoutMs = 10_000): ProbeContext {
  return { ...makeCtx(timeoutMs, time), timers: time };
}

/** A listening server on 127.0.0.1:0 that accepts; tracks sockets so close() is prompt. */
async function listen(): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 5000, 'the server to listen');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    accepted: () => count,
    close: () =>
      within(
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
        5000,
        'the server to close',
      ),
  };
}

/** A port on 127.0.0.1 that was just free (nothing listens: connect is refused). */
async function closedPort(): Promise<number> {
  const srv = await listen();
  await srv.close();
  return srv.port;
}

/** A connect that never connects and never fails; records whether it was torn down. */
function neverConnect(): { connect: () => net.Socket; sockets: net.Socket[] } {
  const sockets: net.Socket[] = [];
  return {
    sockets,
    connect: () => {
      const s = new net.Socket();
      // A real pending connect holds a ref'd handle; this fake one holds a ref'd timer
      // (stageTimer's timer is unref'd) until it is destroyed.
      const keepAlive = setInterval(() => {}, 1000);
      s.once('close', () => clearInterval(keepAlive));
      sockets.push(s);
      return s;
    },
  };
}

describe('tcpStage', { timeout: 20_000 }, () => {
  test('connects to a listening loopback port and closes the socket', async () => {
    const srv = await listen();
    try {
      const time = new FakeTime();
      const out = await within(
        tcpStage(fakeCtx(time), { host: 'registry.lab.test', addresses: ['127.0.0.1'], port: srv.port }, { connectTimeoutMs: 2000 }),
        5000,
        'a loopback connect',
      );
      assert.equal(out.ok, true);
      assert.equal(out.reason, undefined);
      assert.equal(out.degraded, false);
      assert.equal(out.host, `registry.lab.test:${srv.port}`);
      assert.deepEqual(out.detail.connected, ['127.0.0.1']);
      const [first] = out.detail.addresses;
      assert.ok(first, 'an address line');
      assert.equal(first.ok, true);
      assert.equal(first.error, undefined);
      assert.equal(out.seconds, 0, 'connected with no time passing on the stage clock');
      assert.equal(srv.accepted(), 1);
    } finally {
      await srv.close();
    }
  });

  test('the client side closes its socket (server sees the close)', async () => {
    let closed!: () => void;
    const sawClose = new Promise<void>((resolve) => {
      closed = resolve;
    });
    const server = net.createServer((s) => {
      s.on('error', () => {});
      s.on('close', () => closed());
    });
    await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 5000, 'the server to listen');
    const { port } = server.address() as net.AddressInfo;
    try {
      const out = await tcpStage(makeCtx(), { host: '127.0.0.1', addresses: ['127.0.0.1'], port }, { connectTimeoutMs: 2000 });
      assert.equal(out.ok, true);
      await within(sawClose, 5000, 'the server to see the client close');
    } finally {
      await within(new Promise<void>((resolve) => server.close(() => resolve())), 5000, 'the server to close');
    }
  });

  test('closed port → tcp_refused with ECONNREFUSED in detail', async () => {
    const port = await closedPort();
    const out = await tcpStage(makeCtx(), { host: 'registry.lab.test', addresses: ['127.0.0.1'], port }, { connectTimeoutMs: 2000 });
    assert.equal(out.ok, false);
    assert.equal(out.reason, 'tcp_refused');
    assert.equal(out.detail.addresses[0]?.error, 'ECONNREFUSED');
    assert.deepEqual(out.detail.connected, []);
    assert.equal(out.host, `registry.lab.test:${port}`);
  });

  test('a connect that never completes → tcp_timeout within connectTimeoutMs, socket destroyed', async () => {
    const nc = neverConnect();
    const time = new FakeTime();
    const run = track(
      tcpStage(fakeCtx(time), { host: 'r.test', addresses: ['192.0.2.1'], port: 443 }, { connectTimeoutMs: 100, connect: nc.connect }),
    );
    time.advance(99);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still connecting 1 ms before connectTimeoutMs');
    time.advance(1);
    const out = await settle(time, run.p, 'the TCP stage after its connect timeout');
    assert.equal(out.ok, false);
    assert.equal(out.reason, 'tcp_timeout');
    assert.equal(out.detail.addresses[0]?.error, 'ETIMEDOUT');
    assert.equal(out.seconds, 0.1);
    assert.equal(nc.sockets.length, 1);
    assert.equal(nc.sockets[0]?.destroyed, true);
  });

  describe('real loopback timeout (listener whose accept queue is full drops SYNs)', () => {
    let child: ChildProcess | undefined;
    const fillers: net.Socket[] = [];
    after(() => {
      for (const s of fillers) s.destroy();
      child?.kill('SIGKILL');
    });

    test('→ tcp_timeout', async () => {
      // A child process listens with backlog 1 and then blocks its event loop, so it never
      // accepts: once the kernel's accept queue is full, further SYNs are dropped.
      const script =
        "const s=require('net').createServer().listen({host:'127.0.0.1',port:0,backlog:1},()=>{" +
        "process.stdout.write(s.address().port+'\\n');Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0)})";
      child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const port = await within(
        new Promise<number>((resolve, reject) => {
          child?.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
          child?.once('error', reject);
        }),
        10_000,
        'the blocked listener to print its port',
      );
      // Fill the queue until a connect hangs.
      let hung = false;
      for (let i = 0; i < 10 && !hung; i++) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        fillers.push(s);
        hung = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(true), 300);
          s.once('connect', () => {
            clearTimeout(t);
            resolve(false);
          });
        });
      }
      assert.ok(hung, 'accept queue never filled');
      const out = await tcpStage(makeCtx(), { host: 'registry.lab.test', addresses: ['127.0.0.1'], port }, { connectTimeoutMs: 250 });
      assert.equal(out.ok, false);
      assert.equal(out.reason, 'tcp_timeout');
      assert.equal(out.detail.addresses[0]?.error, 'ETIMEDOUT');
    });
  });

  test('two addresses, one good and one refused → ok, degraded, per-address detail in input order', async () => {
    const srv = await listen();
    try {
      // 127.0.0.2 is loopback too, but the server listens on 127.0.0.1 only → refused.
      const out = await tcpStage(
        makeCtx(),
        { host: 'registry.lab.test', addresses: ['127.0.0.2', '127.0.0.1'], port: srv.port },
        { connectTimeoutMs: 2000 },
      );
      assert.equal(out.ok, true);
      assert.equal(out.degraded, true);
      assert.equal(out.reason, undefined);
      assert.deepEqual(out.detail.connected, ['127.0.0.1']);
      assert.deepEqual(
        out.detail.addresses.map((a) => [a.address, a.ok, a.error]),
        [
          ['127.0.0.2', false, 'ECONNREFUSED'],
          ['127.0.0.1', true, undefined],
        ],
      );
    } finally {
      await srv.close();
    }
  });

  test('all addresses fail → reason from the first address in input order', async () => {
    const port = await closedPort();
    const nc = neverConnect();
    const connect = (o: { host: string; port: number }): net.Socket =>
      o.host === '127.0.0.1' ? net.connect({ host: o.host, port: o.port }) : nc.connect();
    const first = await tcpStage(
      makeCtx(),
      { host: 'r.test', addresses: ['198.51.100.7', '127.0.0.1'], port },
      { connectTimeoutMs: 150, connect },
    );
    assert.equal(first.ok, false);
    assert.equal(first.reason, 'tcp_timeout');
    const second = await tcpStage(
      makeCtx(),
      { host: 'r.test', addresses: ['127.0.0.1', '198.51.100.7'], port },
      { connectTimeoutMs: 150, connect },
    );
    assert.equal(second.reason, 'tcp_refused');
    assert.deepEqual(
      second.detail.addresses.map((a) => a.error),
      ['ECONNREFUSED', 'ETIMEDOUT'],
    );
  });

  test('unreachable codes map to tcp_unreachable', async () => {
    const connect = (): net.Socket => {
      const s = new net.Socket();
      setImmediate(() => s.destroy(Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' })));
      return s;
    };
    const out = await tcpStage(makeCtx(), { host: 'r.test', addresses: ['10.0.0.1'], port: 443 }, { connectTimeoutMs: 1000, connect });
    assert.equal(out.reason, 'tcp_unreachable');
    assert.equal(out.detail.addresses[0]?.error, 'EHOSTUNREACH');
  });

  test('the probe deadline caps the connect timeout', async () => {
    const nc = neverConnect();
    const time = new FakeTime();
    const run = track(
      tcpStage(
        fakeCtx(time, 120),
        { host: 'r.test', addresses: ['192.0.2.1', '192.0.2.2'], port: 443 },
        { connectTimeoutMs: 30_000, connect: nc.connect },
      ),
    );
    time.advance(119);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still connecting before the 120 ms deadline');
    time.advance(1);
    const out = await settle(time, run.p, 'the TCP stage at the probe deadline');
    assert.equal(out.reason, 'tcp_timeout');
    assert.equal(out.seconds, 0.12, 'ended at the probe deadline, not after connectTimeoutMs');
    assert.ok(nc.sockets.every((s) => s.destroyed));
  });

  test('an already-aborted probe signal → tcp_timeout without connecting', async () => {
    const ac = new AbortController();
    ac.abort();
    let calls = 0;
    const out = await tcpStage(
      makeCtx(10_000, realClock, ac.signal),
      { host: 'r.test', addresses: ['127.0.0.1'], port: 1 },
      {
        connectTimeoutMs: 1000,
        connect: () => {
          calls++;
          return neverConnect().connect();
        },
      },
    );
    assert.equal(out.reason, 'tcp_timeout');
    assert.equal(calls, 0);
  });

  test('seconds come from the injected clock (raw stamps, subtraction)', async () => {
    let now = 5000;
    const clock: Clock = { now: () => now };
    const connect = (): net.Socket => {
      const s = new net.Socket();
      setImmediate(() => {
        now += 300;
        s.emit('connect');
      });
      return s;
    };
    const out = await tcpStage(
      makeCtx(1e9, clock),
      { host: 'r.test', addresses: ['10.0.0.1'], port: 443 },
      { connectTimeoutMs: 2000, connect },
    );
    assert.equal(out.ok, true);
    assert.equal(out.seconds, 0.3);
    assert.equal(out.detail.addresses[0]?.seconds, 0.3);
  });

  test('IPv6 hosts are bracketed in host:port', () => {
    assert.equal(joinHostPort('::1', 443), '[::1]:443');
    assert.equal(joinHostPort('registry.lab.test', 5000), 'registry.lab.test:5000');
    assert.equal(joinHostPort('10.0.0.1', 443), '10.0.0.1:443');
  });
});
