/**
 * Trust as containerd on the node has it (issue 6): the node's system CA
 * bundle under the host root and NODE_EXTRA_CA_CERTS are trusted, so a
 * corporate CA the node trusts is not reported as tls_unknown_ca. Loopback
 * TLS server, test PKI generated at test time.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadEnvironment } from '../../src/node-config/environment.js';
import { loadNodeTrust, SecureContextCache, TrustCache } from '../../src/node-config/trust.js';
import { tlsStage } from '../../src/probe/stages/tls.js';
import { realClock, silentLog, type ProbeContext } from '../../src/model/types.js';
import { createCA, type TestCA } from '../support/certs.js';
import { within } from '../support/within.js';

const HOST = 'registry.corp.test';
let ca: TestCA;
let server: tls.Server;
let port: number;
const dirs: string[] = [];

before(async () => {
  ca = createCA('corp root CA');
  const leaf = ca.issue('registry', { sans: [HOST] });
  server = tls.createServer({ cert: leaf.cert, key: leaf.key }, (s) => s.end());
  await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 5000, 'the server to listen');
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  await within(new Promise<void>((resolve) => server.close(() => resolve())), 5000, 'the server to close');
  ca.cleanup();
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pullprobe-trust-'));
  dirs.push(d);
  return d;
}

function put(root: string, path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

function ctx(): ProbeContext {
  return {
    signal: new AbortController().signal,
    deadlineAt: realClock.now() + 10_000,
    clock: realClock,
    log: silentLog,
    wallNow: Date.now,
  };
}

async function handshake(caList: string[]): Promise<{ ok: boolean; reason?: string }> {
  const out = await tlsStage(ctx(), { host: HOST, address: '127.0.0.1', port }, { ca: caList, handshakeTimeoutMs: 5000 });
  return out.ok ? { ok: true } : { ok: false, reason: out.reason ?? '' };
}

const envOf = (hostRoot: string, extra = ''): ReturnType<typeof loadEnvironment> =>
  loadEnvironment({
    resolvConfPath: '/dev/null',
    hostsPath: null,
    hostname: 'n',
    hostRoot,
    extraCaCerts: extra,
  });

test("a CA only in the node's system bundle (Debian path, under the host root) is trusted", async () => {
  const root = tempDir();
  put(root, '/etc/ssl/certs/ca-certificates.crt', `${tls.rootCertificates[0] ?? ''}\n${ca.cert}`);
  assert.deepEqual(await handshake(envOf(root).ca), { ok: true });
  assert.deepEqual(await handshake(envOf(tempDir()).ca), { ok: false, reason: 'tls_unknown_ca' }, 'an empty node root: unknown CA');
});

test("the node's bundle is the trust set, as containerd's system pool: Node's own roots stand in only where the node has none", () => {
  const root = tempDir();
  put(root, '/etc/ssl/certs/ca-certificates.crt', ca.cert);
  const withBundle = loadNodeTrust({ caFiles: [], hostRoot: root, extraCaCerts: '' });
  assert.deepEqual(withBundle.ca, [ca.cert.trim()], "a root Node ships but the node's bundle lacks is not trusted");
  const without = loadNodeTrust({ caFiles: [], hostRoot: tempDir(), extraCaCerts: '' });
  assert.deepEqual(without.ca, [...tls.rootCertificates]);
});

test('a certificate in two files, wrapped differently, goes into the set once', () => {
  const root = tempDir();
  const rewrapped = ca.cert
    .trim()
    .replace(/\r?\n/g, '\r\n')
    .replace(/(-----BEGIN CERTIFICATE-----\r\n)(.{32})/, '$1$2\r\n');
  put(root, '/etc/ssl/certs/ca-certificates.crt', `${tls.rootCertificates[0] ?? ''}\n${ca.cert}`);
  put(root, '/corp.pem', rewrapped);
  const trust = loadNodeTrust({
    caFiles: [join(root, '/corp.pem')],
    hostRoot: root,
    extraCaCerts: join(root, '/etc/ssl/certs/ca-certificates.crt'),
  });
  assert.equal(trust.ca.length, 2, trust.ca.map((c) => c.slice(28, 60)).join(' | '));
  assert.deepEqual(trust.problems, []);
});

test('RHEL layout: ca-bundle.crt is an absolute link resolved inside the host root', async () => {
  const root = tempDir();
  put(root, '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', ca.cert);
  mkdirSync(join(root, '/etc/pki/tls/certs'), { recursive: true });
  symlinkSync('/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', join(root, '/etc/pki/tls/certs/ca-bundle.crt'));
  const trust = loadNodeTrust({ caFiles: [], hostRoot: root, extraCaCerts: '' });
  assert.equal(trust.sources[1], join(root, '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem'));
  assert.deepEqual(await handshake(trust.ca), { ok: true });
});

test('NODE_EXTRA_CA_CERTS is trusted; an unreadable one is a reported problem', async () => {
  const dir = tempDir();
  put(dir, '/extra.pem', ca.cert);
  assert.deepEqual(await handshake(envOf(tempDir(), join(dir, 'extra.pem')).ca), { ok: true });
  const env = envOf(tempDir(), join(dir, 'missing.pem'));
  assert.ok(
    env.problems.some((p) => p.startsWith('NODE_EXTRA_CA_CERTS') && p.includes('missing.pem')),
    env.problems.join(),
  );
});

test('the CA set is built once per trust set: re-reading unchanged files returns the same array', () => {
  const root = tempDir();
  put(root, '/etc/ssl/cert.pem', ca.cert);
  const trust = new TrustCache();
  const load = (): string[] => loadNodeTrust({ caFiles: [], hostRoot: root, extraCaCerts: '', cache: trust }).ca;
  const a = load();
  const b = load();
  assert.equal(a, b, 'same array, so the shared SecureContext is found without hashing');
  const contexts = new SecureContextCache();
  assert.equal(contexts.get(a), contexts.get(b));
  put(root, '/etc/ssl/cert.pem', `${ca.cert}\n${tls.rootCertificates[1] ?? ''}`);
  assert.notEqual(load(), a, 'changed content: a new set');
  assert.notEqual(
    loadNodeTrust({ caFiles: [], hostRoot: root, extraCaCerts: '' }).ca,
    loadNodeTrust({ caFiles: [], hostRoot: root, extraCaCerts: '' }).ca,
    'no module-level cache: without a TrustCache each load builds its own',
  );
  const bounded = new TrustCache({ maxEntries: 2 });
  for (const n of [1, 2, 3]) {
    put(root, '/etc/ssl/cert.pem', `${ca.cert}\n${tls.rootCertificates[n] ?? ''}`);
    loadNodeTrust({ caFiles: [], hostRoot: root, extraCaCerts: '', cache: bounded });
  }
  assert.equal(bounded.size, 2, 'at most maxEntries trust sets');
});

test("a system bundle's bad block is passed over unparsed (trusted roots still verify); a named CA file's is reported", async () => {
  const root = tempDir();
  const bad = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----';
  put(root, '/etc/ssl/certs/ca-certificates.crt', `${bad}\n${ca.cert}`);
  const env = envOf(root);
  assert.deepEqual(env.problems, []);
  assert.deepEqual(await handshake(env.ca), { ok: true }, 'OpenSSL skips the bad block when the context is built');
  put(root, '/corp.pem', `${bad}\n${ca.cert}`);
  const named = loadNodeTrust({ caFiles: [join(root, '/corp.pem')], extraCaCerts: '' });
  assert.deepEqual(named.problems, [`CA file ${join(root, '/corp.pem')}: 1 certificate(s) not valid, skipped`]);
  assert.ok(!named.ca.includes(bad));
});

test('TLS contexts: one per trust set in a cache, bounded, and never shared between two owners', () => {
  const a = [...tls.rootCertificates.slice(0, 2)];
  const b = [...tls.rootCertificates.slice(2, 4)];
  const contexts = new SecureContextCache({ maxEntries: 1 });
  const first = contexts.get(a);
  assert.equal(contexts.get([...a]), first, 'same content, another array: the same context');
  contexts.get(b);
  assert.equal(contexts.size, 1);
  assert.notEqual(contexts.get([...a]), first, 'a was dropped for b and built again');
  assert.notEqual(new SecureContextCache().get(a), new SecureContextCache().get(a), 'each owner builds its own');
});
