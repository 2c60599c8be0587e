/**
 * One DNS question to one nameserver, on the wire (dns-packet): UDP on a
 * connected socket (so ICMP port-unreachable surfaces as ECONNREFUSED),
 * random id, replies checked against id and question (mismatches ignored),
 * and a TCP retry (2-byte length prefix) when the reply is truncated.
 * Never throws: every outcome is classified in the result. Every socket
 * error path (a failed connect — ENETUNREACH for an unroutable IPv6
 * nameserver —, a failed or throwing send, a TCP reset or close) settles the
 * query, and every wait on a socket event is bounded by the query's budget.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import type { DecodedPacket } from 'dns-packet';
import { errorCode } from './error-codes.js';
import { realClock, type Clock } from '../model/types.js';
import { realTimers, type Timers } from '../shared/timers.js';

export type DnsQueryType = 'A' | 'AAAA';
export type DnsQueryError = 'timeout' | 'unreachable' | 'network';

/** The part of dgram.Socket the query uses (a test injects a failing one). */
export interface DnsUdpSocket {
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'message', listener: (msg: Buffer) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  connect(port: number, address: string, callback: (err?: Error | null) => void): void;
  send(msg: Buffer, callback: (err: Error | null) => void): void;
  close(): void;
}

/** The part of net.Socket the TCP retry uses. */
export interface DnsTcpSocket {
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'connect' | 'end' | 'close', listener: () => void): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  write(data: Buffer): unknown;
  destroy(): void;
}

/** Socket factory (house style: injected, real sockets by default). */
export interface DnsTransport {
  createUdpSocket(type: 'udp4' | 'udp6'): DnsUdpSocket;
  connectTcp(port: number, host: string): DnsTcpSocket;
}

export const realTransport: DnsTransport = {
  createUdpSocket: (type) => dgram.createSocket(type),
  connectTcp: (port, host) => net.connect({ port, host }),
};

export interface DnsQueryOptions {
  server: string;
  port: number;
  name: string;
  type: DnsQueryType;
  timeoutMs: number;
  signal?: AbortSignal;
  transport?: DnsTransport;
  clock?: Clock | undefined;
  /** The query budget's timer (real timers by default). */
  timers?: Timers | undefined;
}

export interface DnsQueryResult {
  /** 'NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', …; null when no reply came. */
  rcode: string | null;
  /** Addresses of the asked type, following the CNAME chain inside the answer. */
  answers: string[];
  truncated: boolean;
  transport: 'udp' | 'tcp';
  error?: DnsQueryError;
  /** OS error code behind `error`, when there was one. */
  errorCode?: string;
  seconds: number;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);

function classify(err: unknown): { error: DnsQueryError; errorCode?: string } {
  const code = errorCode(err);
  const error: DnsQueryError = code !== undefined && UNREACHABLE_CODES.has(code) ? 'unreachable' : 'network';
  return code === undefined ? { error } : { error, errorCode: code };
}

function normName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function rcodeOf(p: DecodedPacket): string {
  const named = (p as DecodedPacket & { rcode?: unknown }).rcode;
  return typeof named === 'string' ? named : `RCODE_${(p.flags ?? 0) & 0xf}`;
}

/** Addresses of `type` for `qname`, following CNAMEs within the answer section. */
export function addressesFromAnswer(p: DecodedPacket, qname: string, type: DnsQueryType): string[] {
  const answers = p.answers ?? [];
  const out: string[] = [];
  let current = normName(qname);
  const seen = new Set<string>();
  for (let hop = 0; hop < 16 && !seen.has(current); hop++) {
    seen.add(current);
    let next: string | undefined;
    for (const a of answers) {
      if (normName(a.name) !== current) continue;
      if (a.type === type && typeof a.data === 'string' && !out.includes(a.data)) out.push(a.data);
      if (a.type === 'CNAME' && typeof a.data === 'string') next = normName(a.data);
    }
    if (out.length > 0 || next === undefined) break;
    current = next;
  }
  return out;
}

/** True when `p` is the reply to our question (id, QR bit, name and type). */
function matches(p: DecodedPacket, id: number, qname: string, type: DnsQueryType): boolean {
  const q = p.questions?.[0];
  return p.id === id && p.flag_qr && q !== undefined && q.type === type && normName(q.name) === qname;
}

type DnsPacket = typeof import('dns-packet');
let packetModule: Promise<DnsPacket> | undefined;

/**
 * dns-packet is loaded when the first query is sent: an answer from the hosts file or an IP
 * literal never needs it (~15-35 ms of a CLI run). Node gives a CommonJS module's exports as
 * named exports too; a bundle (esbuild) gives them only as `default`: both are read.
 */
function dnsPacket(): Promise<DnsPacket> {
  return (packetModule ??= import('dns-packet').then((m) =>
    typeof m.encode === 'function' ? m : (m as unknown as { default: DnsPacket }).default,
  ));
}

export async function queryDns(opts: DnsQueryOptions): Promise<DnsQueryResult> {
  const packet = await dnsPacket(); // before the clock starts: loading it is not DNS time
  const clock = opts.clock ?? realClock;
  const transport = opts.transport ?? realTransport;
  const started = clock.now();
  const qname = normName(opts.name);
  const id = randomInt(0, 0x10000);
  let query: Buffer;
  try {
    query = packet.encode({
      type: 'query',
      id,
      flags: packet.RECURSION_DESIRED,
      questions: [{ type: opts.type, name: qname, class: 'IN' }],
    });
  } catch (err) {
    return { rcode: null, answers: [], truncated: false, transport: 'udp', ...classify(err), seconds: (clock.now() - started) / 1000 };
  }
  const budget = new AbortController();
  const timers = opts.timers ?? realTimers;
  const timer = timers.setTimeout(() => budget.abort(), Math.max(0, opts.timeoutMs));
  const onAbort = (): void => budget.abort();
  if (opts.signal?.aborted) budget.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const udp = await udpExchange(packet, transport, opts, query, id, qname, budget.signal);
    const seconds = (): number => (clock.now() - started) / 1000;
    if (udp.kind === 'error') return { rcode: null, answers: [], truncated: false, transport: 'udp', ...udp.err, seconds: seconds() };
    if (udp.kind === 'timeout')
      return { rcode: null, answers: [], truncated: false, transport: 'udp', error: 'timeout', seconds: seconds() };
    if (!udp.reply.flag_tc) {
      return {
        rcode: rcodeOf(udp.reply),
        answers: addressesFromAnswer(udp.reply, qname, opts.type),
        truncated: false,
        transport: 'udp',
        seconds: seconds(),
      };
    }
    const tcp = await tcpExchange(packet, transport, opts, query, id, qname, budget.signal);
    if (tcp.kind === 'error') return { rcode: null, answers: [], truncated: true, transport: 'tcp', ...tcp.err, seconds: seconds() };
    if (tcp.kind === 'timeout')
      return { rcode: null, answers: [], truncated: true, transport: 'tcp', error: 'timeout', seconds: seconds() };
    return {
      rcode: rcodeOf(tcp.reply),
      answers: addressesFromAnswer(tcp.reply, qname, opts.type),
      truncated: true,
      transport: 'tcp',
      seconds: seconds(),
    };
  } finally {
    timers.clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

type Exchange =
  { kind: 'reply'; reply: DecodedPacket } | { kind: 'timeout' } | { kind: 'error'; err: { error: DnsQueryError; errorCode?: string } };

function udpExchange(
  packet: DnsPacket,
  transport: DnsTransport,
  opts: DnsQueryOptions,
  query: Buffer,
  id: number,
  qname: string,
  signal: AbortSignal,
): Promise<Exchange> {
  return new Promise((resolve) => {
    let done = false;
    let socket: DnsUdpSocket | undefined;
    const finish = (r: Exchange): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      try {
        socket?.close();
      } catch {
        /* already closed */
      }
      resolve(r);
    };
    const fail = (err: unknown): void => finish({ kind: 'error', err: classify(err) });
    const onAbort = (): void => finish({ kind: 'timeout' });
    if (signal.aborted) {
      finish({ kind: 'timeout' });
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const host = opts.server.split('%')[0] ?? opts.server;
      const s = transport.createUdpSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
      socket = s;
      s.on('error', fail);
      s.on('close', () => finish({ kind: 'error', err: { error: 'network', errorCode: 'ECONNRESET' } }));
      s.on('message', (msg) => {
        let reply: DecodedPacket;
        try {
          reply = packet.decode(msg);
        } catch {
          return;
        }
        if (matches(reply, id, qname, opts.type)) finish({ kind: 'reply', reply });
      });
      // dgram hands a failed connect (ENETUNREACH, EADDRNOTAVAIL, …) to this
      // callback, not to 'error': sending anyway would throw ERR_SOCKET_BAD_PORT.
      s.connect(opts.port, opts.server, (err) => {
        if (done) return;
        if (err) {
          fail(err);
          return;
        }
        try {
          s.send(query, (sendErr) => {
            if (sendErr) fail(sendErr);
          });
        } catch (sendErr) {
          fail(sendErr);
        }
      });
    } catch (err) {
      fail(err);
    }
  });
}

function tcpExchange(
  packet: DnsPacket,
  transport: DnsTransport,
  opts: DnsQueryOptions,
  query: Buffer,
  id: number,
  qname: string,
  signal: AbortSignal,
): Promise<Exchange> {
  return new Promise((resolve) => {
    let done = false;
    let socket: DnsTcpSocket | undefined;
    let buf = Buffer.alloc(0);
    const finish = (r: Exchange): void => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      try {
        socket?.destroy();
      } catch {
        /* already gone */
      }
      resolve(r);
    };
    const fail = (err: unknown): void => finish({ kind: 'error', err: classify(err) });
    const closed = (): void => finish({ kind: 'error', err: { error: 'network', errorCode: 'ECONNRESET' } });
    const onAbort = (): void => finish({ kind: 'timeout' });
    if (signal.aborted) {
      finish({ kind: 'timeout' });
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const s = transport.connectTcp(opts.port, opts.server);
      socket = s;
      s.on('error', fail);
      s.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        try {
          s.write(Buffer.concat([len, query]));
        } catch (err) {
          fail(err);
        }
      });
      s.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (!done && buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) return;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          let reply: DecodedPacket;
          try {
            reply = packet.decode(msg);
          } catch {
            continue;
          }
          if (matches(reply, id, qname, opts.type)) {
            finish({ kind: 'reply', reply });
            return;
          }
        }
      });
      s.on('end', closed);
      s.on('close', closed);
    } catch (err) {
      fail(err);
    }
  });
}
