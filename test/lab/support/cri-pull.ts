/**
 * A real CRI pull for the lab, independent of the code under test: gRPC over
 * HTTP/2 on the node containerd's unix socket, with the few runtime.v1
 * messages hand-encoded (field numbers: pull-path-facts §4). The pull itself
 * leaves from containerd's network namespace, whatever process drives the
 * socket, so this runs in the test process.
 *
 *   const r = await criPull(socket, 'registry.lab.test/lab/probe:v1', { username, password }, 12_000);
 *   // r = { ok: true, imageRef } | { ok: false, code, text, deadline }
 *
 * Every call has a deadline (sent as grpc-timeout and enforced here); when it
 * passes, the stream is cancelled (containerd then cancels the pull) and the
 * result says `deadline: true`.
 */
import { connect as h2connect, constants as H2, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';

export interface CriAuth {
  username?: string;
  password?: string;
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
}

export type CriCallResult = { ok: true; body: Buffer } | { ok: false; code: number; text: string; deadline: boolean };
export type CriPullResult =
  { ok: true; imageRef: string; seconds: number } | { ok: false; code: number; text: string; deadline: boolean; seconds: number };

/** gRPC status code names (for messages). */
export const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
] as const;

// ---- protobuf (only what these messages need) ----

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function field(num: number, value: Buffer | string | undefined): Buffer {
  if (value === undefined || value.length === 0) return Buffer.alloc(0);
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
}

/** Decoded length-delimited fields of one message: field number → raw values. */
export function decodeFields(buf: Buffer): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  let i = 0;
  const readVarint = (): number => {
    let shift = 1;
    let v = 0;
    for (;;) {
      const byte = buf[i++];
      if (byte === undefined) throw new Error('truncated protobuf varint');
      v += (byte & 0x7f) * shift;
      if ((byte & 0x80) === 0) return v;
      shift *= 128;
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const num = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) readVarint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = readVarint();
      const list = out.get(num) ?? [];
      list.push(buf.subarray(i, i + len));
      out.set(num, list);
      i += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  return out;
}

const imageSpec = (image: string): Buffer => field(1, image);

function authConfig(a: CriAuth): Buffer {
  return Buffer.concat([
    field(1, a.username),
    field(2, a.password),
    field(3, a.auth),
    field(4, a.serverAddress),
    field(5, a.identityToken),
  ]);
}

// ---- gRPC over HTTP/2 on a unix socket ----

function frame(msg: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

/** The runtime gets the deadline as grpc-timeout; the lab cancels GRACE_MS later if no answer came (so containerd's own text wins). */
const GRACE_MS = 1500;

/** One unary call. Never throws: transport failures come back as UNAVAILABLE (14). */
export function criCall(socket: string, method: string, request: Buffer, deadlineMs: number): Promise<CriCallResult> {
  return new Promise((resolve) => {
    let settled = false;
    const session = h2connect('http://localhost', { createConnection: () => netConnect(socket) });
    const finish = (r: CriCallResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () => finish({ ok: false, code: 4, text: `deadline of ${deadlineMs} ms exceeded (cancelled by the lab)`, deadline: true }),
      deadlineMs + GRACE_MS,
    );
    session.on('error', (e: Error) => finish({ ok: false, code: 14, text: `CRI socket ${socket}: ${e.message}`, deadline: false }));
    const stream = session.request({
      [H2.HTTP2_HEADER_METHOD]: 'POST',
      [H2.HTTP2_HEADER_PATH]: method,
      [H2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${deadlineMs}m`,
    });
    const chunks: Buffer[] = [];
    let headerStatus: string | undefined;
    let headerMessage: string | undefined;
    stream.on('response', (h) => {
      const s = h['grpc-status'];
      if (typeof s === 'string') headerStatus = s;
      const m = h['grpc-message'];
      if (typeof m === 'string') headerMessage = m;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      const s = t['grpc-status'];
      if (typeof s === 'string') headerStatus = s;
      const m = t['grpc-message'];
      if (typeof m === 'string') headerMessage = m;
    });
    stream.on('error', (e: Error) => finish({ ok: false, code: 14, text: `CRI call ${method}: ${e.message}`, deadline: false }));
    stream.on('close', () => {
      const code = headerStatus === undefined ? 14 : Number(headerStatus);
      if (code !== 0) {
        const text = headerMessage === undefined ? `no grpc-status from ${method}` : decodeURIComponent(headerMessage);
        finish({ ok: false, code, text, deadline: code === 4 });
        return;
      }
      const all = Buffer.concat(chunks);
      const len = all.length >= 5 ? all.readUInt32BE(1) : 0;
      finish({ ok: true, body: all.subarray(5, 5 + len) });
    });
    stream.end(frame(request));
  });
}

const IMAGE = '/runtime.v1.ImageService/';

/** PullImage with the AuthConfig the kubelet would pass (none = anonymous). */
export async function criPull(socket: string, image: string, auth: CriAuth | undefined, deadlineMs: number): Promise<CriPullResult> {
  const t0 = performance.now();
  const req = Buffer.concat([field(1, imageSpec(image)), auth ? field(2, authConfig(auth)) : Buffer.alloc(0)]);
  const r = await criCall(socket, `${IMAGE}PullImage`, req, deadlineMs);
  const seconds = (performance.now() - t0) / 1000;
  if (!r.ok) return { ...r, seconds };
  const ref = decodeFields(r.body).get(1)?.[0]?.toString('utf8') ?? '';
  return { ok: true, imageRef: ref, seconds };
}

/** Image id when present, null when not. */
export async function criImageStatus(socket: string, image: string, deadlineMs = 5000): Promise<string | null> {
  const r = await criCall(socket, `${IMAGE}ImageStatus`, field(1, imageSpec(image)), deadlineMs);
  if (!r.ok) throw new Error(`ImageStatus ${image}: ${GRPC_CODES[r.code] ?? r.code}: ${r.text}`);
  const img = decodeFields(r.body).get(1)?.[0];
  if (img === undefined) return null;
  return decodeFields(img).get(1)?.[0]?.toString('utf8') ?? null;
}

/** RemoveImage; absent is fine (containerd answers OK for an unknown image). */
export async function criRemoveImage(socket: string, image: string, deadlineMs = 5000): Promise<void> {
  const r = await criCall(socket, `${IMAGE}RemoveImage`, field(1, imageSpec(image)), deadlineMs);
  if (!r.ok && r.code !== 5) throw new Error(`RemoveImage ${image}: ${GRPC_CODES[r.code] ?? r.code}: ${r.text}`);
}

/** The runtime's Version answer (runtime name and version), to check the socket. */
export async function criVersion(socket: string, deadlineMs = 5000): Promise<string> {
  const r = await criCall(socket, '/runtime.v1.RuntimeService/Version', field(1, 'v1'), deadlineMs);
  if (!r.ok) throw new Error(`Version: ${GRPC_CODES[r.code] ?? r.code}: ${r.text}`);
  const f = decodeFields(r.body);
  return `${f.get(2)?.[0]?.toString('utf8') ?? '?'} ${f.get(3)?.[0]?.toString('utf8') ?? '?'}`;
}

/** Wait until the CRI answers Version (a fresh containerd says "server is not initialized yet" for a moment). */
export async function waitForCri(socket: string, timeoutMs = 8000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await criVersion(socket, 2000);
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** `rpc error: code = X desc = …` as the kubelet's event shows it. */
export function criErrorText(r: { code: number; text: string }): string {
  const name = GRPC_CODES[r.code] ?? String(r.code);
  const pretty = name
    .toLowerCase()
    .split('_')
    .map((w) => (w === 'ok' ? 'OK' : w.charAt(0).toUpperCase() + w.slice(1)))
    .join('');
  return `rpc error: code = ${pretty} desc = ${r.text}`;
}
