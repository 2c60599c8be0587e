/**
 * Unary gRPC calls over HTTP/2 on a unix socket, with node:http2 only (the
 * gRPC wire protocol, "PROTOCOL-HTTP2.md"): a POST with
 * `content-type: application/grpc`, `te: trailers` and `grpc-timeout`, the
 * request as one length-prefixed message, the answer as one length-prefixed
 * message plus `grpc-status` / `grpc-message` trailers (or headers, for a
 * trailers-only answer). No compression is offered, so none comes back.
 *
 * One HTTP/2 session per channel, opened on the first call. The channel
 * counts as connected once the server's SETTINGS arrived: a socket that
 * accepts and never speaks HTTP/2 is "not connected" when the deadline ends
 * the call, so the caller can tell a silent runtime from a slow answer.
 */
import http2 from 'node:http2';
import net from 'node:net';

/** gRPC status codes by number (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = [
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
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** Largest answer accepted (grpc's default receive limit). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Why a call failed, before the caller gives it a meaning. */
export type UnaryFailure =
  | { kind: 'connect'; details: string } // the socket could not be opened, or the session broke
  | { kind: 'deadline'; connected: boolean }
  | { kind: 'aborted' }
  | { kind: 'status'; status: string; details: string } // the server's grpc-status
  | { kind: 'protocol'; details: string }; // not a gRPC answer

export type UnaryResult = { ok: true; message: Buffer } | ({ ok: false } & UnaryFailure);

export interface GrpcChannel {
  call(path: string, request: Buffer, o: { timeoutMs: number; signal?: AbortSignal }): Promise<UnaryResult>;
  close(): void;
}

function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function headerString(v: string | string[] | number | undefined): string | undefined {
  if (Array.isArray(v)) return v[0];
  return v === undefined ? undefined : String(v);
}

/** grpc-message is percent-encoded UTF-8. */
function decodeGrpcMessage(v: string | undefined): string {
  if (v === undefined) return '';
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

export function openGrpcChannel(socketPath: string): GrpcChannel {
  let session: http2.ClientHttp2Session | null = null;
  let connected = false;
  let sessionError: string | null = null;
  let closed = false;

  const getSession = (): http2.ClientHttp2Session => {
    if (session && !session.destroyed && !session.closed) return session;
    connected = false;
    sessionError = null;
    const s = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
    s.on('remoteSettings', () => {
      connected = true;
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      sessionError = `${err.syscall ?? 'connect'} ${err.code ?? ''} ${socketPath}`.replace(/\s+/g, ' ').trim();
      if (err.code === undefined) sessionError = `${err.message} (${socketPath})`;
    });
    s.on('close', () => {
      if (session === s) session = null;
    });
    session = s;
    return s;
  };

  return {
    call(path, request, o) {
      return new Promise<UnaryResult>((resolve) => {
        if (closed) {
          resolve({ ok: false, kind: 'aborted' });
          return;
        }
        if (o.signal?.aborted) {
          resolve({ ok: false, kind: 'aborted' });
          return;
        }
        const timeoutMs = Math.max(1, Math.floor(o.timeoutMs));
        const s = getSession();
        let done = false;
        let httpStatus: number | undefined;
        let grpcStatus: string | undefined;
        let grpcMessage: string | undefined;
        const chunks: Buffer[] = [];
        let size = 0;
        const req = s.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': `${timeoutMs}m`,
        });
        const finish = (r: UnaryResult): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          o.signal?.removeEventListener('abort', onAbort);
          if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
          resolve(r);
        };
        const timer = setTimeout(() => finish({ ok: false, kind: 'deadline', connected }), timeoutMs);
        timer.unref();
        const onAbort = (): void => finish({ ok: false, kind: 'aborted' });
        o.signal?.addEventListener('abort', onAbort, { once: true });
        const takeStatus = (h: http2.IncomingHttpHeaders): void => {
          grpcStatus ??= headerString(h['grpc-status']);
          grpcMessage ??= headerString(h['grpc-message']);
        };
        req.on('response', (h) => {
          httpStatus = Number(h[':status']);
          takeStatus(h);
        });
        req.on('trailers', takeStatus);
        req.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_MESSAGE_BYTES + 5)
            finish({ ok: false, kind: 'protocol', details: `answer larger than ${MAX_MESSAGE_BYTES} bytes` });
          else chunks.push(c);
        });
        req.on('error', (err: Error) => {
          // a failed connect reaches the stream first, as ERR_HTTP2_STREAM_CANCEL caused by the socket's error
          const cause = err.cause as NodeJS.ErrnoException | undefined;
          const why = sessionError ?? (cause?.code ? `${cause.syscall ?? 'connect'} ${cause.code} ${socketPath}` : err.message);
          finish(connected ? { ok: false, kind: 'protocol', details: err.message } : { ok: false, kind: 'connect', details: why });
        });
        req.on('close', () => {
          if (done) return;
          if (httpStatus === undefined) {
            finish({ ok: false, kind: 'connect', details: sessionError ?? 'connection closed before an answer' });
            return;
          }
          if (httpStatus !== 200) {
            finish({ ok: false, kind: 'protocol', details: `HTTP ${httpStatus} (not a gRPC server?)` });
            return;
          }
          if (grpcStatus === undefined) {
            finish({ ok: false, kind: 'protocol', details: 'answer without grpc-status' });
            return;
          }
          const code = Number(grpcStatus);
          if (code !== 0) {
            finish({ ok: false, kind: 'status', status: GRPC_STATUS[code] ?? grpcStatus, details: decodeGrpcMessage(grpcMessage) });
            return;
          }
          const body = Buffer.concat(chunks);
          if (body.length < 5) {
            finish({ ok: false, kind: 'protocol', details: 'OK without a message' });
            return;
          }
          const len = body.readUInt32BE(1);
          if (body[0] !== 0) finish({ ok: false, kind: 'protocol', details: 'compressed message (none was offered)' });
          else if (body.length !== 5 + len) finish({ ok: false, kind: 'protocol', details: 'message length does not match' });
          else finish({ ok: true, message: body.subarray(5) });
        });
        req.end(frame(request));
      });
    },
    close() {
      closed = true;
      session?.destroy();
      session = null;
    },
  };
}
