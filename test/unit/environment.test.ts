/**
 * The node's own files read the way the node reads them (issue 6): links
 * under a host root resolved inside it, systemd-resolved's stub replaced by
 * its upstream list, unreadable files reported in the result and never an
 * exit (except files the CLI user named), hints naming the file used.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadEnvironment } from '../../src/node-config/environment.js';
import { resolveInHostRoot } from '../../src/node-config/host-root.js';
import { dnsStage } from '../../src/probe/stages/dns.js';
import type { DnsQueryOptions, DnsQueryResult } from '../../src/net/dns-query.js';
import { realClock, silentLog, type ProbeContext } from '../../src/model/types.js';
import { renderStatusPage } from '../../src/agent/status-page.js';
import type { ProbeResult } from '../../src/model/types.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fake node root: files and links (link targets as written on the node). */
function hostRoot(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'pullprobe-host-'));
  dirs.push(root);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  for (const [p, target] of Object.entries(links)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    symlinkSync(target, join(root, p));
  }
  return root;
}

const STUB = '/run/systemd/resolve/stub-resolv.conf';
const UPSTREAMS = '/run/systemd/resolve/resolv.conf';
const base = { hostsPath: null, hostname: 'node-1', extraCaCerts: '' } as const;

test('systemd-resolved node: /etc/resolv.conf links (absolutely) to the stub; the upstream list under the host root is used', () => {
  const root = hostRoot(
    {
      [STUB]: 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lab.test\n',
      [UPSTREAMS]: 'nameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch lab.test\n',
    },
    { '/etc/resolv.conf': STUB },
  );
  const env = loadEnvironment({ ...base, resolvConfPath: `${root}/etc/resolv.conf`, hostRoot: root });
  assert.deepEqual(
    env.resolvConf.nameservers.map((n) => n.address),
    ['10.0.0.2', '10.0.0.3'],
  );
  assert.equal(env.resolvConfPath, `${root}${UPSTREAMS}`);
  assert.equal(env.resolvConf.file, `${root}${UPSTREAMS}`);
  assert.deepEqual(env.problems, []);
});

test('a resolv.conf whose only nameserver is 127.0.0.53 is the stub too; without the upstream list the stub is kept and said', () => {
  const root = hostRoot({ '/etc/resolv.conf': 'nameserver 127.0.0.53\n', [UPSTREAMS]: 'nameserver 10.0.0.9\n' });
  const env = loadEnvironment({ ...base, resolvConfPath: `${root}/etc/resolv.conf`, hostRoot: root });
  assert.deepEqual(
    env.resolvConf.nameservers.map((n) => n.address),
    ['10.0.0.9'],
  );
  const bare = hostRoot({ '/etc/resolv.conf': 'nameserver 127.0.0.53\n' });
  const kept = loadEnvironment({ ...base, resolvConfPath: `${bare}/etc/resolv.conf`, hostRoot: bare });
  assert.deepEqual(
    kept.resolvConf.nameservers.map((n) => n.address),
    ['127.0.0.53'],
  );
  assert.equal(kept.problems.length, 1);
  assert.ok(kept.problems[0]?.startsWith(`${bare}${UPSTREAMS}: cannot read (ENOENT)`), kept.problems[0]);
});

test("only /etc mounted: the dangling link is a reported problem, glibc's fallback is used, nothing throws", async () => {
  const root = hostRoot({}, { '/etc/resolv.conf': STUB });
  const env = loadEnvironment({ ...base, resolvConfPath: `${root}/etc/resolv.conf`, hostRoot: root });
  assert.deepEqual(
    env.resolvConf.nameservers.map((n) => n.address),
    ['127.0.0.1'],
  );
  assert.equal(env.problems.length, 1);
  assert.ok(env.problems[0]?.startsWith(`${root}/etc/resolv.conf: cannot read (ENOENT)`), env.problems[0]);

  // The DNS step carries the problem and is degraded even though the answer is fine.
  const query = (o: DnsQueryOptions): Promise<DnsQueryResult> =>
    Promise.resolve({ rcode: 'NOERROR', answers: o.type === 'A' ? ['10.1.1.1'] : [], truncated: false, transport: 'udp', seconds: 0 });
  const out = await dnsStage(ctx(), { host: 'registry.lab.test' }, { resolvConf: env.resolvConf, query });
  assert.equal(out.ok, true);
  assert.equal(out.degraded, true);
  assert.deepEqual(out.detail.problems, env.problems);
});

test('links: chains and relative targets followed inside the host root, loops bounded', () => {
  const root = hostRoot(
    { '/real/resolv.conf': 'nameserver 10.0.0.4\n' },
    {
      '/etc/resolv.conf': '/var/run/resolv.conf',
      '/var/run': '../run',
      '/run/resolv.conf': '/real/resolv.conf',
      '/etc/loop': '/etc/loop2',
      '/etc/loop2': '/etc/loop',
    },
  );
  assert.equal(resolveInHostRoot(`${root}/etc/resolv.conf`, root).path, `${root}/real/resolv.conf`);
  assert.equal(
    resolveInHostRoot(`${root}/etc/../../../etc/resolv.conf`, `${root}/`).path,
    `${root}/real/resolv.conf`,
    '.. stops at the root',
  );
  assert.equal(resolveInHostRoot(`${root}/etc/loop`, root).error, 'ELOOP');
  assert.equal(resolveInHostRoot('/etc/resolv.conf', '').path, '/etc/resolv.conf', 'no host root: read as it is');
  const env = loadEnvironment({ ...base, resolvConfPath: `${root}/etc/loop`, hostRoot: root });
  assert.match(env.problems[0] ?? '', /cannot read \(ELOOP\)/);
});

test("a failing DNS step's fix names the resolv.conf actually used", async () => {
  const root = hostRoot({ [UPSTREAMS]: 'nameserver 10.0.0.2\n' }, { '/etc/resolv.conf': STUB });
  const env = loadEnvironment({ ...base, resolvConfPath: `${root}/etc/resolv.conf`, hostRoot: root });
  const query = (): Promise<DnsQueryResult> =>
    Promise.resolve({ rcode: 'NXDOMAIN', answers: [], truncated: false, transport: 'udp', seconds: 0 });
  const out = await dnsStage(ctx(), { host: 'registry.lab.test' }, { resolvConf: env.resolvConf, query });
  assert.equal(out.reason, 'dns_nxdomain');
  assert.equal(out.detail.resolvConf, `${root}${UPSTREAMS}`);
  assert.ok(out.hint?.includes(`${root}${UPSTREAMS}`), out.hint);
  assert.ok(!out.hint?.includes('/etc/resolv.conf'), out.hint);
});

test('unreadable files: reported problems by default (the agent), configuration errors naming the file when strict (the CLI)', () => {
  const root = hostRoot({ '/etc/resolv.conf': 'nameserver 10.0.0.2\n' });
  const missing = { caFiles: [`${root}/corp-ca.pem`], dockerConfigPath: `${root}/config.json`, hostsPath: `${root}/etc/hosts` };
  const env = loadEnvironment({ ...base, ...missing, resolvConfPath: `${root}/etc/resolv.conf`, hostRoot: root });
  assert.equal(env.problems.length, 3, env.problems.join('\n'));
  for (const p of Object.values(missing).flat())
    assert.ok(
      env.problems.some((x) => x.includes(p)),
      p,
    );
  assert.equal(env.auths, undefined);
  assert.deepEqual(env.resolvConf.problems, env.problems, 'shown with the DNS step');

  const strictCases: Array<[Parameters<typeof loadEnvironment>[0], RegExp]> = [
    [{ caFiles: missing.caFiles, strict: ['caFiles'] }, /corp-ca\.pem/],
    [{ dockerConfigPath: missing.dockerConfigPath, strict: ['dockerConfig'] }, /config\.json/],
    [{ resolvConfPath: `${root}/nope.conf`, strict: ['resolvConf'] }, /nope\.conf/],
  ];
  for (const [opts, re] of strictCases) {
    assert.throws(
      () => loadEnvironment({ ...base, resolvConfPath: `${root}/etc/resolv.conf`, ...opts }),
      (err: Error & { code?: string }) => ['PULLPROBE_TRUST', 'PULLPROBE_FILE_UNREADABLE'].includes(err.code ?? '') && re.test(err.message),
    );
  }
});

test('the host name gives the search domain when resolv.conf has none', () => {
  const root = hostRoot({ '/etc/resolv.conf': 'nameserver 10.0.0.2\n' });
  const env = loadEnvironment({ ...base, resolvConfPath: `${root}/etc/resolv.conf`, hostname: 'ip-10-0-0-7.ec2.internal' });
  assert.deepEqual(env.resolvConf.search, ['ec2.internal']);
});

test('status page: a visible line lists the node-file problems of the latest results', () => {
  const problem = '/host/etc/resolv.conf: cannot read (ENOENT) <x>';
  const result = {
    target: 'registry.lab.test',
    image: null,
    registry: 'registry.lab.test',
    ok: true,
    stage: null,
    reason: null,
    cause: null,
    host: null,
    message: null,
    hint: null,
    degraded: true,
    seconds: 0.01,
    steps: [{ stage: 'dns', ok: true, seconds: 0.01, degraded: true, detail: { addresses: ['10.0.0.1'], problems: [problem] } }],
  } as unknown as ProbeResult;
  const html = renderStatusPage({
    generatedAt: 0,
    node: null,
    recentFailures: [],
    targets: [
      { target: 'a', result, since: 0, lastProbeAt: 0 },
      { target: 'b', result, since: 0, lastProbeAt: 0 },
    ],
  });
  assert.match(html, /Problems reading this node's files/);
  assert.equal(html.split('/host/etc/resolv.conf: cannot read (ENOENT) &lt;x&gt;').length, 2, 'listed once, escaped');
  const clean = renderStatusPage({
    generatedAt: 0,
    node: null,
    recentFailures: [],
    targets: [{ target: 'a', result: null, since: null, lastProbeAt: null }],
  });
  assert.doesNotMatch(clean, /Problems reading/);
});

function ctx(): ProbeContext {
  return { signal: new AbortController().signal, deadlineAt: realClock.now() + 5000, clock: realClock, log: silentLog, wallNow: Date.now };
}
