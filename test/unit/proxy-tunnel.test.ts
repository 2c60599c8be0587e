import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { createCA, type TestCA, type CertPair } from '../support/certs.js';
import { freePort, startTinyproxy, type Tinyproxy } from '../support/tinyproxy.js';
import {
  connectRequest,
  connectThroughProxy,
  dialProxy,
  openConnectTunnel,
  parseConnectStatus,
  plainProxyRequest,
  type TunnelResult,
} from '../../src/net/proxy-tunnel.js';
import { parseProxyUrl, proxyDisplay } from '../../src/node-config/proxy-env.js';
import { explainMessage } from '../../src/diagnosis/explain.js';
import type { Timers } from '../../src/shared/timers.js';

let ca: TestCA;
let leaf: CertPair;
let registry: https.Server;
let registryPort: number;
let open: Tinyproxy | undefined;
let authed: Tinyproxy | undefined;
const servers: net.Server[] = [];

const USER = 'puller';
// tinyproxy's config syntax takes letters and digits; %73 in the URL is an "s", decoded before it is sent
const PASS = 's3cretpw';
const PASS_IN_URL = '%733cretpw';

before(async () => {
  ca = createCA();
  leaf = ca.issue('registry', { sans: ['registry.test', '127.0.0.1'] });
  registry = https.createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'docker-distribution-api-version': 'registry/2.0' });
    res.end(`registry saw ${req.method ?? ''} ${req.url ?? ''}`);
  });
  registry.listen(0, '127.0.0.1');
  await once(registry, 'listening');
  registryPort = (registry.address() as net.AddressInfo).port;
  open = await startTinyproxy([`ConnectPort ${registryPort}`]);
  authed = await startTinyproxy([`ConnectPort ${registryPort}`, `BasicAuth ${USER} ${PASS}`]);
});

after(async () => {
  await Promise.all([open?.stop(), authed?.stop()]);
  registry.close();
  for (const s of servers) s.close();
  ca.cleanup();
});

function proxies(): { open: Tinyproxy; authed: Tinyproxy } {
  assert.ok(open && authed, 'tinyproxy did not start');
  return { open, authed };
}

const signal = (): AbortSignal => new AbortController().signal;
const proxyUrl = (port: number, userinfo = ''): URL => parseProxyUrl(`http://${userinfo}127.0.0.1:${port}`) as URL;
const target = (): { host: string; port: number } => ({ host: '127.0.0.1', port: registryPort });

/** GET /v2/ over TLS through the tunnel: proves the socket really reaches the registry. */
async function getThrough(socket: net.Socket): Promise<string> {
  const t = tls.connect({ socket, servername: 'registry.test', ca: ca.cert });
  await once(t, 'secureConnect');
  t.write('GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n');
  let body = '';
  t.on('data', (b: Buffer) => (body += b.toString()));
  await once(t, 'end');
  t.destroy();
  return body;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve: (v: T) => void = () => undefined;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function assertFailure(r: TunnelResult): asserts r is Extract<TunnelResult, { ok: false }> {
  assert.equal(r.ok, false, 'expected a proxy failure');
}

test('tinyproxy: CONNECT to an allowed port opens a tunnel; TLS and HTTP run over the same socket', async () => {
  const r = await connectThroughProxy(proxyUrl(proxies().open.port), target(), { signal: signal(), timeoutMs: 5000 });
  assert.ok(r.ok, r.ok ? '' : `${r.message}\n${proxies().open.log()}`);
  const answer = await getThrough(r.socket);
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, /registry saw GET \/v2\//);
});

test('tinyproxy: CONNECT to a port not in ConnectPort → proxy_error 403 "Access violation", as containerd would print it', async () => {
  const port = await freePort();
  const r = await connectThroughProxy(proxyUrl(proxies().open.port), { host: '127.0.0.1', port }, { signal: signal(), timeoutMs: 5000 });
  assertFailure(r);
  assert.equal(r.reason, 'proxy_error');
  assert.equal(r.status, 403);
  assert.equal(r.statusText, 'Access violation');
  assert.equal(r.message, `proxy http://127.0.0.1:${proxies().open.port} refused to connect to 127.0.0.1:${port}: 403 Access violation`);
  // what containerd reports for the same refusal classifies as proxy_error too
  const runtimeText = `failed to resolve reference "127.0.0.1:${port}/a/b:c": failed to do request: Head "https://127.0.0.1:${port}/v2/a/b/manifests/c": ${r.statusText}`;
  assert.equal(explainMessage(runtimeText).reason, 'proxy_error');
});

test('tinyproxy BasicAuth: no credentials → 407 saying the URL has none; wrong ones → 407 without printing them; right ones → tunnel', async () => {
  const none = await connectThroughProxy(proxyUrl(proxies().authed.port), target(), { signal: signal(), timeoutMs: 5000 });
  assertFailure(none);
  assert.equal(none.status, 407);
  assert.equal(none.statusText, 'Proxy Authentication Required');
  assert.match(none.message, /407 Proxy Authentication Required \(it wants credentials and the proxy URL has none\)$/);

  const wrong = await connectThroughProxy(proxyUrl(proxies().authed.port, `${USER}:wrong-pw@`), target(), {
    signal: signal(),
    timeoutMs: 5000,
  });
  assertFailure(wrong);
  // tinyproxy answers wrong credentials with 401 Unauthorized (containerd then prints "Unauthorized")
  assert.equal(wrong.status, 401);
  assert.equal(wrong.statusText, 'Unauthorized');
  assert.match(wrong.message, /^proxy http:\/\/127\.0\.0\.1:\d+ refused .*\(it refused the credentials in the proxy URL\)$/);
  assert.ok(!wrong.message.includes('wrong-pw') && !wrong.message.includes(USER), wrong.message);

  const right = await connectThroughProxy(proxyUrl(proxies().authed.port, `${USER}:${PASS_IN_URL}@`), target(), {
    signal: signal(),
    timeoutMs: 5000,
  });
  assert.ok(right.ok, right.ok ? '' : `${right.message}\n${proxies().authed.log()}`);
  assert.match(await getThrough(right.socket), /registry saw GET \/v2\//);
});

test('a dead proxy (closed port) is proxy_error naming the proxy, never a direct connection', async () => {
  const port = await freePort();
  const proxy = proxyUrl(port, 'bob:hunter22@');
  const r = await connectThroughProxy(proxy, target(), { signal: signal(), timeoutMs: 5000 });
  assertFailure(r);
  assert.equal(r.reason, 'proxy_error');
  assert.equal(r.code, 'ECONNREFUSED');
  assert.equal(r.message, `cannot connect to proxy http://127.0.0.1:${port}: connection refused (ECONNREFUSED)`);
  assert.ok(!r.message.includes('hunter22'));
});

/** A TCP server that accepts and then does what `onConnect` says (nothing: it hangs). */
async function fakeProxy(onConnect: (s: net.Socket, request: string) => void): Promise<number> {
  const server = net.createServer((s) => {
    let got = '';
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      if (got.includes('\r\n\r\n')) onConnect(s, got);
    });
    s.on('error', () => undefined);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

async function connected(port: number): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  return s;
}

test('a proxy that never answers: the probe signal ends the wait with proxy_error', async () => {
  const arrived = deferred<null>();
  const port = await fakeProxy(() => arrived.resolve(null));
  const ac = new AbortController();
  const pending = openConnectTunnel(await connected(port), proxyUrl(port), target(), { signal: ac.signal, timeoutMs: 60_000 });
  await arrived.promise;
  ac.abort();
  const r = await pending;
  assertFailure(r);
  assert.equal(
    r.message,
    `proxy http://127.0.0.1:${port} had not answered the CONNECT to 127.0.0.1:${registryPort} when the probe's deadline came`,
  );
});

test("a proxy that never answers: the tunnel's own timeout (injected timers) ends the wait", async () => {
  const arrived = deferred<null>();
  const port = await fakeProxy(() => arrived.resolve(null));
  const due: Array<() => void> = [];
  const timers: Timers = { setTimeout: (fn) => due.push(fn), clearTimeout: () => undefined };
  let now = 1000;
  const pending = openConnectTunnel(await connected(port), proxyUrl(port), target(), {
    signal: signal(),
    timeoutMs: 7000,
    timers,
    clock: { now: () => now },
  });
  await arrived.promise;
  now += 7000;
  for (const fn of due) fn();
  const r = await pending;
  assertFailure(r);
  assert.match(r.message, /did not answer the CONNECT to 127\.0\.0\.1:\d+ within 7 s$/);
  assert.equal(r.seconds, 7);
});

test('the CONNECT request: authority, Host, Proxy-Authorization only with userinfo (percent-decoded)', async () => {
  const seen = deferred<string>();
  const port = await fakeProxy((s, request) => {
    seen.resolve(request);
    s.end('HTTP/1.1 200 Connection established\r\n\r\n');
  });
  const r = await openConnectTunnel(
    await connected(port),
    proxyUrl(port, 'bob:p%40ss@'),
    { host: '::1', port: 5000 },
    {
      signal: signal(),
      timeoutMs: 5000,
    },
  );
  assert.ok(r.ok);
  r.socket.destroy();
  const request = await seen.promise;
  assert.match(request, /^CONNECT \[::1\]:5000 HTTP\/1\.1\r\nHost: \[::1\]:5000\r\n/);
  assert.ok(request.includes(`Proxy-Authorization: Basic ${Buffer.from('bob:p@ss').toString('base64')}\r\n`));
  assert.ok(!connectRequest(proxyUrl(port), { host: 'r', port: 443 }).includes('Proxy-Authorization'));
});

test('bytes the proxy sends after its answer are kept for the next reader (unshift)', async () => {
  const port = await fakeProxy((s) => s.write('HTTP/1.0 200 Connection established\nProxy-agent: x\n\nHELLO'));
  const r = await openConnectTunnel(await connected(port), proxyUrl(port), target(), { signal: signal(), timeoutMs: 5000 });
  assert.ok(r.ok);
  const first = once(r.socket, 'data');
  r.socket.resume();
  const [chunk] = (await first) as [Buffer];
  assert.equal(chunk.toString(), 'HELLO');
  r.socket.destroy();
});

test('a proxy that closes, answers with something not HTTP, or never ends its headers: proxy_error', async () => {
  const closes = await fakeProxy((s) => s.destroy());
  const c = await openConnectTunnel(await connected(closes), proxyUrl(closes), target(), { signal: signal(), timeoutMs: 5000 });
  assertFailure(c);
  assert.match(c.message, /closed the connection before answering the CONNECT/);

  const ssh = await fakeProxy((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
  const m = await openConnectTunnel(await connected(ssh), proxyUrl(ssh), target(), { signal: signal(), timeoutMs: 5000 });
  assertFailure(m);
  assert.match(m.message, /did not answer the CONNECT to .* with HTTP: "SSH-2\.0-OpenSSH_9\.2"$/);

  const endless = await fakeProxy((s) => s.write(`HTTP/1.1 200 OK\r\n${'X-Pad: y\r\n'.repeat(8000)}`));
  const e = await openConnectTunnel(await connected(endless), proxyUrl(endless), target(), { signal: signal(), timeoutMs: 5000 });
  assertFailure(e);
  assert.match(e.message, /sent more than 64 KiB without ending its answer/);
});

test('parseConnectStatus reads status lines as Go does', () => {
  assert.deepEqual(parseConnectStatus('HTTP/1.1 403 Forbidden'), { ok: true, status: 403, text: 'Forbidden' });
  assert.deepEqual(parseConnectStatus('HTTP/1.0 200 Connection established'), { ok: true, status: 200, text: 'Connection established' });
  assert.deepEqual(parseConnectStatus('HTTP/1.1 407'), { ok: true, status: 407, text: 'unknown status code' });
  assert.equal(parseConnectStatus('HTTP/1.1 4033 Nope').ok, false);
  assert.equal(parseConnectStatus('garbage').ok, false);
});

test('dialProxy: a name that does not resolve is proxy_error naming the proxy (injected connect)', async () => {
  const proxy = parseProxyUrl('http://u:pw@proxy.invalid:3128') as URL;
  const r = await dialProxy(proxy, {
    signal: signal(),
    timeoutMs: 5000,
    connect: () => {
      const s = new net.Socket();
      queueMicrotask(() => s.emit('error', Object.assign(new Error('getaddrinfo ENOTFOUND proxy.invalid'), { code: 'ENOTFOUND' })));
      return s;
    },
  });
  assertFailure(r);
  assert.equal(r.message, "cannot connect to proxy http://proxy.invalid:3128: the proxy's name does not resolve (ENOTFOUND)");
});

test('plainProxyRequest: absolute-form target and Proxy-Authorization for http:// registries', () => {
  const proxy = parseProxyUrl('http://bob:pw@proxy:3128') as URL;
  assert.equal(proxyDisplay(proxy), 'http://proxy:3128');
  assert.deepEqual(plainProxyRequest(proxy, new URL('http://registry.local:5000/v2/')), {
    path: 'http://registry.local:5000/v2/',
    headers: { 'proxy-authorization': `Basic ${Buffer.from('bob:pw').toString('base64')}` },
  });
  assert.deepEqual(plainProxyRequest(parseProxyUrl('proxy:3128') as URL, new URL('http://r/v2/')).headers, {});
});
