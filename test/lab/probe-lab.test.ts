/**
 * The probe chain against real daemons: dnsmasq, Debian's docker-registry
 * with real TLS and real auth, a JWT token service, nftables faults on the
 * router. Each fault is applied to subnet A (nodeA) while subnet B (nodeB)
 * stays healthy as the control. The CLI runs as built (`node dist/cli.js`)
 * inside the node namespaces, as an operator would run it on a node.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab, labTestOptions, type NodeName } from './support/lab.js';
import { REPO_ROOT } from './support/daemons.js';
import type { ProbeResult } from '../../src/model/types.js';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const TIMEOUT = '4s';

let lab: Lab;

interface Run {
  code: number | null;
  results: ProbeResult[];
  stderr: string;
  seconds: number;
}

async function probe(node: NodeName, targets: string[], extra: string[] = []): Promise<Run> {
  const argv = [
    'node',
    CLI,
    'probe',
    '--json',
    '--timeout',
    TIMEOUT,
    '--resolv-conf',
    lab.paths.resolvConf[node],
    '--hosts',
    lab.paths.hosts[node],
    '--ca-file',
    lab.paths.caFile,
    '--platform',
    'linux/amd64',
    ...extra,
    ...targets,
  ];
  const r = await lab.exec(node, argv, { timeoutMs: 60_000 });
  assert.equal(r.timedOut, false, `probe on ${node} did not finish: ${r.stderr}`);
  let results: ProbeResult[];
  try {
    results = JSON.parse(r.stdout) as ProbeResult[];
  } catch {
    assert.fail(`probe on ${node} printed no JSON (exit ${r.code}): ${r.stderr}${r.stdout}`);
  }
  return { code: r.code, results, stderr: r.stderr, seconds: r.seconds };
}

function only(run: Run): ProbeResult {
  assert.equal(run.results.length, 1);
  return run.results[0] as ProbeResult;
}

function expectFailure(r: ProbeResult, stage: string, reason: string, cause: string, host?: string): void {
  const summary = `${r.target}: ${r.stage}/${r.reason} (${r.message}) host=${r.host}`;
  assert.equal(r.ok, false, summary);
  assert.equal(r.stage, stage, summary);
  assert.equal(r.reason, reason, summary);
  assert.equal(r.cause, cause, summary);
  if (host !== undefined) assert.equal(r.host, host, summary);
  assert.ok(r.hint && r.hint.length > 0, 'a failure carries a fix');
  const last = r.steps[r.steps.length - 1];
  assert.equal(last?.ok, false, 'the failing step is the last step');
}

function expectOk(r: ProbeResult, degraded = false): void {
  assert.equal(r.ok, true, `${r.target}: expected ok, got ${r.stage}/${r.reason} (${r.message}) host=${r.host}`);
  assert.equal(r.degraded, degraded, `${r.target}: degraded`);
  assert.equal(r.reason, null);
}

/** Probe on the faulted node A and the control node B at the same time. */
async function faultedAndControl(targets: string[], extraA: string[] = [], extraB: string[] = extraA): Promise<[Run, Run]> {
  return Promise.all([probe('nodeA', targets, extraA), probe('nodeB', targets, extraB)]);
}

describe('probe chain in the network lab', labTestOptions(), () => {
  before(async () => {
    lab = await Lab.up();
  });
  after(async () => {
    await (lab as Lab | undefined)?.down(); // unset when before() failed
  });

  const image = (host: string, repo = 'lab/probe', tag = 'v1'): string => `${host}/${repo}:${tag}`;

  test('healthy lab: every kind of target is ok from both subnets, exit 0', async () => {
    const targets = [
      image('registry.lab.test'),
      `registry.lab.test/lab/probe@${lab.images.find((i) => i.repository === 'lab/probe')?.digest}`,
      image('registry.lab.test', 'lab/single'),
      'registry.lab.test',
      image('basic.lab.test'),
      image('token.lab.test'),
    ];
    const [a, b] = await faultedAndControl(targets, ['--docker-config', lab.paths.dockerConfig.good]);
    for (const run of [a, b]) {
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.results.length, targets.length);
      run.results.forEach((r, i) => {
        assert.equal(r.target, targets[i], 'output keeps the input order');
        expectOk(r);
      });
    }
    const first = a.results[0] as ProbeResult;
    assert.deepEqual(
      first.steps.map((s) => s.stage),
      ['reference', 'dns', 'tcp', 'tls', 'http', 'auth', 'manifest'],
    );
    assert.equal(first.registry, 'registry.lab.test');
    assert.equal(first.image, 'registry.lab.test/lab/probe:v1');
    const tokenRun = a.results[5] as ProbeResult;
    assert.ok(
      tokenRun.steps.some((s) => s.stage === 'dns' && s.host === 'auth.lab.test'),
      'the token service is reached as its own hop',
    );
  });

  describe('network faults on subnet A; subnet B is the control', () => {
    const cases = [
      { fault: 'reject-443', reason: 'tcp_refused' },
      { fault: 'drop-443', reason: 'tcp_timeout' },
      { fault: 'unreach-443', reason: 'tcp_unreachable' },
    ] as const;
    for (const c of cases) {
      test(`${c.fault} → tcp/${c.reason}`, async () => {
        lab.fault(c.fault, { subnet: 'A' });
        try {
          const [a, b] = await faultedAndControl([image('registry.lab.test')]);
          expectFailure(only(a), 'tcp', c.reason, 'network', 'registry.lab.test:443');
          assert.equal(a.code, 1);
          expectOk(only(b));
          assert.equal(b.code, 0);
        } finally {
          lab.clear();
        }
      });
    }
    const tokenCases = [
      { fault: 'token-reject-443', reason: 'tcp_refused' },
      { fault: 'token-drop-443', reason: 'tcp_timeout' },
      { fault: 'token-unreach-443', reason: 'tcp_unreachable' },
    ] as const;
    for (const c of tokenCases) {
      test(`${c.fault} → tcp/${c.reason} with host = the token service`, async () => {
        lab.fault(c.fault, { subnet: 'A' });
        try {
          const extra = ['--docker-config', lab.paths.dockerConfig.good];
          const [a, b] = await faultedAndControl([image('token.lab.test')], extra);
          expectFailure(only(a), 'tcp', c.reason, 'network', 'auth.lab.test:443');
          expectOk(only(b));
        } finally {
          lab.clear();
        }
      });
    }
  });

  describe('DNS faults on node A', () => {
    test('resolver answers SERVFAIL → dns/dns_servfail', async () => {
      lab.writeResolvConf('nodeA', 'servfail');
      try {
        const [a, b] = await faultedAndControl([image('registry.lab.test')]);
        expectFailure(only(a), 'dns', 'dns_servfail', 'network', 'registry.lab.test');
        expectOk(only(b));
      } finally {
        lab.clear();
      }
    });
    test('nameserver port unreachable → dns/dns_unreachable', async () => {
      lab.writeResolvConf('nodeA', 'dead');
      try {
        const [a, b] = await faultedAndControl([image('registry.lab.test')]);
        expectFailure(only(a), 'dns', 'dns_unreachable', 'network');
        expectOk(only(b));
      } finally {
        lab.clear();
      }
    });
    test('UDP/TCP 53 dropped from subnet A → dns/dns_timeout', async () => {
      lab.fault('dns-drop-all', { subnet: 'A' });
      try {
        const [a, b] = await faultedAndControl([image('registry.lab.test')]);
        expectFailure(only(a), 'dns', 'dns_timeout', 'network');
        expectOk(only(b));
      } finally {
        lab.clear();
      }
    });
    test('one of two nameservers dead → ok but degraded, the dead one named in detail', async () => {
      lab.fault('dns-drop', { subnet: 'A' });
      try {
        const [a, b] = await faultedAndControl([image('registry.lab.test')]);
        const r = only(a);
        expectOk(r, true);
        const dns = r.steps.find((s) => s.stage === 'dns');
        const servers = dns?.stage === 'dns' && dns.detail !== undefined && 'nameservers' in dns.detail ? dns.detail.nameservers : [];
        assert.deepEqual(
          servers.map((s) => [s.server, s.error ?? s.rcode]),
          [
            [lab.addresses.dnsGood, 'timeout'],
            [lab.addresses.dnsGood2, 'NOERROR'],
          ],
        );
        expectOk(only(b), false);
      } finally {
        lab.clear();
      }
    });
    for (const [preset, reason] of [
      ['nxdomain', 'dns_nxdomain'],
      ['refused', 'dns_refused'],
    ] as const) {
      test(`resolver answers ${preset.toUpperCase()} → dns/${reason}`, async () => {
        lab.writeResolvConf('nodeA', preset);
        try {
          const [a, b] = await faultedAndControl([image('registry.lab.test')]);
          expectFailure(only(a), 'dns', reason, 'network', 'registry.lab.test');
          if (preset === 'nxdomain') assert.match(only(a).message ?? '', /no such host/, 'the seed wording');
          expectOk(only(b));
        } finally {
          lab.clear();
        }
      });
    }
    // The nodes have no IPv6 route at all: connecting a UDP socket to a ULA
    // address fails locally with ENETUNREACH (no packet leaves the namespace).
    const UNROUTABLE_V6 = 'fd00:dead:beef::53';
    test('an unroutable IPv6 nameserver behind a working one → ok but degraded, that nameserver dns_unreachable with its errno', async () => {
      lab.writeResolvConf('nodeA', `nameserver ${UNROUTABLE_V6}\nnameserver ${lab.addresses.dnsGood}\noptions timeout:1 attempts:1\n`);
      try {
        const [a, b] = await faultedAndControl([image('registry.lab.test')]);
        assert.equal(a.code, 0, `exit code (stderr: ${a.stderr})`);
        assert.doesNotMatch(a.stderr, /\n\s+at /, 'no stack trace');
        const r = only(a);
        expectOk(r, true);
        const dns = r.steps.find((s) => s.stage === 'dns');
        const servers = dns?.stage === 'dns' && dns.detail !== undefined && 'nameservers' in dns.detail ? dns.detail.nameservers : [];
        const v6 = servers.find((s) => s.server === UNROUTABLE_V6);
        assert.ok(v6, `the unroutable nameserver is listed: ${JSON.stringify(servers)}`);
        assert.match(JSON.stringify(v6), /ENETUNREACH|EHOSTUNREACH|EADDRNOTAVAIL/, 'the errno is in the detail');
        expectOk(only(b));
      } finally {
        lab.clear();
      }
    });
    test('only an unroutable IPv6 nameserver → dns/dns_unreachable, exit 1, no crash', async () => {
      lab.writeResolvConf('nodeA', `nameserver ${UNROUTABLE_V6}\noptions timeout:1 attempts:1\n`);
      try {
        const [a, b] = await faultedAndControl([image('registry.lab.test')]);
        assert.equal(a.code, 1, `exit code (stderr: ${a.stderr})`);
        assert.doesNotMatch(a.stderr, /\n\s+at /, 'no stack trace');
        expectFailure(only(a), 'dns', 'dns_unreachable', 'network');
        expectOk(only(b));
      } finally {
        lab.clear();
      }
    });
  });

  describe('TLS faults on subnet A: its connections land on a registry with a bad certificate', () => {
    const cases = [
      { fault: 'tls-expired', reason: 'tls_expired' },
      { fault: 'tls-wronghost', reason: 'tls_hostname_mismatch' },
      { fault: 'tls-untrusted', reason: 'tls_unknown_ca' },
    ] as const;
    for (const c of cases) {
      test(`${c.fault} → tls/${c.reason}`, async () => {
        lab.fault(c.fault, { subnet: 'A' });
        try {
          const [a, b] = await faultedAndControl([image('registry.lab.test')]);
          expectFailure(only(a), 'tls', c.reason, 'network', 'registry.lab.test:443');
          expectOk(only(b));
        } finally {
          lab.clear();
        }
      });
    }
    test('the same certificates by name, and trusting the other CA fixes the untrusted one', async () => {
      const run = await probe('nodeA', [image('expired.lab.test'), image('wronghost.lab.test'), image('untrusted.lab.test')]);
      assert.equal(run.code, 1);
      expectFailure(run.results[0] as ProbeResult, 'tls', 'tls_expired', 'network', 'expired.lab.test:443');
      expectFailure(run.results[1] as ProbeResult, 'tls', 'tls_hostname_mismatch', 'network', 'wronghost.lab.test:443');
      expectFailure(run.results[2] as ProbeResult, 'tls', 'tls_unknown_ca', 'network', 'untrusted.lab.test:443');
      const ctl = await probe('nodeB', [image('untrusted.lab.test')], ['--ca-file', lab.paths.untrustedCaFile]);
      expectOk(only(ctl));
    });
  });

  describe('credentials', () => {
    test('htpasswd registry: none → auth_required, wrong → auth_rejected, good → ok', async () => {
      const t = [image('basic.lab.test')];
      const none = only(await probe('nodeA', t));
      expectFailure(none, 'auth', 'auth_required', 'credentials');
      const wrong = only(await probe('nodeA', t, ['--docker-config', lab.paths.dockerConfig.wrong]));
      expectFailure(wrong, 'auth', 'auth_rejected', 'credentials');
      expectOk(only(await probe('nodeB', t, ['--docker-config', lab.paths.dockerConfig.good])));
    });
    test('token registry: none → auth_required, wrong → auth_rejected, no pull grant → access_denied', async () => {
      const t = [image('token.lab.test')];
      expectFailure(only(await probe('nodeA', t)), 'auth', 'auth_required', 'credentials');
      expectFailure(
        only(await probe('nodeA', t, ['--docker-config', lab.paths.dockerConfig.wrong])),
        'auth',
        'auth_rejected',
        'credentials',
        'auth.lab.test',
      );
      expectFailure(
        only(await probe('nodeA', t, ['--docker-config', lab.paths.dockerConfig.nopull])),
        'auth',
        'access_denied',
        'credentials',
      );
    });
    for (const mode of ['token-error', 'token-garbage', 'token-hang'] as const) {
      test(`${mode} for subnet A → auth/token_error within the deadline; B gets tokens`, async () => {
        const extra = ['--docker-config', lab.paths.dockerConfig.good];
        lab.fault(mode, { subnet: 'A' });
        try {
          const [a, b] = await faultedAndControl([image('token.lab.test')], extra);
          const r = only(a);
          expectFailure(r, 'auth', 'token_error', 'network', 'auth.lab.test');
          assert.ok(r.seconds <= 4.5, `${mode}: probe ended at its deadline (${r.seconds}s)`);
          expectOk(only(b));
        } finally {
          lab.clear();
        }
      });
    }
  });

  describe('image name and content', () => {
    test('missing tag → manifest_unknown with the nearest existing tag in the hint', async () => {
      const r = only(await probe('nodeA', [image('registry.lab.test', 'lab/probe', 'v2')]));
      expectFailure(r, 'manifest', 'manifest_unknown', 'missing');
      assert.match(r.hint ?? '', /\bv1\b/);
    });
    test('missing repository → name_unknown', async () => {
      expectFailure(only(await probe('nodeA', [image('registry.lab.test', 'lab/nope')])), 'manifest', 'name_unknown', 'name');
    });
    test('index without this platform → platform_missing', async () => {
      expectFailure(only(await probe('nodeA', [image('registry.lab.test', 'lab/amd64only')])), 'manifest', 'platform_missing', 'missing');
      // The same image is fine for the platform it was built for.
      expectOk(only(await probe('nodeB', [image('registry.lab.test', 'lab/amd64only')], ['--platform', 'linux/s390x'])));
    });
    test('invalid reference → reference/invalid_reference before any network I/O', async () => {
      const run = await probe('nodeA', ['registry.lab.test/Lab/Probe:v1']);
      expectFailure(only(run), 'reference', 'invalid_reference', 'name');
      assert.equal(only(run).steps.length, 1);
      assert.equal(run.code, 1);
    });
  });

  test('usage errors exit 2 with nothing on stdout', async () => {
    const r = await lab.exec('nodeA', ['node', CLI, 'probe', '--json', '--timeout', 'soon', 'registry.lab.test'], { timeoutMs: 20_000 });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /--timeout/);
    const missing = await lab.exec('nodeA', ['node', CLI, 'probe', '--ca-file', '/nonexistent/ca.pem', 'registry.lab.test'], {
      timeoutMs: 20_000,
    });
    assert.equal(missing.code, 2);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /\/nonexistent\/ca\.pem/);
  });
});
