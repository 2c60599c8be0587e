/**
 * The hand-written unary gRPC client (src/net/grpc-unary.ts) against raw
 * HTTP/2 servers on a unix socket that answer what a gRPC server must not:
 * no gRPC at all, a compressed message, a wrong length, a trailers-only
 * error with a percent-encoded message, an oversized answer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_MESSAGE_BYTES, openGrpcChannel } from '../../src/net/grpc-unary.js';

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

describe('unary gRPC over node:http2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-grpc-'));
  const socket = join(dir, 'h2.sock');
  const server = http2.createServer();
  let handler: Handler;
  let seen: http2.IncomingHttpHeaders | undefined;

  before(async () => {
    server.on('stream', (stream, headers) => {
      seen = headers;
      stream.on('error', () => {});
      handler(stream, headers);
    });
    await new Promise<void>((r) => server.listen(socket, r));
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const msg = (flag: number, body: Buffer, len = body.length): Buffer => {
    const h = Buffer.alloc(5);
    h[0] = flag;
    h.writeUInt32BE(len, 1);
    return Buffer.concat([h, body]);
  };
  const call = async (h: Handler): ReturnType<ReturnType<typeof openGrpcChannel>['call']> => {
    handler = h;
    const ch = openGrpcChannel(socket);
    try {
      return await ch.call('/runtime.v1.RuntimeService/Version', Buffer.from('req'), { timeoutMs: 5000 });
    } finally {
      ch.close();
    }
  };
  const okAnswer =
    (body: Buffer): Handler =>
    (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(body);
    };

  it('sends a gRPC POST with te: trailers, grpc-timeout and the framed request; reads the framed answer', async () => {
    const r = await call(okAnswer(msg(0, Buffer.from('answer'))));
    assert.deepEqual(r, { ok: true, message: Buffer.from('answer') });
    const h: http2.IncomingHttpHeaders = seen ?? {};
    assert.equal(h[':method'], 'POST');
    assert.equal(h['content-type'], 'application/grpc');
    assert.equal(h['te'], 'trailers');
    assert.match(String(h['grpc-timeout']), /^\d+m$/);
  });

  it('a trailers-only error: the status name and the percent-decoded message', async () => {
    const r = await call((stream) => {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'x%3A not found%20%E2%9C%93' },
        { endStream: true },
      );
    });
    assert.deepEqual(r, { ok: false, kind: 'status', status: 'NOT_FOUND', details: 'x: not found ✓' });
  });

  it('not a gRPC server (HTTP 404), a compressed message, a length that does not match, an oversized answer: protocol failures', async () => {
    const notGrpc = await call((stream) => stream.respond({ ':status': 404 }, { endStream: true }));
    assert.equal(notGrpc.ok ? 'ok' : notGrpc.kind, 'protocol');
    const compressed = await call(okAnswer(msg(1, Buffer.from('zz'))));
    assert.equal(compressed.ok ? 'ok' : compressed.kind, 'protocol');
    const short = await call(okAnswer(msg(0, Buffer.from('abc'), 10)));
    assert.equal(short.ok ? 'ok' : short.kind, 'protocol');
    const huge = await call(okAnswer(msg(0, Buffer.alloc(MAX_MESSAGE_BYTES + 10))));
    assert.equal(huge.ok ? 'ok' : huge.kind, 'protocol');
    const noStatus = await call((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(msg(0, Buffer.from('a')));
    });
    assert.equal(noStatus.ok ? 'ok' : noStatus.kind, 'protocol');
  });

  it('a server that never answers the request: deadline, connected (the HTTP/2 session was up)', async () => {
    handler = () => {};
    const ch = openGrpcChannel(socket);
    try {
      const r = await ch.call('/x', Buffer.alloc(0), { timeoutMs: 300 });
      assert.deepEqual(r, { ok: false, kind: 'deadline', connected: true });
    } finally {
      ch.close();
    }
  });
});
