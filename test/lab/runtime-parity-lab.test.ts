/**
 * Parity with the runtime: for every case a REAL CRI pull by nodeA's
 * containerd 1.6 and pullprobe run in nodeA's namespace must agree — both ok,
 * or both failing with the same cause, and pullprobe's reason equal to what
 * containerd's own text classifies to through explainMessage (the table
 * `pullprobe explain` uses). nodeB stays healthy: where the fault is on the
 * network, nodeB's containerd pulls the same image as the control.
 *
 * The CRI pull (support/cri-pull.ts) goes to containerd's socket from this
 * process; the pull itself leaves from containerd's namespace. Credentials
 * are passed as the kubelet would: in the CRI AuthConfig.
 *
 * Deadlines: containerd has a 30 s dial timeout and no overall timeout (a
 * hung token service hangs it until the caller gives up). Every CRI pull
 * here has a 12 s deadline; a pull that ends by that deadline with no
 * classifiable text counts as the containerd verdict "network" (a DROP, a
 * hang) — which is what a kubelet sees as well.
 *
 * Cases that need a second-round pullprobe flag (--proxy-from-pid,
 * --credential-provider-*, --containerd-config, --pull) fail loudly with the
 * CLI's exit 2 until that flag is wired; they are not skipped.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, labTestOptions, type FaultName, type NodeName } from './support/lab.js';
import { REPO_ROOT } from './support/daemons.js';
import { criErrorText, criPull, criRemoveImage, waitForCri, type CriAuth, type CriPullResult } from './support/cri-pull.js';
import { proxyUrl } from './support/proxy.js';
import { PLAIN_REGISTRY } from './support/addresses.js';
import { providerAuth, writeProviders, type LabProviders } from './support/providers.js';
import type { ContainerdRestartOptions } from './support/lab.js';
import { explainMessage } from '../../src/diagnosis/explain.js';
import type { ProbeResult } from '../../src/model/types.js';

/** The CLI as built; PP_LAB_CLI points at another build (e.g. of a clean checkout). */
const CLI = process.env['PP_LAB_CLI'] ?? join(REPO_ROOT, 'dist', 'cli.js');
const CRI_DEADLINE_MS = 12_000;
const PROBE_TIMEOUT = '4s';
/** containerd's Go resolver re-reads resolv.conf at most every 5 s (lab-notes gotcha 5). */
const RESOLV_SETTLE_MS = 5_300;

let lab: Lab;
let providers: LabProviders;
let resolvChangedAt = 0;

type Want = 'ok' | { reason: string; cause: string };

interface Case {
  name: string;
  image: string;
  /** Fault on subnet A (nodeB is the control: its containerd pulls the same image and must succeed). */
  fault?: FaultName | FaultName[];
  /** resolv.conf preset for nodeA (containerd needs RESOLV_SETTLE_MS to see it). */
  resolv?: string;
  /** Restart nodeA's containerd like this for the case (back to the default afterwards). */
  containerd?: () => ContainerdRestartOptions;
  /** AuthConfig the kubelet would pass. */
  auth?: () => CriAuth;
  /** Extra pullprobe flags. */
  args?: () => string[];
  /** pullprobe's verdict (containerd's must agree). */
  want: Want;
  /** containerd's text names a less specific reason than pullprobe can (same cause); the reason explain gives it. */
  containerdReason?: string;
  /** containerd is expected to give up only at the CRI deadline (DROP, hang). */
  deadline?: boolean;
  /** Pass no --containerd-config-path (the case's config.toml alone says where to go). */
  noCertsD?: boolean;
  /** Checks on pullprobe's result beyond the verdict. */
  check?: (r: ProbeResult) => void;
}

interface Verdict {
  ok: boolean;
  cause: string | null;
  reason: string | null;
  text: string;
  deadline: boolean;
}

function containerdVerdict(r: CriPullResult): Verdict {
  if (r.ok) return { ok: true, cause: null, reason: null, text: `ok ${r.imageRef}`, deadline: false };
  const text = criErrorText(r);
  const e = explainMessage(text);
  if (e.reason !== null) return { ok: false, cause: e.cause, reason: e.reason, text, deadline: r.deadline };
  if (r.deadline) return { ok: false, cause: 'network', reason: null, text, deadline: true };
  return { ok: false, cause: null, reason: null, text, deadline: false };
}

async function probe(node: NodeName, image: string, extra: string[]): Promise<ProbeResult> {
  const argv = [
    'node',
    CLI,
    'probe',
    '--json',
    '--timeout',
    PROBE_TIMEOUT,
    '--resolv-conf',
    lab.paths.resolvConf[node],
    '--hosts',
    lab.paths.hosts[node],
    '--platform',
    'linux/amd64',
    ...extra,
    image,
  ];
  const r = await lab.exec(node, argv, { timeoutMs: 60_000 });
  assert.equal(r.timedOut, false, `pullprobe on ${node} did not finish: ${r.stderr}`);
  let results: ProbeResult[];
  try {
    results = JSON.parse(r.stdout) as ProbeResult[];
  } catch {
    assert.fail(`pullprobe on ${node} printed no JSON (exit ${r.code}): ${r.stderr.trim()}${r.stdout}`);
  }
  assert.equal(results.length, 1);
  return results[0] as ProbeResult;
}

const socket = (node: NodeName): string => {
  const c = lab.paths.containerd?.[node];
  assert.ok(c, 'containerd paths');
  return c.socket;
};
const certsD = (node: NodeName): string => lab.paths.containerd?.[node].configPath ?? '';
const configToml = (node: NodeName): string => join(lab.dir, 'nodes', node, 'containerd', 'config.toml');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const faults = (c: Case): FaultName[] => (c.fault === undefined ? [] : Array.isArray(c.fault) ? c.fault : [c.fault]);
/** The node's own view: certs.d (trust for the lab CA comes from hosts.toml `ca`, as containerd's). */
const base = (): string[] => ['--containerd-config-path', certsD('nodeA')];
const goodAuth = (): CriAuth => ({ username: lab.credentials.user, password: lab.credentials.password });
const proxyEnv = (url: string, noProxy = ''): ContainerdRestartOptions => ({ env: { HTTPS_PROXY: url, NO_PROXY: noProxy } });
/** HTTP_PROXY alone: what containerd sends plain-http registries through (https goes direct). */
const plainProxyEnv = (url: string): ContainerdRestartOptions => ({ env: { HTTP_PROXY: url, NO_PROXY: '' } });
const fromPid = (): string[] => ['--proxy-from-pid', String(lab.containerdPid('nodeA'))];

async function runCase(t: TestContext, c: Case): Promise<void> {
  const restart = c.containerd?.();
  if (restart) await lab.restartContainerd('nodeA', restart);
  // The lab itself: what --proxy-from-pid will read is containerd's own environment.
  for (const [k, v] of Object.entries(restart?.env ?? {})) {
    const pid = lab.containerdPid('nodeA');
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'containerd');
    assert.ok(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${k}=${v}`), `containerd's environment has ${k}`);
  }
  await waitForCri(socket('nodeA')); // the CRI plugin answers before the pull starts
  for (const f of faults(c)) lab.fault(f, { subnet: 'A' });
  if (c.resolv !== undefined) {
    lab.writeResolvConf('nodeA', c.resolv);
    resolvChangedAt = Date.now();
  }
  const settle = resolvChangedAt + RESOLV_SETTLE_MS - Date.now();
  const control = faults(c).length > 0;
  try {
    const [cri, probedOrError, ctl] = await Promise.all([
      sleep(Math.max(0, settle)).then(() => criPull(socket('nodeA'), c.image, c.auth?.(), CRI_DEADLINE_MS)),
      probe('nodeA', c.image, [...(c.noCertsD ? [] : base()), ...(c.args?.() ?? [])]).catch((e: unknown) =>
        e instanceof Error ? e : new Error(String(e)),
      ),
      control ? criPull(socket('nodeB'), c.image, c.auth?.(), CRI_DEADLINE_MS) : Promise.resolve(null),
    ]);
    // containerd's side first: its verdict is the reference, and it is checked even while pullprobe waits for a flag.
    const ctd = containerdVerdict(cri);
    t.diagnostic(`containerd (${cri.seconds.toFixed(1)} s): ${ctd.text}`);
    t.diagnostic(`containerd classified: ${ctd.ok ? 'ok' : `${ctd.reason ?? '(deadline)'} cause ${ctd.cause}`}`);
    if (ctl) assert.equal(ctl.ok, true, `control nodeB's containerd: ${ctl.ok ? '' : criErrorText(ctl)}`);
    if (c.want === 'ok') {
      assert.equal(ctd.ok, true, `containerd should pull: ${ctd.text}`);
    } else {
      assert.equal(ctd.ok, false, `containerd should fail`);
      if (c.deadline) {
        // containerd gives up only when the caller's deadline passes (its text then says "i/o timeout" or nothing).
        assert.ok(cri.seconds >= CRI_DEADLINE_MS / 1000 - 0.5, `containerd ran until the CRI deadline (${cri.seconds} s): ${ctd.text}`);
      } else {
        assert.equal(ctd.deadline, false, `containerd answered before the CRI deadline: ${ctd.text}`);
      }
      assert.equal(ctd.cause, c.want.cause, `containerd's cause: ${ctd.text}`);
      if (ctd.reason !== null || !ctd.deadline) {
        assert.equal(ctd.reason, c.containerdReason ?? c.want.reason, `containerd's text classifies to: ${ctd.text}`);
      }
    }
    if (probedOrError instanceof Error) throw probedOrError;
    const probed = probedOrError;
    const pp = `${probed.ok ? 'ok' : `${probed.stage}/${probed.reason} cause ${probed.cause}`} (${probed.message ?? ''}) host=${probed.host}`;
    t.diagnostic(`pullprobe: ${pp}`);
    const summary = `containerd: ${ctd.text}\npullprobe: ${pp}`;
    if (c.want === 'ok') {
      assert.equal(probed.ok, true, `pullprobe should say ok\n${summary}`);
    } else {
      assert.equal(probed.ok, false, `pullprobe should fail\n${summary}`);
      assert.equal(probed.reason, c.want.reason, summary);
      assert.equal(probed.cause, c.want.cause, summary);
      assert.equal(ctd.cause, probed.cause, `same cause\n${summary}`);
    }
    c.check?.(probed);
  } finally {
    lab.clear();
    if (c.resolv !== undefined) resolvChangedAt = Date.now();
    await Promise.all((['nodeA', 'nodeB'] as const).map((n) => criRemoveImage(socket(n), c.image)));
    if (c.containerd) await lab.restartContainerd('nodeA');
  }
}

describe('runtime parity: a real CRI pull and pullprobe agree', labTestOptions(), () => {
  before(async () => {
    lab = await Lab.up({ containerd: true, proxy: true });
    providers = writeProviders(join(lab.dir, 'providers'), lab.credentials, ['basic.lab.test', 'token.lab.test']);
  });
  after(async () => {
    await (lab as Lab | undefined)?.down(); // unset when before() failed
  });

  const img = (host: string, repo = 'lab/probe', tag = 'v1'): string => `${host}/${repo}:${tag}`;
  const R = img('registry.lab.test');
  const T = img('token.lab.test');
  const B = img('basic.lab.test');
  const net = (reason: string): Want => ({ reason, cause: 'network' });
  const cred = (reason: string): Want => ({ reason, cause: 'credentials' });
  const good = (): string[] => ['--docker-config', lab.paths.dockerConfig.good];

  // Credentials go both ways: the AuthConfig for containerd, the same secret through --docker-config for pullprobe.
  const existing: Case[] = [
    { name: 'healthy', image: R, want: 'ok' },
    { name: 'reject-443', image: R, fault: 'reject-443', want: net('tcp_refused') },
    { name: 'drop-443', image: R, fault: 'drop-443', want: net('tcp_timeout'), deadline: true },
    { name: 'unreach-443', image: R, fault: 'unreach-443', want: net('tcp_unreachable') },
    { name: 'token-reject-443', image: T, auth: goodAuth, args: good, fault: 'token-reject-443', want: net('tcp_refused') },
    { name: 'token-drop-443', image: T, auth: goodAuth, args: good, fault: 'token-drop-443', want: net('tcp_timeout'), deadline: true },
    { name: 'token-unreach-443', image: T, auth: goodAuth, args: good, fault: 'token-unreach-443', want: net('tcp_unreachable') },
    { name: 'dns-drop-all (timeout)', image: R, fault: 'dns-drop-all', want: net('dns_timeout') },
    { name: 'tls-expired', image: R, fault: 'tls-expired', want: net('tls_expired') },
    { name: 'tls-wronghost', image: R, fault: 'tls-wronghost', want: net('tls_hostname_mismatch') },
    { name: 'tls-untrusted', image: R, fault: 'tls-untrusted', want: net('tls_unknown_ca') },
    { name: 'token-error (500)', image: T, auth: goodAuth, args: good, fault: 'token-error', want: net('token_error') },
    { name: 'token-garbage', image: T, auth: goodAuth, args: good, fault: 'token-garbage', want: net('token_error') },
    // containerd's text for a hung token service is the one for a dropped SYN to it ("failed to fetch oauth token:
    // context deadline exceeded"), which explain reads as tcp_timeout; pullprobe knows the connection was up.
    {
      name: 'token-hang',
      image: T,
      auth: goodAuth,
      args: good,
      fault: 'token-hang',
      want: net('token_error'),
      containerdReason: 'tcp_timeout',
      deadline: true,
    },
    { name: 'NXDOMAIN', image: R, resolv: 'nxdomain', want: net('dns_nxdomain') },
    { name: 'SERVFAIL', image: R, resolv: 'servfail', want: net('dns_servfail') },
    // Go (containerd) says "server misbehaving" for SERVFAIL and REFUSED alike; pullprobe asks the resolver itself.
    { name: 'REFUSED', image: R, resolv: 'refused', want: net('dns_refused'), containerdReason: 'dns_servfail' },
    { name: 'nameserver unreachable', image: R, resolv: 'dead', want: net('dns_unreachable') },
    { name: 'basic: no credentials', image: B, want: cred('auth_required') },
    {
      name: 'basic: wrong credentials',
      image: B,
      auth: () => ({ ...goodAuth(), password: 'wrong-password' }),
      args: () => ['--docker-config', lab.paths.dockerConfig.wrong],
      want: cred('auth_rejected'),
      // containerd 1.6.20 says "failed with status code [manifests v1]: 401 Unauthorized" with and without credentials.
      containerdReason: 'auth_required',
    },
    { name: 'basic: good credentials', image: B, auth: goodAuth, args: good, want: 'ok' },
    { name: 'token: no credentials', image: T, want: cred('auth_required') },
    {
      name: 'token: wrong credentials',
      image: T,
      auth: () => ({ ...goodAuth(), password: 'wrong-password' }),
      args: () => ['--docker-config', lab.paths.dockerConfig.wrong],
      want: cred('auth_rejected'),
    },
    {
      name: 'token: no pull grant',
      image: T,
      auth: () => ({ username: lab.credentials.nopullUser, password: lab.credentials.nopullPassword }),
      args: () => ['--docker-config', lab.paths.dockerConfig.nopull],
      want: cred('access_denied'),
      // containerd answers a token without the grant as it answers no token: "insufficient_scope: authorization failed".
      containerdReason: 'auth_required',
    },
    { name: 'missing tag', image: img('registry.lab.test', 'lab/probe', 'v2'), want: { reason: 'manifest_unknown', cause: 'missing' } },
    {
      name: 'missing platform (index without linux/amd64)',
      image: img('registry.lab.test', 'lab/amd64only'),
      want: { reason: 'platform_missing', cause: 'missing' },
    },
  ];

  const proxyCases: Case[] = [
    {
      name: 'proxy ok: direct path blocked, containerd and pullprobe go through proxy.lab.test',
      image: R,
      fault: 'reject-443',
      containerd: () => proxyEnv(proxyUrl('ok')),
      args: fromPid,
      want: 'ok',
      check: (r) => {
        assert.equal(r.proxy, proxyUrl('ok'), 'the result names the proxy');
        assert.match(readFileSync(join(lab.paths.logs, 'tinyproxy-ok.log'), 'utf8'), /CONNECT registry\.lab\.test:443/);
      },
    },
    {
      name: 'proxy down: no fallback to direct',
      image: R,
      containerd: () => proxyEnv(proxyUrl('dead')),
      args: fromPid,
      want: net('proxy_error'),
    },
    {
      name: 'proxy refusing CONNECT (403 Access violation)',
      image: R,
      containerd: () => proxyEnv(proxyUrl('deny')),
      args: fromPid,
      want: net('proxy_error'),
    },
    {
      name: 'proxy wants credentials (407)',
      image: R,
      containerd: () => proxyEnv(proxyUrl('auth')),
      args: fromPid,
      want: net('proxy_error'),
    },
    {
      name: 'proxy with its credentials in the URL',
      image: R,
      fault: 'reject-443',
      containerd: () => proxyEnv(proxyUrl('auth').replace('://', `://${lab.credentials.user}:${lab.credentials.password}@`)),
      args: fromPid,
      want: 'ok',
      check: (r) => assert.doesNotMatch(JSON.stringify(r), new RegExp(lab.credentials.password), 'no proxy password in the result'),
    },
    {
      name: 'plain-http registry through HTTP_PROXY, the direct path refused: the requests go to the proxy in absolute form',
      image: img(PLAIN_REGISTRY),
      fault: 'reject-80',
      containerd: () => plainProxyEnv(proxyUrl('ok')),
      args: fromPid,
      want: 'ok',
      check: (r) => {
        assert.equal(r.proxy, proxyUrl('ok'), 'the result names the proxy');
        assert.match(
          readFileSync(join(lab.paths.logs, 'tinyproxy-ok.log'), 'utf8'),
          /HEAD http:\/\/plain\.lab\.test\/v2\/lab\/probe\/manifests\//,
        );
      },
    },
    {
      name: 'plain-http registry, HTTP_PROXY down: proxy_error, no fallback to direct',
      image: img(PLAIN_REGISTRY),
      containerd: () => plainProxyEnv(proxyUrl('dead')),
      args: fromPid,
      want: net('proxy_error'),
    },
    {
      name: 'plain-http registry, HTTP_PROXY wants credentials (407 to the HEAD): proxy_error',
      image: img(PLAIN_REGISTRY),
      containerd: () => plainProxyEnv(proxyUrl('auth')),
      args: fromPid,
      want: net('proxy_error'),
    },
    {
      name: 'NO_PROXY bypass: a dead proxy, the registry listed in NO_PROXY',
      image: R,
      containerd: () => proxyEnv(proxyUrl('dead'), '.lab.test'),
      args: fromPid,
      want: 'ok',
      check: (r) => assert.equal(r.proxy ?? null, null, 'went direct'),
    },
  ];

  const providerArgs = (which: keyof LabProviders['config']): (() => string[]) => {
    return () => ['--credential-provider-config', providers.config[which], '--credential-provider-bin-dir', providers.binDir];
  };
  const credentialCases: Case[] = [
    {
      name: 'credentials only from a credential provider',
      image: B,
      auth: () => providerAuth(lab.credentials),
      args: providerArgs('good'),
      want: 'ok',
      check: (r) => {
        assert.equal(r.credentials?.source, 'credential-provider');
        assert.match(
          readFileSync(providers.calls, 'utf8'),
          /basic\.lab\.test\/lab\/probe\n/,
          'the plugin got the repository without the tag',
        );
      },
    },
    { name: 'credential provider failing: anonymous pull', image: B, args: providerArgs('failing'), want: cred('auth_required') },
    {
      name: 'credential provider hanging: anonymous pull within the deadline',
      image: B,
      args: providerArgs('hanging'),
      want: cred('auth_required'),
    },
    {
      name: 'credentials only from config.toml registry.configs auth',
      image: B,
      containerd: () => ({
        extra:
          `[plugins."io.containerd.grpc.v1.cri".registry.configs."basic.lab.test".auth]\n` +
          `  username = "${lab.credentials.user}"\n  password = "${lab.credentials.password}"\n`,
      }),
      args: () => ['--containerd-config', configToml('nodeA')],
      want: 'ok',
      check: (r) => assert.equal(r.credentials?.source, 'containerd-config'),
    },
    {
      name: 'mirror down with fallback (config.toml registry.mirrors, no config_path)',
      image: R,
      containerd: () => ({
        configPath: false,
        extra:
          `[plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.lab.test"]\n` +
          `  endpoint = ["https://${lab.addresses.dnsDead}", "https://registry.lab.test"]\n` +
          `[plugins."io.containerd.grpc.v1.cri".registry.configs."registry.lab.test".tls]\n  ca_file = "${lab.paths.caFile}"\n`,
      }),
      // No --containerd-config-path: the file's mirrors and configs.tls (and nothing else) say where to go and whom to trust.
      noCertsD: true,
      args: () => ['--containerd-config', configToml('nodeA')],
      want: 'ok',
      check: (r) => assert.equal(r.degraded, true, 'a failing mirror with a working fallback is degraded'),
    },
    {
      name: '--pull: pullprobe pulls through the same CRI socket, its runtime step agrees',
      image: img('registry.lab.test', 'lab/single'),
      args: () => ['--pull', '--cri-endpoint', `unix://${socket('nodeA')}`],
      want: 'ok',
      check: (r) => assert.equal(r.steps.find((s) => s.stage === 'runtime')?.ok, true, 'a runtime step that pulled'),
    },
    // A failing path with --pull: pullprobe's own CRI pull fails too, and its text classifies to the HTTP verdict.
    ...(
      [
        ['reject-443', net('tcp_refused')],
        ['tls-untrusted', net('tls_unknown_ca')],
      ] as const
    ).map(([fault, want]): Case => ({
      name: `--pull with ${fault}: the runtime step's classified reason is the HTTP verdict's`,
      image: img('registry.lab.test', 'lab/single'),
      fault,
      args: () => ['--pull', '--cri-endpoint', `unix://${socket('nodeA')}`],
      want,
      check: (r) => {
        const rt = r.steps.find((s) => s.stage === 'runtime');
        assert.equal(rt?.ok, false, 'the runtime step failed too');
        assert.equal(rt.reason, 'runtime_pull_failed');
        const classified = rt.detail && 'classified' in rt.detail ? rt.detail.classified : null;
        assert.deepEqual(classified && { reason: classified.reason, cause: classified.cause }, want, JSON.stringify(rt));
      },
    })),
  ];

  describe("the lab's faults (flags pullprobe has today)", () => {
    for (const c of existing) test(c.name, (t) => runCase(t, c));
  });
  describe('proxy (needs --proxy-from-pid)', () => {
    for (const c of proxyCases) test(c.name, (t) => runCase(t, c));
  });
  describe("the kubelet's and containerd's credentials, mirrors, --pull", () => {
    for (const c of credentialCases) test(c.name, (t) => runCase(t, c));
  });
});
