import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, mock, test } from 'node:test';
import { parseSubjectAltName, tlsStage, type TlsInput } from '../../src/probe/stages/tls.js';
import { connectOverSocket } from '../../src/net/tls-client.js';
import { loadTrust, pemCertificates, SecureContextCache, TrustError } from '../../src/node-config/trust.js';
import { realClock, silentLog, type ProbeContext } from '../../src/model/types.js';
import { createCA, opensslDate, type CertPair, type TestCA } from '../support/certs.js';
import { FakeTime, settle, track } from '../support/fake-time.js';
import { until, within } from '../support/within.js';

function makeCtx(timeoutMs = 10_000, wallNow = () => Date.now()): ProbeContext {
  return { signal: new AbortController().signal, deadlineAt: realClock.now() + timeoutMs, clock: realClock, log: silentLog, wallNow };
}

/** A context on fake time: the handshake timeout and the deadline wait for time.advance(). */
function fakeCtx(time: FakeTime, timeoutMs = 10_000): ProbeContext {
  return {
    signal: new AbortController().signal,
    deadlineAt: time.now() + timeoutMs,
    clock: time,
    timers: time,
    log: silentLog,
    wallNow: () => Date.now(),
  };
}

/** A TCP server that reads and never answers; `greeted()` once a client sent bytes (its ClientHello). */
function silentServer(): { server: net.Server; greeted: () => boolean } {
  let greeted = false;
  return {
    server: net.createServer((s) =>
      s.on('data', () => {
        greeted = true;
      }),
    ),
    greeted: () => greeted,
  };
}

interface Running {
  port: number;
  /** SNI names the server saw (a handshake without SNI adds nothing). */
  sni: string[];
  /** Resolves once a connection was accepted and none is open any more (the client let go). */
  drained(): Promise<void>;
  close(): Promise<void>;
}

async function tlsServer(pair: CertPair, extraChain = ''): Promise<Running> {
  const sni: string[] = [];
  const context = tls.createSecureContext({ key: pair.key, cert: pair.cert + extraChain });
  const server = tls.createServer({
    key: pair.key,
    cert: pair.cert + extraChain,
    // Called during the ClientHello, only when the client sent SNI.
    SNICallback: (name, cb) => {
      sni.push(name);
      cb(null, context);
    },
  });
  server.on('tlsClientError', () => {});
  return start(server, sni);
}

async function start(server: net.Server, sni: string[] = []): Promise<Running> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  server.on('connection', (s: net.Socket) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await within(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)), 5000, 'the server to listen');
  return {
    port: (server.address() as net.AddressInfo).port,
    sni,
    drained: async () => {
      // Counted by the server itself (also for sockets tls.Server has wrapped).
      for (let i = 0; i < 300; i++) {
        const open = await new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
        if (accepted > 0 && open === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`connection still open (accepted ${accepted})`);
    },
    close: () =>
      within(
        new Promise((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
        5000,
        'the server to close',
      ),
  };
}

const HOST = 'registry.lab.test';

/**
 * The two ways the stage is reached: it dials itself (the CLI's and tests' path), or it upgrades the
 * TCP stage's connected socket (the probe's one connection; tls-client.ts, without tls.connect).
 */
const VIAS = [
  {
    name: 'its own connection',
    input: (host: string, port: number): Promise<TlsInput> => Promise.resolve({ host, address: '127.0.0.1', port }),
  },
  {
    name: "the TCP stage's connected socket",
    input: async (host: string, port: number): Promise<TlsInput> => ({ host, address: '127.0.0.1', port, socket: await dial(port) }),
  },
];

function dial(port: number): Promise<net.Socket> {
  return within(
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    }),
    5000,
    'a TCP connection to the test server',
  );
}

for (const via of VIAS) {
  describe(`tlsStage over ${via.name}`, { timeout: 30_000 }, () => {
    let ca: TestCA;
    let otherCA: TestCA;
    let trusted: string[];
    let good: CertPair;
    let expired: CertPair;
    let otherName: CertPair;
    let ipCert: CertPair;
    let untrusted: CertPair;
    let untrustedExpired: CertPair;
    let untrustedOtherName: CertPair;
    let longLived: CertPair;

    before(() => {
      ca = createCA();
      otherCA = createCA('some other CA');
      trusted = loadTrust([ca.certPath]).ca;
      good = ca.issue('good', { sans: [HOST, '127.0.0.1'] });
      expired = ca.issue('expired', { sans: [HOST], startDate: '20240101000000Z', endDate: '20240201000000Z' });
      otherName = ca.issue('other', { sans: ['other.test'] });
      ipCert = ca.issue('ip', { sans: ['127.0.0.1'] });
      untrusted = otherCA.issue('untrusted', { sans: [HOST] });
      untrustedExpired = otherCA.issue('untrusted-expired', { sans: [HOST], startDate: '20240101000000Z', endDate: '20240201000000Z' });
      untrustedOtherName = otherCA.issue('untrusted-other', { sans: ['other.test'] });
      // Outlives its CA (CA: 10 years), so the earliest expiry in the chain is the CA's.
      longLived = ca.issue('long', { sans: [HOST], endDate: opensslDate(new Date(Date.now() + 20 * 365 * 86400_000)) });
    });
    after(() => {
      ca.cleanup();
      otherCA.cleanup();
    });

    async function probe(pair: CertPair, opts: { host?: string; skipVerify?: boolean; wallNow?: () => number; chain?: string } = {}) {
      const srv = await tlsServer(pair, opts.chain);
      try {
        const out = await tlsStage(makeCtx(10_000, opts.wallNow), await via.input(opts.host ?? HOST, srv.port), {
          ca: trusted,
          handshakeTimeoutMs: 5000,
          ...(opts.skipVerify ? { skipVerify: true } : {}),
        });
        return { out, sni: srv.sni, port: srv.port };
      } finally {
        await srv.close();
      }
    }

    test('good certificate from a CA in opts.ca → ok, SNI sent, details recorded', async () => {
      const { out, sni, port } = await probe(good);
      assert.equal(out.ok, true, out.message);
      assert.equal(out.reason, undefined);
      assert.equal(out.host, `${HOST}:${port}`);
      assert.deepEqual(sni, [HOST]);
      const d = out.detail;
      assert.match(d.protocol ?? '', /^TLSv1\.[23]$/);
      assert.ok(d.cipher);
      assert.deepEqual(d.sans, [HOST, '127.0.0.1']);
      assert.match(d.subject ?? '', new RegExp(`CN=${HOST.replace(/\./g, '\\.')}`));
      assert.match(d.issuer ?? '', /CN=pullprobe test CA/);
      assert.match(d.notAfter ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      assert.match(d.notBefore ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      // The leaf expires before the CA, so it is the earliest in the chain.
      assert.equal(d.earliestExpiry, d.notAfter);
      assert.equal(d.earliestExpirySeconds, Date.parse(d.notAfter ?? '') / 1000);
      assert.equal(d.authorizationError, undefined);
      assert.ok((d.chain?.length ?? 0) >= 1);
      assert.equal(d.chain?.[0]?.notAfter, d.notAfter);
    });

    test('the client closes its connection after the handshake and after a timeout', async () => {
      const srv = await tlsServer(good);
      const silent = await start(net.createServer((s) => s.resume()));
      try {
        const ok = await tlsStage(makeCtx(), await via.input(HOST, srv.port), { ca: trusted, handshakeTimeoutMs: 5000 });
        assert.equal(ok.ok, true, ok.message);
        await srv.drained();
        const late = await tlsStage(makeCtx(), await via.input(HOST, silent.port), { ca: trusted, handshakeTimeoutMs: 100 });
        assert.equal(late.reason, 'tls_timeout');
        await silent.drained();
      } finally {
        await srv.close();
        await silent.close();
      }
    });

    test("earliestExpiry is the earliest notAfter in the chain, not the leaf's", async () => {
      const { out } = await probe(longLived, { chain: ca.cert });
      assert.equal(out.ok, true, out.message);
      const chain = out.detail.chain ?? [];
      assert.ok(chain.length >= 2, `chain ${JSON.stringify(chain)}`);
      const caNotAfter = chain[1]?.notAfter ?? '';
      assert.ok(Date.parse(caNotAfter) < Date.parse(out.detail.notAfter ?? ''));
      assert.equal(out.detail.earliestExpiry, caNotAfter);
      assert.equal(out.detail.earliestExpirySeconds, Date.parse(caNotAfter) / 1000);
    });

    test('certificate from an unknown CA → tls_unknown_ca, details still recorded', async () => {
      const { out } = await probe(untrusted);
      assert.equal(out.ok, false);
      assert.equal(out.reason, 'tls_unknown_ca');
      assert.ok(out.detail.authorizationError);
      assert.match(out.detail.issuer ?? '', /CN=some other CA/);
      assert.deepEqual(out.detail.sans, [HOST]);
      assert.ok(out.detail.earliestExpiry);
    });

    test('skipVerify accepts an unknown CA but keeps the verification code in detail', async () => {
      const { out } = await probe(untrusted, { skipVerify: true });
      assert.equal(out.ok, true);
      assert.ok(out.detail.authorizationError);
    });

    test('expired certificate → tls_expired, notAfter recorded', async () => {
      const { out } = await probe(expired);
      assert.equal(out.ok, false);
      assert.equal(out.reason, 'tls_expired');
      assert.equal(out.detail.notAfter, '2024-02-01T00:00:00Z');
      assert.equal(out.detail.earliestExpiry, '2024-02-01T00:00:00Z');
      assert.equal(out.detail.earliestExpirySeconds, Date.UTC(2024, 1, 1) / 1000);
    });

    test('expiry is judged with the injected wall clock', async () => {
      const inThreeYears = (): number => Date.now() + 3 * 365 * 86400_000;
      const { out } = await probe(good, { wallNow: inThreeYears });
      assert.equal(out.reason, 'tls_expired');
    });

    test('certificate for other.test reached as registry.lab.test → tls_hostname_mismatch', async () => {
      const { out, sni } = await probe(otherName);
      assert.equal(out.ok, false);
      assert.equal(out.reason, 'tls_hostname_mismatch');
      assert.deepEqual(sni, [HOST]);
      assert.deepEqual(out.detail.sans, ['other.test']);
    });

    test('IP host: no SNI, verified against IP SANs', async () => {
      const ok = await probe(ipCert, { host: '127.0.0.1' });
      assert.equal(ok.out.ok, true, ok.out.message);
      assert.deepEqual(ok.sni, []);
      const bad = await probe(otherName, { host: '127.0.0.1' });
      assert.equal(bad.out.reason, 'tls_hostname_mismatch');
      assert.deepEqual(bad.sni, []);
    });

    test("several problems are reported in Go's order: expiry, then host name, then unknown CA", async () => {
      const expiredAndUnknown = await probe(untrustedExpired);
      assert.equal(expiredAndUnknown.out.reason, 'tls_expired');
      const mismatchAndUnknown = await probe(untrustedOtherName);
      assert.equal(mismatchAndUnknown.out.reason, 'tls_hostname_mismatch');
    });

    test('plain HTTP on the port → tls_handshake', async () => {
      const srv = await start(http.createServer((_req, res) => res.end('hello')));
      try {
        const out = await tlsStage(makeCtx(), await via.input(HOST, srv.port), { ca: trusted, handshakeTimeoutMs: 5000 });
        assert.equal(out.ok, false);
        assert.equal(out.reason, 'tls_handshake');
        assert.ok(out.detail.error);
        assert.equal(out.detail.subject, undefined);
      } finally {
        await srv.close();
      }
    });

    test('the server hangs up during the handshake → tls_handshake, ECONNRESET', async () => {
      const srv = await start(net.createServer((s) => s.once('data', () => s.end())));
      try {
        const out = await tlsStage(makeCtx(), await via.input(HOST, srv.port), { ca: trusted, handshakeTimeoutMs: 5000 });
        assert.equal(out.reason, 'tls_handshake');
        assert.equal(out.detail.error, 'ECONNRESET');
        await srv.drained();
      } finally {
        await srv.close();
      }
    });

    test('server accepts TCP but never answers the ClientHello → tls_timeout within handshakeTimeoutMs', async () => {
      const silent = silentServer();
      const srv = await start(silent.server);
      try {
        const time = new FakeTime();
        const run = track(tlsStage(fakeCtx(time), await via.input(HOST, srv.port), { ca: trusted, handshakeTimeoutMs: 200 }));
        await until(silent.greeted, 5000, 'the ClientHello at the server');
        time.advance(199);
        await new Promise((r) => setImmediate(r));
        assert.equal(run.settled(), false, 'still handshaking 1 ms before handshakeTimeoutMs');
        time.advance(1);
        const out = await settle(time, run.p, 'the TLS stage after its handshake timeout');
        assert.equal(out.ok, false);
        assert.equal(out.reason, 'tls_timeout');
        assert.equal(out.seconds, 0.2);
      } finally {
        await srv.close();
      }
    });

    test('the probe deadline caps the handshake timeout', async () => {
      const silent = silentServer();
      const srv = await start(silent.server);
      try {
        const time = new FakeTime();
        const run = track(tlsStage(fakeCtx(time, 150), await via.input(HOST, srv.port), { ca: trusted, handshakeTimeoutMs: 30_000 }));
        await until(silent.greeted, 5000, 'the ClientHello at the server');
        time.advance(150);
        const out = await settle(time, run.p, 'the TLS stage at the probe deadline');
        assert.equal(out.reason, 'tls_timeout');
        assert.equal(out.seconds, 0.15, 'ended at the probe deadline, not after handshakeTimeoutMs');
      } finally {
        await srv.close();
      }
    });
  });
}

describe("tlsStage over the TCP stage's socket: the peer's chain", { timeout: 30_000 }, () => {
  let ca: TestCA;
  before(() => {
    ca = createCA();
  });
  after(() => ca.cleanup());

  test('is read in detail once per leaf and trust store, not on every handshake (tls.connect reads it on each)', async () => {
    const srv = await tlsServer(ca.issue('good', { sans: [HOST] }));
    const spy = mock.method(tls.TLSSocket.prototype, 'getPeerCertificate');
    const detailed = (): number => spy.mock.calls.filter((c) => c.arguments[0] === true).length;
    try {
      const opts = { ca: loadTrust([ca.certPath]).ca, handshakeTimeoutMs: 5000, secureContexts: new SecureContextCache() };
      const input = async (): Promise<TlsInput> => ({ host: HOST, address: '127.0.0.1', port: srv.port, socket: await dial(srv.port) });
      const first = await tlsStage(makeCtx(), await input(), opts);
      assert.equal(first.ok, true, first.message);
      assert.equal(detailed(), 1, 'the first handshake with this leaf reads its chain once');
      const second = await tlsStage(makeCtx(), await input(), opts);
      assert.equal(second.ok, true, second.message);
      assert.equal(detailed(), 1, 'a later handshake with the same leaf takes the chain already read');
      assert.deepEqual(second.detail.chain, first.detail.chain);
    } finally {
      spy.mock.restore();
      await srv.close();
    }
  });
});

describe('connectOverSocket: the same socket with or without TLSSocket internals (fallback: tls.connect)', { timeout: 30_000 }, () => {
  let ca: TestCA;
  let otherCA: TestCA;
  before(() => {
    ca = createCA();
    otherCA = createCA('some other CA');
  });
  after(() => {
    ca.cleanup();
    otherCA.cleanup();
  });

  for (const internals of [true, false]) {
    test(`internals ${String(internals)}: secureConnect, SNI, authorized or the verification code`, async () => {
      const context = tls.createSecureContext({ ca: loadTrust([ca.certPath]).ca });
      for (const [pair, authorized] of [
        [ca.issue('good', { sans: [HOST] }), true],
        [otherCA.issue('untrusted', { sans: [HOST] }), false],
      ] as const) {
        const srv = await tlsServer(pair);
        const spy = mock.method(tls.TLSSocket.prototype, 'getPeerCertificate');
        try {
          const socket = connectOverSocket({ socket: await dial(srv.port), secureContext: context, servername: HOST }, internals);
          await within(once(socket, 'secureConnect'), 5000, 'the handshake');
          assert.equal(socket.authorized, authorized);
          if (authorized) assert.ok(!socket.authorizationError);
          else assert.match(String(socket.authorizationError), /^[A-Z_]+$/, 'the verification code, a string');
          assert.deepEqual(srv.sni, [HOST]);
          // tls.connect reads the chain in detail for its identity check (after a verified chain); the direct socket never does.
          const detailed = spy.mock.calls.filter((c) => c.arguments[0] === true).length;
          assert.equal(detailed > 0, !internals && authorized);
          socket.destroy();
        } finally {
          spy.mock.restore();
          await srv.close();
        }
      }
    });
  }
});

describe('parseSubjectAltName', () => {
  test('DNS and IP entries, quoted values', () => {
    assert.deepEqual(parseSubjectAltName('DNS:registry.lab.test, IP Address:127.0.0.1'), [
      { type: 'DNS', value: 'registry.lab.test' },
      { type: 'IP', value: '127.0.0.1' },
    ]);
    assert.deepEqual(parseSubjectAltName('DNS:"a, b.test", DNS:c.test'), [
      { type: 'DNS', value: 'a, b.test' },
      { type: 'DNS', value: 'c.test' },
    ]);
    assert.deepEqual(parseSubjectAltName(undefined), []);
    assert.deepEqual(parseSubjectAltName(''), []);
  });
});

describe('loadTrust', () => {
  let dir: string;
  let ca: TestCA;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pullprobe-trust-'));
    ca = createCA('trust test CA');
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    ca.cleanup();
  });

  test('system roots plus every certificate of each file', () => {
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, `# comment\n${ca.cert}\n${ca.cert}`);
    const t = loadTrust([ca.certPath, bundle]);
    assert.equal(t.ca.length, tls.rootCertificates.length + 3);
    assert.deepEqual(t.ca.slice(0, tls.rootCertificates.length), [...tls.rootCertificates]);
    assert.equal(t.ca.at(-1)?.trim(), ca.cert.trim());
    assert.deepEqual(t.sources, ['system', ca.certPath, bundle]);
    assert.deepEqual(loadTrust([]).sources, ['system']);
  });

  test('uses the injected reader', () => {
    const seen: string[] = [];
    const t = loadTrust(['/virtual/ca.crt'], (p) => {
      seen.push(p);
      return ca.cert;
    });
    assert.deepEqual(seen, ['/virtual/ca.crt']);
    assert.equal(t.ca.length, tls.rootCertificates.length + 1);
  });

  test('a missing file → TrustError naming the file', () => {
    const missing = join(dir, 'nope.crt');
    assert.throws(
      () => loadTrust([missing]),
      (err: unknown) => {
        assert.ok(err instanceof TrustError);
        assert.equal(err.code, 'PULLPROBE_TRUST');
        assert.equal(err.path, missing);
        assert.ok(err.message.includes(missing));
        return true;
      },
    );
  });

  test('a file without a PEM certificate → TrustError naming the file', () => {
    const notPem = join(dir, 'key-only.pem');
    writeFileSync(notPem, ca.key);
    assert.throws(
      () => loadTrust([ca.certPath, notPem]),
      (err: unknown) => {
        assert.ok(err instanceof TrustError);
        assert.equal(err.code, 'PULLPROBE_TRUST');
        assert.ok(err.path === notPem && err.message.includes(notPem), err.message);
        return true;
      },
    );
  });

  test('a PEM block that is not a certificate → TrustError naming the file', () => {
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
    assert.throws(
      () => loadTrust([broken]),
      (err: unknown) => err instanceof TrustError && err.path === broken,
    );
  });

  test('pemCertificates finds each block', () => {
    assert.equal(pemCertificates(`x\n${ca.cert}y\n${ca.cert}`).length, 2);
    assert.equal(pemCertificates(ca.key).length, 0);
  });
});
