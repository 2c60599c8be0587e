/**
 * DNS questions for one name to one nameserver, on the wire (dns-packet):
 * every asked type (A, AAAA) goes out on ONE connected UDP socket, as
 * glibc's resolver sends them (a socket per type doubled the sockets, and
 * their CPU, of every probe), and the socket is closed once no type waits
 * on it. Connected, so ICMP port-unreachable surfaces as ECONNREFUSED. Each
 * question has its own random id; a reply counts only for the question whose
 * id and question it carries (mismatches ignored). A truncated reply is
 * retried over TCP (2-byte length prefix) for that type alone.
 * Never throws: every outcome is classified per type. Every socket error path
 * (a failed connect — ENETUNREACH for an unroutable IPv6 nameserver —, a
 * failed or throwing send, a socket error or close) settles every type still
 * waiting on that socket (a TCP retry's, that type alone), and every wait on
 * a socket event is bounded by one budget for the whole exchange.
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

export type DnsQueryTypesOptions<T extends readonly DnsQueryType[] = readonly DnsQueryType[]> = Omit<DnsQueryOptions, 'type'> & {
  types: T;
};

/** One type's question: what goes on the wire and what its reply must carry. */
interface Question {
  type: DnsQueryType;
  id: number;
  query: Buffer;
}

/** One type at one nameserver (queryDnsTypes with that type alone). */
export async function queryDns(opts: DnsQueryOptions): Promise<DnsQueryResult> {
  const { type, ...rest } = opts;
  const [result] = await queryDnsTypes({ ...rest, types: [type] });
  return result;
}

/**
 * Every type of `opts.types` for one name at one nameserver, sharing one UDP
 * socket and one budget; one result per type, in the order asked, each with
 * the seconds until its own answer.
 */
export async function queryDnsTypes<const T extends readonly DnsQueryType[]>(
  opts: DnsQueryTypesOptions<T>,
): Promise<{ -readonly [K in keyof T]: DnsQueryResult }> {
  const packet = await dnsPacket(); // before the clock starts: loading it is not DNS time
  const clock = opts.clock ?? realClock;
  const transport = opts.transport ?? realTransport;
  const started = clock.now();
  const seconds = (): number => (clock.now() - started) / 1000;
  const qname = normName(opts.name);
  let questions: Question[];
  try {
    questions = opts.types.map((type) => {
      const id = randomInt(0, 0x10000);
      const query = packet.encode({
        type: 'query',
        id,
        flags: packet.RECURSION_DESIRED,
        questions: [{ type, name: qname, class: 'IN' }],
      });
      return { type, id, query };
    });
  } catch (err) {
    // Whether the question encodes depends on the name, not on the type: every type fails alike.
    const failed: DnsQueryResult = { rcode: null, answers: [], truncated: false, transport: 'udp', ...classify(err), seconds: seconds() };
    return opts.types.map(() => ({ ...failed })) as { -readonly [K in keyof T]: DnsQueryResult };
  }
  const budget = new AbortController();
  const timers = opts.timers ?? realTimers;
  const timer = timers.setTimeout(() => budget.abort(), Math.max(0, opts.timeoutMs));
  const onAbort = (): void => budget.abort();
  if (opts.signal?.aborted) budget.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const udp = udpExchange(packet, transport, opts, questions, qname, budget.signal);
    const results = await Promise.all(
      udp.map(async ([q, pending]): Promise<DnsQueryResult> => {
        const reply = await pending;
        if (reply.kind === 'error')
          return { rcode: null, answers: [], truncated: false, transport: 'udp', ...reply.err, seconds: seconds() };
        if (reply.kind === 'timeout')
          return { rcode: null, answers: [], truncated: false, transport: 'udp', error: 'timeout', seconds: seconds() };
        if (!reply.reply.flag_tc) {
          return {
            rcode: rcodeOf(reply.reply),
            answers: addressesFromAnswer(reply.reply, qname, q.type),
            truncated: false,
            transport: 'udp',
            seconds: seconds(),
          };
        }
        const tcp = await tcpExchange(packet, transport, opts, q, qname, budget.signal);
        if (tcp.kind === 'error') return { rcode: null, answers: [], truncated: true, transport: 'tcp', ...tcp.err, seconds: seconds() };
        if (tcp.kind === 'timeout')
          return { rcode: null, answers: [], truncated: true, transport: 'tcp', error: 'timeout', seconds: seconds() };
        return {
          rcode: rcodeOf(tcp.reply),
          answers: addressesFromAnswer(tcp.reply, qname, q.type),
          truncated: true,
          transport: 'tcp',
          seconds: seconds(),
        };
      }),
    );
    return results as { -readonly [K in keyof T]: DnsQueryResult };
  } finally {
    timers.clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

type Exchange =
  { kind: 'reply'; reply: DecodedPacket } | { kind: 'timeout' } | { kind: 'error'; err: { error: DnsQueryError; errorCode?: string } };

/**
 * Every question on one connected UDP socket: each question's exchange
 * settles on its own reply, or with all the others still open on a failed
 * connect or send, a socket error, a close, or the end of the budget. The
 * socket is closed as soon as no question is left open.
 */
function udpExchange(
  packet: DnsPacket,
  transport: DnsTransport,
  opts: { server: string; port: number },
  questions: Question[],
  qname: string,
  signal: AbortSignal,
): Array<[Question, Promise<Exchange>]> {
  const open = new Map<Question, (r: Exchange) => void>();
  const exchanges = questions.map((q): [Question, Promise<Exchange>] => [q, new Promise((resolve) => open.set(q, resolve))]);
  let socket: DnsUdpSocket | undefined;
  const settle = (q: Question, r: Exchange): void => {
    const resolve = open.get(q);
    if (resolve === undefined) return;
    open.delete(q);
    if (open.size === 0) {
      signal.removeEventListener('abort', onAbort);
      try {
        socket?.close();
      } catch {
        /* already closed */
      }
    }
    resolve(r);
  };
  const settleAll = (r: Exchange): void => {
    for (const q of [...open.keys()]) settle(q, r);
  };
  const fail = (err: unknown): void => settleAll({ kind: 'error', err: classify(err) });
  const onAbort = (): void => settleAll({ kind: 'timeout' });
  // No type asked: no socket to open (nothing would ever close it).
  if (open.size === 0) return exchanges;
  if (signal.aborted) {
    onAbort();
    return exchanges;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const host = opts.server.split('%')[0] ?? opts.server;
    const s = transport.createUdpSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    socket = s;
    s.on('error', fail);
    s.on('close', () => settleAll({ kind: 'error', err: { error: 'network', errorCode: 'ECONNRESET' } }));
    s.on('message', (msg) => {
      let reply: DecodedPacket;
      try {
        reply = packet.decode(msg);
      } catch {
        return;
      }
      for (const q of open.keys()) {
        if (matches(reply, q.id, qname, q.type)) {
          settle(q, { kind: 'reply', reply });
          return;
        }
      }
    });
    // dgram hands a failed connect (ENETUNREACH, EADDRNOTAVAIL, …) to this
    // callback, not to 'error': sending anyway would throw ERR_SOCKET_BAD_PORT.
    s.connect(opts.port, opts.server, (err) => {
      if (open.size === 0) return;
      if (err) {
        fail(err);
        return;
      }
      // A failed send fails every question still open, not just its own: on
      // a connected socket it reports the socket's pending error, e.g. the
      // ICMP port-unreachable that the previous question drew (ECONNREFUSED
      // is then consumed, and no 'error' would ever reach the others).
      for (const q of questions) {
        if (open.size === 0) break; // a send threw: the socket is closed
        try {
          s.send(q.query, (sendErr) => {
            if (sendErr) fail(sendErr);
          });
        } catch (sendErr) {
          fail(sendErr);
        }
      }
    });
  } catch (err) {
    fail(err);
  }
  return exchanges;
}

function tcpExchange(
  packet: DnsPacket,
  transport: DnsTransport,
  opts: { server: string; port: number },
  question: Question,
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
        len.writeUInt16BE(question.query.length);
        try {
          s.write(Buffer.concat([len, question.query]));
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
          if (matches(reply, question.id, qname, question.type)) {
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
