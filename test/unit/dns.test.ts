import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import * as packet from 'dns-packet';
import { dnsStage, type DnsOptions } from '../../src/probe/stages/dns.js';
import {
  queryDns,
  realTransport,
  type DnsQueryOptions,
  type DnsQueryResult,
  type DnsTransport,
  type DnsUdpSocket,
} from '../../src/net/dns-query.js';
import { EventEmitter } from 'node:events';
import { parseResolvConf } from '../../src/node-config/resolv-conf.js';
import { parseHosts } from '../../src/node-config/hosts-file.js';
import { realClock, silentLog, type ProbeContext } from '../../src/model/types.js';
import { startDnsServers, type DnsServer, type DnsServerOptions } from '../support/dns-server.js';
import { FakeTime, track } from '../support/fake-time.js';
import { until, within } from '../support/within.js';

/** The real transport's functions as plain functions (the interface declares them as methods). */
const realUdp: DnsTransport['createUdpSocket'] = (type) => realTransport.createUdpSocket(type);
const realTcp: DnsTransport['connectTcp'] = (port, host) => realTransport.connectTcp(port, host);

const REG = 'registry.lab.test';
const records = { [REG]: { A: ['10.1.2.3', '10.1.2.4'], AAAA: ['fd00::3'] } };

const contexts: Array<() => void> = [];
after(() => contexts.forEach((dispose) => dispose()));

function makeCtx(deadlineMs = 5000): ProbeContext {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deadlineMs);
  contexts.push(() => clearTimeout(timer));
  return {
    signal: controller.signal,
    deadlineAt: realClock.now() + deadlineMs,
    clock: realClock,
    log: silentLog,
    wallNow: Date.now,
  };
}

/** A context on fake time: the probe deadline, stage timers and query budgets all wait for time.advance(). */
function fakeCtx(time: FakeTime, deadlineMs = 5000): ProbeContext {
  const controller = new AbortController();
  time.setTimeout(() => controller.abort(), deadlineMs);
  return { signal: controller.signal, deadlineAt: time.now() + deadlineMs, clock: time, timers: time, log: silentLog, wallNow: Date.now };
}

/** Start servers on 127.0.0.<first>… and build resolv.conf naming them (plus `extra` addresses). */
async function lab(specs: DnsServerOptions[], conf: string, opts: { first?: number; nameservers?: string[] } = {}) {
  const servers = await startDnsServers(specs, opts.first ?? 60);
  const names = opts.nameservers ?? servers.map((s) => s.address);
  const resolvConf = parseResolvConf(`${names.map((n) => `nameserver ${n}`).join('\n')}\n${conf}\n`);
  const port = servers[0]?.port ?? 0;
  const close = (): Promise<unknown> => Promise.all(servers.map((s) => s.close()));
  const opt = (extra: Partial<DnsOptions> = {}): DnsOptions => ({ resolvConf, port, ...extra });
  return { servers, port, opt, close };
}

const seen = (s: DnsServer | undefined): string[] => (s?.queries ?? []).map((q) => `${q.name}/${q.type}/${q.transport}`);

test('ok: A and AAAA from one nameserver, IPv4 first, detail per nameserver', async () => {
  const l = await lab([{ answers: records }], 'options timeout:1 attempts:1');
  try {
    const time = new FakeTime();
    const out = await within(dnsStage(fakeCtx(time), { host: REG }, l.opt()), 5000, 'the DNS stage');
    assert.equal(out.ok, true);
    assert.equal(out.degraded, false);
    assert.equal(out.host, REG);
    assert.deepEqual(out.detail.addresses, ['10.1.2.3', '10.1.2.4', 'fd00::3']);
    assert.equal(out.detail.source, 'dns');
    assert.equal(out.detail.name, REG);
    assert.equal(out.detail.nameservers.length, 1);
    const ns = out.detail.nameservers[0];
    assert.ok(ns, 'a nameserver line');
    assert.equal(ns.server, `127.0.0.60:${l.port}`);
    assert.equal(ns.rcode, 'NOERROR');
    assert.equal(out.seconds, 0, 'answered with no time passing on the stage clock');
    assert.deepEqual(seen(l.servers[0]).sort(), [`${REG}/A/udp`, `${REG}/AAAA/udp`]);
  } finally {
    await l.close();
  }
});

test('CNAME chain inside the answer is followed', async () => {
  const l = await lab(
    [{ answers: { [REG]: { CNAME: 'edge.cdn.test' }, 'edge.cdn.test': { A: ['10.9.9.9'] } } }],
    'options timeout:1 attempts:1',
  );
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt({ families: ['A'] }));
    assert.equal(out.ok, true);
    assert.deepEqual(out.detail.addresses, ['10.9.9.9']);
  } finally {
    await l.close();
  }
});

test('failures map to reasons: nxdomain, no answer, CNAME to nowhere, servfail, refused', async () => {
  const l = await lab(
    [
      {
        answers: { 'empty.lab.test': {}, 'dangling.lab.test': { CNAME: 'gone.lab.test' } },
        behaviour: { 'bad.lab.test': 'servfail', 'closed.lab.test': 'refused' },
      },
    ],
    'options timeout:1 attempts:1',
  );
  try {
    const cases: Array<[string, string, string]> = [
      ['missing.lab.test', 'dns_nxdomain', 'NXDOMAIN'],
      ['empty.lab.test', 'dns_no_answer', 'NOERROR'],
      ['dangling.lab.test', 'dns_no_answer', 'NOERROR'],
      ['bad.lab.test', 'dns_servfail', 'SERVFAIL'],
      ['closed.lab.test', 'dns_refused', 'REFUSED'],
    ];
    for (const [host, reason, rcode] of cases) {
      const out = await dnsStage(makeCtx(), { host }, l.opt());
      assert.equal(out.ok, false, host);
      assert.equal(out.reason, reason, host);
      const ns = out.detail.nameservers[0];
      assert.ok(ns, 'a nameserver line');
      assert.equal(ns.rcode, rcode, host);
      assert.equal(ns.error, undefined, host);
    }
  } finally {
    await l.close();
  }
});

test('timeout: a dropping nameserver gives dns_timeout after timeout × attempts', async () => {
  const l = await lab([{ defaultBehaviour: 'drop' }], 'options timeout:1 attempts:1');
  try {
    const time = new FakeTime();
    const run = track(dnsStage(fakeCtx(time), { host: REG }, l.opt()));
    await until(() => (l.servers[0]?.queries.length ?? 0) >= 2, 5000, 'the A and AAAA queries at the nameserver');
    time.advance(999);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still waiting 1 ms before timeout:1');
    time.advance(1);
    const out = await within(run.p, 5000, 'the DNS stage after its timeout');
    assert.equal(out.reason, 'dns_timeout');
    const ns = out.detail.nameservers[0];
    assert.ok(ns, 'a nameserver line');
    assert.equal(ns.error, 'timeout');
    assert.equal(ns.rcode, null);
    assert.equal(out.seconds, 1);
  } finally {
    await l.close();
  }
});

test('unreachable: ICMP port unreachable from a silent loopback address', async () => {
  const l = await lab([{ answers: records }], 'options timeout:1 attempts:1', { nameservers: ['127.0.0.99'] });
  try {
    const time = new FakeTime();
    // Time never advances: a result at all proves the stage did not wait for its timeout.
    const out = await within(dnsStage(fakeCtx(time), { host: REG }, l.opt()), 5000, 'the DNS stage on an unreachable nameserver');
    assert.equal(out.reason, 'dns_unreachable');
    const ns = out.detail.nameservers[0];
    assert.ok(ns, 'a nameserver line');
    assert.equal(ns.error, 'unreachable');
    assert.equal(ns.code, 'ECONNREFUSED');
    assert.equal(out.seconds, 0, 'unreachable is reported without waiting for the timeout');
  } finally {
    await l.close();
  }
});

test('first nameserver dead, second answers: ok and degraded (both kept in detail)', async () => {
  const l = await lab([{ answers: records }], 'options timeout:1 attempts:1', { nameservers: ['127.0.0.98', '127.0.0.60'] });
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt());
    assert.equal(out.ok, true);
    assert.equal(out.degraded, true);
    assert.deepEqual(out.detail.addresses, ['10.1.2.3', '10.1.2.4', 'fd00::3']);
    assert.deepEqual(
      out.detail.nameservers.map((n) => n.error ?? n.rcode),
      ['unreachable', 'NOERROR'],
    );
  } finally {
    await l.close();
  }
});

test('first nameserver SERVFAIL, second answers: ok and degraded', async () => {
  const l = await lab([{ defaultBehaviour: 'servfail' }, { answers: records }], 'options timeout:1 attempts:1');
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt({ families: ['A'] }));
    assert.equal(out.ok, true);
    assert.equal(out.degraded, true);
    assert.deepEqual(
      out.detail.nameservers.map((n) => n.rcode),
      ['SERVFAIL', 'NOERROR'],
    );
  } finally {
    await l.close();
  }
});

test('split answers: the first server that answers decides, the disagreement degrades', async () => {
  const good = { answers: records };
  const nx = { defaultBehaviour: 'nxdomain' as const };
  const a = await lab([good, nx], 'options timeout:1 attempts:1');
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, a.opt());
    assert.equal(out.ok, true);
    assert.equal(out.degraded, true);
  } finally {
    await a.close();
  }
  const b = await lab([nx, good], 'options timeout:1 attempts:1');
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, b.opt());
    assert.equal(out.ok, false);
    assert.equal(out.reason, 'dns_nxdomain');
    assert.deepEqual(
      out.detail.nameservers.map((n) => n.rcode),
      ['NXDOMAIN', 'NOERROR'],
    );
  } finally {
    await b.close();
  }
});

test('all nameservers fail differently: the first one names the reason, all are in detail', async () => {
  const l = await lab([{ defaultBehaviour: 'refused' }, { defaultBehaviour: 'servfail' }], 'options timeout:1 attempts:1', {
    nameservers: ['127.0.0.60', '127.0.0.61', '127.0.0.97'],
  });
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt());
    assert.equal(out.reason, 'dns_refused');
    assert.deepEqual(
      out.detail.nameservers.map((n) => n.error ?? n.rcode),
      ['REFUSED', 'SERVFAIL', 'unreachable'],
    );
  } finally {
    await l.close();
  }
});

test('search list and ndots: dotless name tries search domains first, then as-is', async () => {
  const l = await lab([{ answers: { 'registry.b.test': { A: ['10.2.2.2'] } } }], 'search a.test b.test\noptions timeout:1 attempts:1');
  try {
    const out = await dnsStage(makeCtx(), { host: 'registry' }, l.opt({ families: ['A'] }));
    assert.equal(out.ok, true);
    assert.equal(out.detail.name, 'registry.b.test');
    assert.deepEqual(seen(l.servers[0]), ['registry.a.test/A/udp', 'registry.b.test/A/udp']);
    assert.deepEqual(
      out.detail.tried?.map((t) => t.outcome),
      ['nxdomain', 'ok'],
    );
  } finally {
    await l.close();
  }
});

test('search list and ndots: enough dots tries as-is first; ndots:5 searches first; trailing dot is absolute', async () => {
  const l = await lab([{ answers: {} }], 'search a.test b.test\noptions timeout:1 attempts:1');
  const l5 = await lab([{ answers: {} }], 'search a.test\noptions ndots:5 timeout:1 attempts:1', { first: 70 });
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt({ families: ['A'] }));
    assert.equal(out.reason, 'dns_nxdomain');
    assert.deepEqual(seen(l.servers[0]), [`${REG}/A/udp`, `${REG}.a.test/A/udp`, `${REG}.b.test/A/udp`]);
    l.servers[0]?.queries.splice(0);
    await dnsStage(makeCtx(), { host: `${REG}.` }, l.opt({ families: ['A'] }));
    assert.deepEqual(seen(l.servers[0]), [`${REG}/A/udp`]);
    await dnsStage(makeCtx(), { host: REG }, l5.opt({ families: ['A'] }));
    assert.deepEqual(seen(l5.servers[0]), [`${REG}.a.test/A/udp`, `${REG}/A/udp`]);
  } finally {
    await l.close();
    await l5.close();
  }
});

test('a name that exists without addresses in a search domain gives dns_no_answer over a later NXDOMAIN', async () => {
  const l = await lab([{ answers: { 'registry.a.test': {} } }], 'search a.test\noptions timeout:1 attempts:1');
  try {
    const out = await dnsStage(makeCtx(), { host: 'registry' }, l.opt({ families: ['A'] }));
    assert.equal(out.reason, 'dns_no_answer');
    assert.equal(out.detail.name, 'registry.a.test');
    assert.equal(l.servers[0]?.queries.length, 2);
  } finally {
    await l.close();
  }
});

test('every nameserver unreachable: the search stops at the first candidate as glibc does', async () => {
  const l = await lab([{}], 'search a.test b.test\noptions timeout:1 attempts:1', { nameservers: ['127.0.0.96'] });
  try {
    const out = await dnsStage(makeCtx(), { host: 'registry' }, l.opt({ families: ['A'] }));
    assert.equal(out.reason, 'dns_unreachable');
    assert.equal(out.detail.name, 'registry.a.test');
    assert.equal(out.detail.tried, undefined);
  } finally {
    await l.close();
  }
});

test('truncated UDP reply is retried over TCP', async () => {
  const l = await lab([{ answers: records, behaviour: { [REG]: 'truncate' } }], 'options timeout:1 attempts:1');
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt({ families: ['A'] }));
    assert.equal(out.ok, true);
    assert.deepEqual(out.detail.addresses, ['10.1.2.3', '10.1.2.4']);
    assert.deepEqual(seen(l.servers[0]), [`${REG}/A/udp`, `${REG}/A/tcp`]);
  } finally {
    await l.close();
  }
});

test('hosts file and IP literals answer without any query', async () => {
  const l = await lab([{ answers: records }], 'options timeout:1 attempts:1');
  try {
    const hosts = parseHosts('10.7.7.7 registry.lab.test\n');
    const h = await dnsStage(makeCtx(), { host: 'Registry.Lab.Test' }, l.opt({ hosts }));
    assert.equal(h.ok, true);
    assert.equal(h.detail.source, 'hosts');
    assert.deepEqual(h.detail.addresses, ['10.7.7.7']);
    const v4 = await dnsStage(makeCtx(), { host: '10.1.2.3' }, l.opt());
    assert.deepEqual([v4.ok, v4.detail.source, v4.detail.addresses], [true, 'literal', ['10.1.2.3']]);
    const v6 = await dnsStage(makeCtx(), { host: '[fd00::3]' }, l.opt());
    assert.deepEqual([v6.ok, v6.detail.source, v6.detail.addresses], [true, 'literal', ['fd00::3']]);
    // hosts entry of the wrong family falls through to DNS
    const v6only = await dnsStage(makeCtx(), { host: REG }, l.opt({ hosts: parseHosts('fd00::7 registry.lab.test\n'), families: ['A'] }));
    assert.equal(v6only.detail.source, 'dns');
    assert.deepEqual(seen(l.servers[0]), [`${REG}/A/udp`]);
  } finally {
    await l.close();
  }
});

test('the probe deadline caps the stage when nameservers drop', async () => {
  const l = await lab([{ defaultBehaviour: 'drop' }, { defaultBehaviour: 'drop' }], 'search a.test b.test\noptions timeout:5 attempts:3');
  try {
    const time = new FakeTime();
    const run = track(dnsStage(fakeCtx(time, 400), { host: 'registry' }, l.opt()));
    await until(() => (l.servers[0]?.queries.length ?? 0) >= 1, 5000, 'the first query at the nameserver');
    time.advance(399);
    await new Promise((r) => setImmediate(r));
    assert.equal(run.settled(), false, 'still waiting before the 400 ms deadline');
    time.advance(1);
    const out = await within(run.p, 5000, 'the DNS stage at the probe deadline');
    assert.equal(out.reason, 'dns_timeout');
    assert.equal(out.seconds, 0.4, 'ended at the probe deadline, not after timeout:5 × attempts:3');
  } finally {
    await l.close();
  }
});

test('retries follow attempts; a reply in round 2 from the first server beats nothing', async () => {
  const calls: string[] = [];
  const answered = (answers: string[]): DnsQueryResult => ({ rcode: 'NOERROR', answers, truncated: false, transport: 'udp', seconds: 0 });
  const timedOut: DnsQueryResult = { rcode: null, answers: [], truncated: false, transport: 'udp', error: 'timeout', seconds: 0 };
  const query = (o: DnsQueryOptions): Promise<DnsQueryResult> => {
    calls.push(o.server);
    const n = calls.filter((s) => s === o.server).length;
    if (o.server === '10.0.0.1') return Promise.resolve(n >= 2 ? answered(['10.1.1.1']) : timedOut);
    return Promise.resolve({ ...timedOut, error: 'unreachable', errorCode: 'ECONNREFUSED' });
  };
  const resolvConf = parseResolvConf('nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions attempts:3\n');
  const out = await dnsStage(makeCtx(), { host: REG }, { resolvConf, query, families: ['A'] });
  assert.equal(out.ok, true);
  assert.equal(out.degraded, true);
  assert.deepEqual(out.detail.addresses, ['10.1.1.1']);
  assert.deepEqual(calls.filter((s) => s === '10.0.0.1').length, 2, 'retried once after the timeout, then stopped');
  assert.deepEqual(calls.filter((s) => s === '10.0.0.2').length, 1, 'unreachable is not a timeout: no retry');
});

test('queryDns ignores replies whose id or question do not match', async () => {
  const sock = dgram.createSocket('udp4');
  await within(new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve)), 5000, 'the UDP socket to bind');
  sock.on('message', (msg, rinfo) => {
    const q = packet.decode(msg);
    const reply = (id: number, name: string, data: string): Buffer =>
      packet.encode({
        type: 'response',
        id,
        flags: packet.RECURSION_DESIRED,
        questions: [{ type: 'A', name }],
        answers: [{ type: 'A', name, data }],
      });
    sock.send(reply(((q.id ?? 0) + 1) & 0xffff, REG, '10.6.6.6'), rinfo.port, rinfo.address);
    sock.send(reply(q.id ?? 0, 'other.lab.test', '10.6.6.7'), rinfo.port, rinfo.address);
    setTimeout(() => sock.send(reply(q.id ?? 0, REG, '10.1.2.3'), rinfo.port, rinfo.address), 20);
  });
  try {
    const res = await queryDns({ server: '127.0.0.1', port: sock.address().port, name: REG, type: 'A', timeoutMs: 1000 });
    assert.equal(res.rcode, 'NOERROR');
    assert.deepEqual(res.answers, ['10.1.2.3']);
    assert.equal(res.error, undefined);
  } finally {
    await within(new Promise<void>((resolve) => sock.close(() => resolve())), 5000, 'the UDP socket to close');
  }
});

test('a silent first nameserver is not retried once the second has decided the verdict', async () => {
  // attempts:3 would have the dead server asked three times (3 s) if every
  // retry were awaited; glibc's verdict is already fixed after round one.
  const l = await lab([{ defaultBehaviour: 'drop' }, { answers: records }], 'options timeout:1 attempts:3');
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt());
    assert.equal(out.ok, true);
    assert.equal(out.degraded, true);
    assert.deepEqual(
      out.detail.nameservers.map((n) => n.error ?? n.rcode),
      ['timeout', 'NOERROR'],
    );
    // One round only: one A and one AAAA query reached the dead server.
    assert.equal(l.servers[0]?.queries.length, 2);
  } finally {
    await l.close();
  }
});

// ---- socket errors settle the query (issue 6: an unroutable nameserver crashed the process) ----

/** What the kernel says for a nameserver without a route (connect(2) on a UDP socket). */
const UNROUTABLE = '2001:db8::53';
function enetunreach(address: string, port: number): Error {
  return Object.assign(new Error(`connect ENETUNREACH ${address}:${port}`), { code: 'ENETUNREACH', errno: -101, syscall: 'connect' });
}

/**
 * Real sockets, except that connect() to UNROUTABLE fails as dgram reports
 * it: through the connect callback (not the 'error' event), without any
 * packet leaving. Sending on that unconnected socket throws ERR_SOCKET_BAD_PORT.
 */
const unroutableTransport: DnsTransport = {
  createUdpSocket(type) {
    const socket = dgram.createSocket(type);
    const connect = socket.connect.bind(socket) as (port: number, address: string, cb: (err?: Error | null) => void) => void;
    return Object.assign(socket, {
      connect(port: number, address: string, cb: (err?: Error | null) => void): void {
        if (address === UNROUTABLE) process.nextTick(() => cb(enetunreach(address, port)));
        else connect(port, address, cb);
      },
    });
  },
  connectTcp: realTcp,
};

test('queryDns: a UDP connect failing with ENETUNREACH settles as unreachable with the errno', async () => {
  const res = await queryDns({ server: UNROUTABLE, port: 53, name: REG, type: 'AAAA', timeoutMs: 5000, transport: unroutableTransport });
  assert.equal(res.error, 'unreachable');
  assert.equal(res.errorCode, 'ENETUNREACH');
  assert.equal(res.rcode, null);
});

test('an unroutable IPv6 nameserver behind a working one: ok, degraded, dns_unreachable detail with the errno', async () => {
  const l = await lab([{ answers: records }], 'options timeout:1 attempts:2', { nameservers: ['127.0.0.60', UNROUTABLE] });
  try {
    const out = await dnsStage(makeCtx(), { host: REG }, l.opt({ transport: unroutableTransport }));
    assert.equal(out.ok, true);
    assert.equal(out.degraded, true);
    assert.deepEqual(out.detail.addresses, ['10.1.2.3', '10.1.2.4', 'fd00::3']);
    const bad = out.detail.nameservers[1];
    assert.deepEqual([bad?.error, bad?.code], ['unreachable', 'ENETUNREACH']);
    const ns = out.detail.nameservers[0];
    assert.ok(ns, 'a nameserver line');
    assert.equal(ns.rcode, 'NOERROR');
  } finally {
    await l.close();
  }
});

test('the only nameserver unroutable: dns_unreachable naming it, no crash', async () => {
  const resolvConf = parseResolvConf(`nameserver ${UNROUTABLE}\noptions timeout:1 attempts:2\n`);
  const out = await dnsStage(makeCtx(), { host: REG }, { resolvConf, transport: unroutableTransport });
  assert.equal(out.ok, false);
  assert.equal(out.reason, 'dns_unreachable');
  const ns = out.detail.nameservers[0];
  assert.ok(ns, 'a nameserver line');
  assert.equal(ns.code, 'ENETUNREACH');
});

/** A UDP socket that connects, then fails or hangs as told; nothing goes on the wire. */
class FakeUdp extends EventEmitter implements DnsUdpSocket {
  closed = false;
  constructor(private readonly mode: 'send-throws' | 'send-fails' | 'silent' | 'connect-hangs') {
    super();
  }
  connect(_port: number, _address: string, cb: (err?: Error | null) => void): void {
    if (this.mode !== 'connect-hangs') process.nextTick(() => cb(null));
  }
  send(_msg: Buffer, cb: (err: Error | null) => void): void {
    if (this.mode === 'send-throws') throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
    if (this.mode === 'send-fails') process.nextTick(() => cb(Object.assign(new Error('send EPERM'), { code: 'EPERM' })));
  }
  close(): void {
    this.closed = true;
  }
}

test('queryDns: send errors (thrown or called back) settle the query and close the socket', async () => {
  for (const mode of ['send-throws', 'send-fails'] as const) {
    const sock = new FakeUdp(mode);
    const transport: DnsTransport = { createUdpSocket: () => sock, connectTcp: realTcp };
    const res = await queryDns({ server: '127.0.0.1', port: 53, name: REG, type: 'A', timeoutMs: 5000, transport });
    assert.ok(res.error === 'network' || res.error === 'unreachable', mode);
    assert.equal(sock.closed, true, mode);
  }
});

test('queryDns: a socket factory that throws settles the query', async () => {
  const transport: DnsTransport = {
    createUdpSocket: () => {
      throw Object.assign(new Error('socket EMFILE'), { code: 'EMFILE' });
    },
    connectTcp: realTcp,
  };
  const res = await queryDns({ server: '127.0.0.1', port: 53, name: REG, type: 'A', timeoutMs: 5000, transport });
  assert.deepEqual([res.error, res.errorCode], ['network', 'EMFILE']);
});

test("queryDns: a connect that never calls back is bounded by the timeout and by the caller's signal", async () => {
  const transport: DnsTransport = { createUdpSocket: () => new FakeUdp('connect-hangs'), connectTcp: realTcp };
  const res = await queryDns({ server: '127.0.0.1', port: 53, name: REG, type: 'A', timeoutMs: 20, transport });
  assert.equal(res.error, 'timeout');
  const controller = new AbortController();
  const pending = queryDns({
    server: '127.0.0.1',
    port: 53,
    name: REG,
    type: 'A',
    timeoutMs: 60_000,
    transport,
    signal: controller.signal,
  });
  controller.abort();
  assert.equal((await pending).error, 'timeout');
});

test('TCP retry: a connect that throws or fails settles the query (truncated reply from a loopback server)', async () => {
  const l = await lab([{ answers: records, behaviour: { [REG]: 'truncate' } }], '');
  try {
    const throwing: DnsTransport = {
      createUdpSocket: realUdp,
      connectTcp: () => {
        throw Object.assign(new Error('connect EADDRNOTAVAIL'), { code: 'EADDRNOTAVAIL' });
      },
    };
    const a = await queryDns({ server: '127.0.0.60', port: l.port, name: REG, type: 'A', timeoutMs: 5000, transport: throwing });
    assert.deepEqual([a.transport, a.truncated, a.errorCode], ['tcp', true, 'EADDRNOTAVAIL']);
    const closing: DnsTransport = {
      createUdpSocket: realUdp,
      connectTcp: () => {
        const s = new EventEmitter() as EventEmitter & { write(): boolean; destroy(): void };
        s.write = () => true;
        s.destroy = () => {};
        process.nextTick(() => s.emit('close'));
        return s;
      },
    };
    const b = await queryDns({ server: '127.0.0.60', port: l.port, name: REG, type: 'A', timeoutMs: 5000, transport: closing });
    assert.deepEqual([b.transport, b.error], ['tcp', 'network']);
  } finally {
    await l.close();
  }
});
