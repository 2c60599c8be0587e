/**
 * A scriptable loopback DNS server (UDP + TCP on the same port) for tests.
 * Names in `answers` answer NOERROR (empty when the asked type is absent,
 * or via a CNAME), other names NXDOMAIN, unless `behaviour` says otherwise:
 * 'nxdomain' | 'servfail' | 'refused' | 'drop' (never answer) |
 * 'truncate' (UDP reply with TC and no answers; TCP answers in full).
 * Several servers can share one port on different 127.0.0.x addresses,
 * since the stage takes a single `port` option.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import * as packet from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';

export type DnsBehaviour = 'nxdomain' | 'servfail' | 'refused' | 'drop' | 'truncate';

export interface DnsRecords {
  A?: string[];
  AAAA?: string[];
  CNAME?: string;
}

export interface DnsServerOptions {
  /** Loopback address to listen on; default 127.0.0.1. */
  address?: string;
  /** Default 0 (random). */
  port?: number;
  answers?: Record<string, DnsRecords>;
  behaviour?: Record<string, DnsBehaviour>;
  /** Behaviour for every name (overridden per name). */
  defaultBehaviour?: DnsBehaviour;
}

export interface SeenQuery {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface DnsServer {
  address: string;
  port: number;
  queries: SeenQuery[];
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const lower = (s: string): string => s.toLowerCase().replace(/\.$/, '');

function reply(q: DecodedPacket, opts: DnsServerOptions, transport: 'udp' | 'tcp'): Buffer | undefined {
  const question = q.questions?.[0];
  if (!question) return undefined;
  const name = lower(question.name);
  const behaviour = opts.behaviour?.[name] ?? opts.defaultBehaviour;
  if (behaviour === 'drop') return undefined;
  const base = { type: 'response' as const, id: q.id ?? 0, questions: q.questions ?? [] };
  const flags = packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE;
  if (behaviour === 'servfail') return packet.encode({ ...base, flags: flags | RCODE.SERVFAIL });
  if (behaviour === 'refused') return packet.encode({ ...base, flags: flags | RCODE.REFUSED });
  if (behaviour === 'nxdomain') return packet.encode({ ...base, flags: flags | RCODE.NXDOMAIN });
  if (behaviour === 'truncate' && transport === 'udp') {
    return packet.encode({ ...base, flags: flags | packet.TRUNCATED_RESPONSE });
  }
  const answers: Answer[] = [];
  let current = name;
  for (let hop = 0; hop < 8; hop++) {
    const records = opts.answers?.[current];
    if (!records) break;
    if (records.CNAME !== undefined) {
      answers.push({ type: 'CNAME', name: current, ttl: 30, data: records.CNAME });
      current = lower(records.CNAME);
      continue;
    }
    const list = question.type === 'A' ? records.A : question.type === 'AAAA' ? records.AAAA : undefined;
    for (const data of list ?? []) answers.push({ type: question.type as 'A' | 'AAAA', name: current, ttl: 30, data });
    break;
  }
  const known = opts.answers?.[name] !== undefined;
  return packet.encode({ ...base, flags: flags | (known ? RCODE.NOERROR : RCODE.NXDOMAIN), answers });
}

/**
 * DNS over TCP on a server's connection (RFC 1035 4.2.2: each message behind a 2-byte length):
 * `onMessage` gets every whole message and a `send` that frames the reply the same way.
 */
function onTcpDnsMessages(socket: net.Socket, onMessage: (msg: Buffer, send: (reply: Buffer) => void) => void): void {
  const send = (reply: Buffer): void => {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(reply.length);
    socket.write(Buffer.concat([len, reply]));
  };
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
      buf = buf.subarray(2 + msg.length);
      onMessage(msg, send);
    }
  });
}

/** A DNS listener: UDP and TCP on one port. */
export interface DnsListener {
  port: number;
  close(): Promise<void>;
}

/**
 * Listen for DNS on UDP and TCP at one port of `address` (port 0: a free UDP
 * port, TCP on the same one). Every message that decodes goes to `onQuery`
 * with its transport, the client's port (one per client socket) and a `send`
 * that answers on the transport it came by. When TCP cannot listen (e.g.
 * EADDRINUSE) the UDP socket is closed and the error thrown.
 */
export async function listenDns(
  address: string,
  port: number,
  onQuery: (q: DecodedPacket, transport: 'udp' | 'tcp', from: number, send: (reply: Buffer) => void) => void,
): Promise<DnsListener> {
  const receive = (msg: Buffer, transport: 'udp' | 'tcp', from: number, send: (reply: Buffer) => void): void => {
    let q: DecodedPacket;
    try {
      q = packet.decode(msg);
    } catch {
      return;
    }
    onQuery(q, transport, from, send);
  };
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => receive(msg, 'udp', rinfo.port, (out) => udp.send(out, rinfo.port, rinfo.address)));
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, address, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  const bound = udp.address().port;

  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onTcpDnsMessages(socket, (msg, send) => receive(msg, 'tcp', socket.remotePort ?? 0, send));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(bound, address, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    throw err;
  }
  return {
    port: bound,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}

export async function startDnsServer(opts: DnsServerOptions = {}): Promise<DnsServer> {
  const address = opts.address ?? '127.0.0.1';
  const queries: SeenQuery[] = [];
  const listener = await listenDns(address, opts.port ?? 0, (q, transport, _from, send) => {
    const question = q.questions?.[0];
    if (question) queries.push({ name: lower(question.name), type: question.type, transport });
    const out = reply(q, opts, transport);
    if (out) send(out);
  });
  return { address, port: listener.port, queries, close: () => listener.close() };
}

/**
 * Start one server per spec, on consecutive addresses 127.0.0.<first>…,
 * all on the same port (retrying with a new port if it is taken).
 */
export async function startDnsServers(specs: DnsServerOptions[], first = 53): Promise<DnsServer[]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const started: DnsServer[] = [];
    try {
      let port = 0;
      for (const [i, spec] of specs.entries()) {
        const server = await startDnsServer({ ...spec, address: spec.address ?? `127.0.0.${first + i}`, port });
        started.push(server);
        port = server.port;
      }
      return started;
    } catch (err) {
      await Promise.all(started.map((s) => s.close()));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('could not find a free shared port for the DNS servers');
}
