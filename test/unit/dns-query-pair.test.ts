/**
 * queryDnsTypes: A and AAAA asked on ONE UDP socket per nameserver (as
 * glibc's resolver does), against a loopback server scripted per test. The
 * socket count comes from a DnsTransport wrapping the real one; the server
 * also sees each question's source port, so a socket per type shows twice.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import * as packet from 'dns-packet';
import { queryDnsTypes, realTransport, type DnsQueryResult, type DnsQueryType, type DnsTransport } from '../../src/net/dns-query.js';
import { dnsStage } from '../../src/probe/stages/dns.js';
import { parseResolvConf } from '../../src/node-config/resolv-conf.js';
import { silentLog, type ProbeContext } from '../../src/model/types.js';
import { FakeTime, track } from '../support/fake-time.js';
import { until, within } from '../support/within.js';
import { listenDns } from '../support/dns-server.js';

const REG = 'registry.lab.test';
const A = ['10.1.2.3', '10.1.2.4'];
const AAAA = ['fd00::3'];
const LOOPBACK = '127.0.0.1';

/** One question as the server got it; `send` answers on the transport it came by. */
interface Incoming {
  id: number;
  name: string;
  type: DnsQueryType;
  transport: 'udp' | 'tcp';
  /** The client's source port (UDP): one port per client socket. */
  from: number;
  send(reply: Buffer): void;
}

interface Server {
  port: number;
  queries: Incoming[];
  close(): Promise<void>;
}

function response(id: number, name: string, type: DnsQueryType, data: string[], extraFlags = 0): Buffer {
  return packet.encode({
    type: 'response',
    id,
    flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | extraFlags,
    questions: [{ type, name, class: 'IN' }],
    answers: data.map((d) => ({ type, name, ttl: 30, data: d })),
  });
}

/** The full answer to `q` from this file's records. */
const answer = (q: Incoming): Buffer => response(q.id, q.name, q.type, q.type === 'A' ? A : AAAA);

/** A DNS server on 127.0.0.1, UDP and TCP on one port, that hands every A or AAAA question to `onQuery`. */
async function startServer(onQuery: (q: Incoming) => void): Promise<Server> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const queries: Incoming[] = [];
    try {
      const listener = await listenDns(LOOPBACK, 0, (q, transport, from, send) => {
        const question = q.questions?.[0];
        if (question === undefined || (question.type !== 'A' && question.type !== 'AAAA')) return;
        const incoming: Incoming = { id: q.id ?? 0, name: question.name, type: question.type, transport, from, send };
        queries.push(incoming);
        onQuery(incoming);
      });
      return { port: listener.port, queries, close: () => listener.close() };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no free port for both UDP and TCP on 127.0.0.1');
}

interface Counting {
  transport: DnsTransport;
  udp: () => number;
  closed: () => number;
  received: () => number;
  tcp: () => number;
}

/** The real transport, counting the sockets it opens, their closes and the messages they receive. */
function counting(): Counting {
  let udp = 0;
  let closed = 0;
  let received = 0;
  let tcp = 0;
  const transport: DnsTransport = {
    createUdpSocket(type) {
      udp++;
      const socket = realTransport.createUdpSocket(type);
      socket.on('close', () => closed++);
      socket.on('message', () => received++);
      return socket;
    },
    connectTcp(port, host) {
      tcp++;
      return realTransport.connectTcp(port, host);
    },
  };
  return { transport, udp: () => udp, closed: () => closed, received: () => received, tcp: () => tcp };
}

/** Ends every exchange still open once the file is done: a failing test must not keep the process alive. */
const leftovers = new AbortController();
after(() => leftovers.abort());

/** queryDnsTypes for both types of REG at the loopback server, on fake time (1 s budget). */
function ask(
  port: number,
  types: readonly [DnsQueryType, DnsQueryType],
  c: Counting,
  time: FakeTime,
  signal = leftovers.signal,
): Promise<[DnsQueryResult, DnsQueryResult]> {
  return queryDnsTypes({
    server: LOOPBACK,
    port,
    name: REG,
    types,
    timeoutMs: 1000,
    transport: c.transport,
    clock: time,
    timers: time,
    signal,
  });
}

/** The source ports the server saw each type from (UDP), sorted by port. */
function typesBySourcePort(s: Server): string[][] {
  const byPort = new Map<number, string[]>();
  for (const q of s.queries.filter((x) => x.transport === 'udp')) byPort.set(q.from, [...(byPort.get(q.from) ?? []), q.type].sort());
  return [...byPort.entries()].sort(([a], [b]) => a - b).map(([, types]) => types);
}

test('A and AAAA share one UDP socket, answers in the order asked', async () => {
  const server = await startServer((q) => q.send(answer(q)));
  try {
    const time = new FakeTime();
    const c = counting();
    const results = await within(ask(server.port, ['AAAA', 'A'], c, time), 5000, 'both answers');
    assert.equal(c.udp(), 1, 'one socket for both types');
    assert.deepEqual(typesBySourcePort(server), [['A', 'AAAA']], 'both questions from the same source port');
    assert.deepEqual(
      results.map((r) => [r.rcode, r.answers, r.transport, r.truncated, r.error, r.seconds]),
      [
        ['NOERROR', AAAA, 'udp', false, undefined, 0],
        ['NOERROR', A, 'udp', false, undefined, 0],
      ],
    );
    await until(() => c.closed() === 1, 5000, 'the socket to close once both types have their answer');
    assert.equal(time.pending, 0, 'the budget timer is cleared');
  } finally {
    await server.close();
  }
});

test('DNS stage: one UDP socket per nameserver for A and AAAA (two nameservers, two sockets)', async () => {
  const server = await startServer((q) => q.send(answer(q)));
  try {
    const time = new FakeTime();
    const ctx: ProbeContext = {
      signal: leftovers.signal,
      deadlineAt: time.now() + 5000,
      clock: time,
      timers: time,
      log: silentLog,
      wallNow: Date.now,
    };
    // The same loopback server listed twice: two nameservers to the stage, no other address needed.
    const resolvConf = parseResolvConf(`nameserver ${LOOPBACK}\nnameserver ${LOOPBACK}\noptions timeout:1 attempts:1\n`);
    const c = counting();
    const out = await within(
      dnsStage(ctx, { host: REG }, { resolvConf, port: server.port, transport: c.transport }),
      5000,
      'the DNS stage',
    );
    assert.equal(out.ok, true);
    assert.equal(out.degraded, false);
    assert.deepEqual(out.detail.addresses, [...A, ...AAAA]);
    assert.deepEqual(
      out.detail.nameservers.map((n) => n.rcode),
      ['NOERROR', 'NOERROR'],
    );
    assert.equal(c.udp(), 2, 'one socket per nameserver, not one per nameserver and type');
    assert.deepEqual(typesBySourcePort(server), [
      ['A', 'AAAA'],
      ['A', 'AAAA'],
    ]);
  } finally {
    await server.close();
  }
});

test('replies in the other order, with a wrong id or a wrong question among them: each type gets its own answer and seconds', async () => {
  let pendingA: Incoming | undefined;
  let sent = 0;
  const server = await startServer((q) => {
    const send = (reply: Buffer): void => {
      sent++;
      q.send(reply);
    };
    // Once both questions are in: decoys, then AAAA's answer; A's waits for the test.
    const a = server.queries.find((x) => x.type === 'A');
    const aaaa = server.queries.find((x) => x.type === 'AAAA');
    if (server.queries.length !== 2 || a === undefined || aaaa === undefined) return;
    let stranger = 1;
    while (stranger === a.id || stranger === aaaa.id) stranger++;
    send(response(stranger, REG, 'AAAA', ['fd00::bad']));
    send(response(a.id, 'other.lab.test', 'A', ['10.6.6.6']));
    // A's id with the AAAA question: matches neither (unless both ids drew the same number).
    if (a.id !== aaaa.id) send(response(a.id, REG, 'AAAA', ['fd00::bad']));
    send(answer(aaaa));
    pendingA = a;
  });
  try {
    const time = new FakeTime();
    const c = counting();
    const run = track(ask(server.port, ['A', 'AAAA'], c, time));
    await until(() => pendingA !== undefined && c.received() >= sent, 5000, 'the decoys and the AAAA answer at the client');
    assert.equal(run.settled(), false, 'A still waits: no decoy was taken for its answer');
    time.advance(250);
    pendingA?.send(answer(pendingA));
    const [a, aaaa] = await within(run.p, 5000, 'the A answer');
    assert.deepEqual([a.rcode, a.answers, a.error, a.seconds], ['NOERROR', A, undefined, 0.25]);
    assert.deepEqual([aaaa.rcode, aaaa.answers, aaaa.error, aaaa.seconds], ['NOERROR', AAAA, undefined, 0]);
    assert.equal(c.udp(), 1);
    assert.deepEqual(typesBySourcePort(server), [['A', 'AAAA']]);
  } finally {
    await server.close();
  }
});

test('one type truncated: only that type is retried over TCP, the other keeps its UDP answer', async () => {
  const server = await startServer((q) => {
    if (q.type === 'A' && q.transport === 'udp') q.send(response(q.id, q.name, 'A', [], packet.TRUNCATED_RESPONSE));
    else q.send(answer(q));
  });
  try {
    const time = new FakeTime();
    const c = counting();
    const [a, aaaa] = await within(ask(server.port, ['A', 'AAAA'], c, time), 5000, 'both answers');
    assert.deepEqual([a.rcode, a.answers, a.transport, a.truncated, a.error], ['NOERROR', A, 'tcp', true, undefined]);
    assert.deepEqual([aaaa.rcode, aaaa.answers, aaaa.transport, aaaa.truncated, aaaa.error], ['NOERROR', AAAA, 'udp', false, undefined]);
    assert.deepEqual(
      server.queries.map((q) => `${q.type}/${q.transport}`),
      ['A/udp', 'AAAA/udp', 'A/tcp'],
    );
    assert.deepEqual([c.udp(), c.tcp()], [1, 1], 'one UDP socket for both types, one TCP connection for the truncated one');
    assert.deepEqual(typesBySourcePort(server), [['A', 'AAAA']]);
  } finally {
    await server.close();
  }
});

test("a silent server: both types time out on the one budget, or on the caller's signal, and the socket closes", async () => {
  const server = await startServer(() => {});
  try {
    const time = new FakeTime();
    const c = counting();
    const run = track(ask(server.port, ['A', 'AAAA'], c, time));
    await until(() => server.queries.length >= 2, 5000, 'both questions at the server');
    assert.equal(time.pending, 1, 'one budget timer for the whole exchange');
    time.advance(999);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still waiting 1 ms before the budget');
    time.advance(1);
    const results = await within(run.p, 5000, 'both timeouts');
    assert.deepEqual(
      results.map((r) => [r.error, r.rcode, r.answers, r.transport, r.seconds]),
      [
        ['timeout', null, [], 'udp', 1],
        ['timeout', null, [], 'udp', 1],
      ],
    );
    assert.equal(c.udp(), 1);
    assert.deepEqual(typesBySourcePort(server), [['A', 'AAAA']]);
    await until(() => c.closed() === 1, 5000, 'the socket to close at the timeout');

    const controller = new AbortController();
    const aborted = track(ask(server.port, ['A', 'AAAA'], c, time, controller.signal));
    await until(() => server.queries.length >= 4, 5000, 'the second pair of questions at the server');
    controller.abort();
    const onAbort = await within(aborted.p, 5000, 'both types after the abort');
    assert.deepEqual(
      onAbort.map((r) => r.error),
      ['timeout', 'timeout'],
    );
    assert.equal(c.udp(), 2);
    await until(() => c.closed() === 2, 5000, 'the socket to close at the abort');
    assert.equal(time.pending, 0, 'the budget timer is cleared on abort');
  } finally {
    await server.close();
  }
});

test('ICMP port unreachable (closed loopback port): both types unreachable at once, from one socket', async () => {
  const probe = dgram.createSocket('udp4');
  await within(new Promise<void>((resolve) => probe.bind(0, LOOPBACK, resolve)), 5000, 'a UDP socket to bind');
  const port = probe.address().port;
  await within(new Promise<void>((resolve) => probe.close(() => resolve())), 5000, 'the UDP socket to close');
  const time = new FakeTime();
  const c = counting();
  // Time never advances: a result at all proves neither type waited for the budget.
  const results = await within(ask(port, ['A', 'AAAA'], c, time), 5000, 'both types on a closed port');
  assert.deepEqual(
    results.map((r) => [r.error, r.errorCode, r.rcode, r.seconds]),
    [
      ['unreachable', 'ECONNREFUSED', null, 0],
      ['unreachable', 'ECONNREFUSED', null, 0],
    ],
  );
  assert.equal(c.udp(), 1);
  await until(() => c.closed() === 1, 5000, 'the socket to close');
});
