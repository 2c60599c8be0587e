import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { AgentMetrics, EVENT_LOOP_PRECISION_MS, probeRegistry, registryOfTarget } from '../../src/agent/metrics.js';
import type { Reason, Stage } from '../../src/diagnosis/catalog.js';
import { causeOf, reasonInfo } from '../../src/diagnosis/catalog.js';
import type { ProbeResult, StepResult } from '../../src/model/types.js';

const PROMTOOL = '/usr/bin/promtool';
const T = 'registry.lab.test/app/api:v1';
const R = 'registry.lab.test';
const EXPIRY = 1_900_000_000;

function dnsStep(rcodes: Record<string, string | null> = { '10.0.0.53': 'NOERROR' }): StepResult {
  const nameservers = Object.entries(rcodes).map(([server, rcode]) =>
    rcode ? { server, rcode, seconds: 0.001 } : { server, rcode: null, error: 'timeout' as const, seconds: 1 },
  );
  return { stage: 'dns', ok: true, seconds: 0.002, host: R, detail: { addresses: ['10.0.0.10'], source: 'dns', name: R, nameservers } };
}

const OK_STEPS: StepResult[] = [
  { stage: 'reference', ok: true, seconds: 0.00001 },
  dnsStep(),
  { stage: 'tcp', ok: true, seconds: 0.003, host: `${R}:443` },
  { stage: 'tls', ok: true, seconds: 0.004, host: `${R}:443`, detail: { address: '10.0.0.10', earliestExpirySeconds: EXPIRY } },
  { stage: 'http', ok: true, seconds: 0.005, host: R },
  { stage: 'auth', ok: true, seconds: 0.006, host: R },
  { stage: 'manifest', ok: true, seconds: 0.007, host: R },
];

function okResult(target = T, steps = OK_STEPS): ProbeResult {
  return {
    target,
    image: target,
    registry: R,
    ok: true,
    stage: null,
    reason: null,
    cause: null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0.03,
    steps,
  };
}

function failResult(reason: Reason, target = T, message?: string): ProbeResult {
  const info = reasonInfo(reason);
  const stage: Stage = info.stage ?? 'http';
  const order: Stage[] = ['reference', 'dns', 'tcp', 'tls', 'http', 'auth', 'manifest'];
  const steps: StepResult[] = OK_STEPS.filter((s) => order.indexOf(s.stage) < order.indexOf(stage));
  steps.push({ stage, ok: false, seconds: 0.0012, host: `${R}:443`, reason });
  return {
    target,
    image: target,
    registry: R,
    ok: false,
    stage,
    reason,
    cause: causeOf(reason),
    host: `${R}:443`,
    message: message ?? info.message,
    hint: info.hint,
    degraded: false,
    seconds: 0.01,
    steps,
  };
}

/** Value of the sample with exactly this name{labels}, or undefined if absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const rt = `registry="${R}",target="${T}"`;

function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

test('an ok result sets up, stage durations, timestamps, cert expiry and nameservers', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.record(T, okResult(), 1_700_000_000);
  const text = await m.text();
  assert.equal(sample(text, `pullprobe_registry_up{${rt}}`), 1);
  assert.equal(sample(text, `pullprobe_stage_duration_seconds{${rt},stage="tcp"}`), 0.003);
  assert.equal(sample(text, `pullprobe_stage_duration_seconds{${rt},stage="manifest"}`), 0.007);
  assert.equal(sample(text, `pullprobe_degraded{${rt}}`), 0);
  assert.equal(sample(text, `pullprobe_last_probe_timestamp_seconds{${rt}}`), 1_700_000_000);
  assert.equal(sample(text, `pullprobe_last_success_timestamp_seconds{${rt}}`), 1_700_000_000);
  assert.equal(sample(text, `pullprobe_tls_cert_expiry_timestamp_seconds{registry="${R}",host="${R}:443"}`), EXPIRY);
  assert.equal(sample(text, `pullprobe_dns_nameserver_up{nameserver="10.0.0.53"}`), 1);
  assert.equal(sample(text, `pullprobe_probes_total{${rt}}`), 1);
  assert.ok(!text.includes('pullprobe_failure_info{'), 'no failure_info series while ok');
  assert.match(text, /# HELP pullprobe_registry_up .*\(cached from the last periodic probe\)/);
  assert.match(text, /# HELP pullprobe_stage_duration_seconds .*cached/);
});

test('a failing result sets failure_info and the failure counter; stages not reached disappear', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.record(T, okResult(), 100);
  m.record(T, failResult('tcp_refused'), 200);
  const text = await m.text();
  assert.equal(sample(text, `pullprobe_registry_up{${rt}}`), 0);
  assert.equal(sample(text, `pullprobe_failure_info{${rt},stage="tcp",reason="tcp_refused",cause="network"}`), 1);
  assert.equal(sample(text, `pullprobe_probe_failures_total{${rt},reason="tcp_refused"}`), 1);
  assert.equal(sample(text, `pullprobe_probes_total{${rt}}`), 2);
  assert.equal(sample(text, `pullprobe_stage_duration_seconds{${rt},stage="tcp"}`), 0.0012);
  assert.equal(sample(text, `pullprobe_stage_duration_seconds{${rt},stage="tls"}`), undefined);
  assert.equal(sample(text, `pullprobe_last_probe_timestamp_seconds{${rt}}`), 200);
  assert.equal(sample(text, `pullprobe_last_success_timestamp_seconds{${rt}}`), 100);
  // the tls step did not run: its cert series is gone with it
  assert.equal(sample(text, `pullprobe_tls_cert_expiry_timestamp_seconds{registry="${R}",host="${R}:443"}`), undefined);
});

test('failure_info disappears after recovery; the failure counter stays', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.record(T, failResult('auth_rejected'), 1);
  m.record(T, okResult(), 2);
  const text = await m.text();
  assert.ok(!text.includes('pullprobe_failure_info{'));
  assert.equal(sample(text, `pullprobe_registry_up{${rt}}`), 1);
  assert.equal(sample(text, `pullprobe_probe_failures_total{${rt},reason="auth_rejected"}`), 1);
});

test('a reason change replaces the failure_info series', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.record(T, failResult('tcp_refused'), 1);
  m.record(T, failResult('tls_unknown_ca'), 2);
  const text = await m.text();
  const lines = text.split('\n').filter((l) => l.startsWith('pullprobe_failure_info{'));
  assert.deepEqual(lines, [`pullprobe_failure_info{${rt},stage="tls",reason="tls_unknown_ca",cause="network"} 1`]);
});

test('nameserver_up: NOERROR and NXDOMAIN are up, a timeout is down; a server up only if it answered every dns step', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  const steps = [...OK_STEPS];
  steps[1] = dnsStep({ '10.0.0.53': 'NOERROR', '10.0.0.54': 'NXDOMAIN', '10.0.0.55': null, '10.0.0.56': 'SERVFAIL' });
  steps.push(dnsStep({ '10.0.0.53': 'REFUSED' }));
  m.record(T, okResult(T, steps), 1);
  const text = await m.text();
  assert.equal(sample(text, 'pullprobe_dns_nameserver_up{nameserver="10.0.0.53"}'), 0);
  assert.equal(sample(text, 'pullprobe_dns_nameserver_up{nameserver="10.0.0.54"}'), 1);
  assert.equal(sample(text, 'pullprobe_dns_nameserver_up{nameserver="10.0.0.55"}'), 0);
  assert.equal(sample(text, 'pullprobe_dns_nameserver_up{nameserver="10.0.0.56"}'), 0);
  // two dns steps are summed into one stage duration
  assert.equal(sample(text, `pullprobe_stage_duration_seconds{${rt},stage="dns"}`), 0.004);
});

test('precreate makes probes_total 0 with the registry label, without a misleading up=0', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.precreate([T, 'nginx', 'ghcr.io']);
  const text = await m.text();
  assert.equal(sample(text, `pullprobe_probes_total{${rt}}`), 0);
  assert.equal(sample(text, 'pullprobe_probes_total{registry="docker.io",target="nginx"}'), 0);
  assert.equal(sample(text, 'pullprobe_probes_total{registry="ghcr.io",target="ghcr.io"}'), 0);
  assert.ok(!text.includes('pullprobe_registry_up{'));
  m.record(T, okResult(), 1);
  assert.equal(sample(await m.text(), `pullprobe_probes_total{${rt}}`), 1);
  assert.equal(registryOfTarget('Bad:Ref:'), null);
});

test('forgetTarget drops its series; shared cert and nameserver series stay while another target reports them', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  const other = 'registry.lab.test/app/web:v2';
  m.record(T, failResult('manifest_unknown'), 1);
  m.record(other, okResult(other), 1);
  m.forgetTarget(T);
  let text = await m.text();
  assert.ok(!text.includes(`target="${T}"`), 'no series left for the forgotten target');
  assert.equal(sample(text, `pullprobe_tls_cert_expiry_timestamp_seconds{registry="${R}",host="${R}:443"}`), EXPIRY);
  assert.equal(sample(text, 'pullprobe_dns_nameserver_up{nameserver="10.0.0.53"}'), 1);
  m.forgetTarget(other);
  text = await m.text();
  assert.ok(!text.includes('pullprobe_tls_cert_expiry_timestamp_seconds{'));
  assert.ok(!text.includes('pullprobe_dns_nameserver_up{'));
});

test('node info and config reload gauges', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.setNodeInfo({ node: 'n1', subnet: '10.0.1.0/24', zone: null });
  m.setNodeInfo({ node: 'n1', subnet: '10.0.2.0/24', zone: 'z1' });
  m.setConfigReload(true, 50);
  m.setConfigReload(false, 60);
  const text = await m.text();
  assert.deepEqual(
    text.split('\n').filter((l) => l.startsWith('pullprobe_node_info{')),
    ['pullprobe_node_info{node="n1",subnet="10.0.2.0/24",zone="z1"} 1'],
  );
  assert.equal(sample(text, 'pullprobe_config_reload_success'), 0);
  assert.equal(sample(text, 'pullprobe_config_last_reload_timestamp_seconds'), 50);
});

test('probeRegistry: a fresh blackbox-style registry for one result', async () => {
  const failing = await probeRegistry(failResult('dns_nxdomain')).metrics();
  assert.equal(sample(failing, 'probe_success'), 0);
  assert.equal(sample(failing, 'probe_duration_seconds'), 0.01);
  assert.equal(sample(failing, 'pullprobe_probe_failure_info{stage="dns",reason="dns_nxdomain",cause="network"}'), 1);
  const ok = await probeRegistry(okResult()).metrics();
  assert.equal(sample(ok, 'probe_success'), 1);
  assert.equal(sample(ok, 'pullprobe_probe_stage_duration_seconds{stage="tls"}'), 0.004);
  assert.equal(sample(ok, `pullprobe_probe_tls_cert_expiry_timestamp_seconds{host="${R}:443"}`), EXPIRY);
  assert.equal(sample(ok, 'pullprobe_probe_degraded'), 0);
  assert.ok(!ok.includes('pullprobe_probe_failure_info{'));
  assert.ok(!ok.includes('pullprobe_registry_up'), 'no cached agent series in the per-request registry');
});

test('promtool check metrics is clean on real output (default metrics included)', async (t) => {
  if (!existsSync(PROMTOOL)) {
    if (process.env['CI'] === 'true') assert.fail(`${PROMTOOL} is required under CI=true`);
    t.skip(`${PROMTOOL} not installed`);
    return;
  }
  const m = new AgentMetrics();
  m.precreate([T, 'ghcr.io']);
  m.setNodeInfo({ node: 'n1', subnet: '10.0.1.0/24', zone: null });
  m.setConfigReload(true, 1);
  m.record(T, failResult('tcp_refused'), 1);
  m.record('ghcr.io', okResult('ghcr.io'), 1);
  const text = await m.text();
  assert.match(text, /^process_cpu_user_seconds_total /m);
  assert.match(text, /^nodejs_heap_size_total_bytes /m);
  const agent = await promtoolCheck(text);
  assert.equal(agent.code, 0, agent.output);
  const perProbe = await promtoolCheck(await probeRegistry(failResult('tcp_refused')).metrics());
  assert.equal(perProbe.code, 0, perProbe.output);
});

test('a parsed Target labels its series with its own registry: the target string is not parsed again', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  // As a string, "mirror-label" would parse as the image docker.io/library/mirror-label.
  m.setTargets([{ kind: 'registry', input: 'mirror-label', registry: 'r.example', endpoint: 'r.example' }, T]);
  const text = await m.text();
  assert.equal(sample(text, 'pullprobe_probes_total{registry="r.example",target="mirror-label"}'), 0);
  assert.equal(sample(text, `pullprobe_probes_total{registry="${R}",target="${T}"}`), 0);
  assert.equal(m.record('mirror-label', okResult('mirror-label'), 1), true, 'the parsed target counts as configured');
});

/** OK_STEPS whose manifest step carries these rate-limit values (Docker Hub's ratelimit-* headers). */
function withRateLimit(ratelimit: { limit?: number; remaining?: number; windowSeconds?: number }): StepResult[] {
  return OK_STEPS.map((s) => (s.stage === 'manifest' ? { ...s, detail: { status: 200, ratelimit } } : s));
}

test('rate-limit gauges: set from the manifest step, gone when a later result has none, gone when the target is removed', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  m.setTargets([T]);
  m.record(T, okResult(T, withRateLimit({ limit: 100, remaining: 20, windowSeconds: 21600 })), 1);
  let text = await m.text();
  assert.equal(sample(text, `pullprobe_ratelimit_remaining{${rt}}`), 20);
  assert.equal(sample(text, `pullprobe_ratelimit_limit{${rt}}`), 100);
  assert.match(text, /^# HELP pullprobe_ratelimit_remaining .*RateLimit headers.*cached from the last periodic probe/m);

  m.record(T, okResult(T), 2);
  text = await m.text();
  assert.equal(sample(text, `pullprobe_ratelimit_remaining{${rt}}`), undefined, 'no headers this time: no stale headroom');
  assert.equal(sample(text, `pullprobe_ratelimit_limit{${rt}}`), undefined);

  m.record(T, okResult(T, withRateLimit({ limit: 100, remaining: 5 })), 3);
  assert.equal(sample(await m.text(), `pullprobe_ratelimit_remaining{${rt}}`), 5);
  m.setTargets([]);
  text = await m.text();
  assert.ok(!text.includes('pullprobe_ratelimit_remaining{'), 'removed target: series gone');
  assert.ok(!text.includes('pullprobe_ratelimit_limit{'));
});

test('the event-loop monitor samples once a second, not every 10 ms (an idle agent wakes once a second for it)', async () => {
  const seen: Array<{ register: unknown; precision: number }> = [];
  const m = new AgentMetrics({
    collectDefaults: (config) => seen.push({ register: config.register, precision: config.eventLoopMonitoringPrecision }),
  });
  assert.deepEqual(seen, [{ register: m.registry, precision: 1000 }]);
  assert.equal(EVENT_LOOP_PRECISION_MS, 1000);
  // The real collector at that precision still exports the lag series.
  const real = new AgentMetrics();
  assert.match(await real.text(), /^nodejs_eventloop_lag_seconds /m);
});

test('credential expiry: the credentials’ own under their source, the registry token under "token"; gone when no longer reported', async () => {
  const m = new AgentMetrics({ defaultMetrics: false });
  const withToken: StepResult[] = OK_STEPS.map((s) =>
    s.stage === 'auth' ? { ...s, detail: { scheme: 'bearer', tokenCached: false, tokenExpiresIn: 300 } } : s,
  );
  m.record(
    T,
    { ...okResult(T, withToken), credentials: { source: 'credential-provider', name: 'ecr', expiresAt: '2023-11-15T10:13:20Z' } },
    1_700_000_000,
  );
  let text = await m.text();
  assert.equal(sample(text, `pullprobe_credential_expiry_timestamp_seconds{registry="${R}",source="credential-provider"}`), 1_700_043_200);
  assert.equal(sample(text, `pullprobe_credential_expiry_timestamp_seconds{registry="${R}",source="token"}`), 1_700_000_300);
  // Anonymous now, no token: both series go.
  m.record(T, okResult(), 1_700_000_060);
  text = await m.text();
  assert.ok(!text.includes('pullprobe_credential_expiry_timestamp_seconds{'), text);
});
