/**
 * The alert and recording rules: promtool checks and unit-tests them
 * (alerts/tests/*.yaml, input series for every alert, cases that must not
 * fire), every alert has a test case where it fires, and the PrometheusRule
 * in the prometheus-operator component carries exactly the same groups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { PROMETHEUS_RULE_FILE, RULES_FILE, prometheusRuleYaml } from '../../alerts/build-prometheus-rule.js';

const ROOT = join(import.meta.dirname, '..', '..');
const TESTS_DIR = join(ROOT, 'alerts', 'tests');
const COMPONENT = join(ROOT, 'manifests', 'components', 'prometheus-operator');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
interface RuleTest {
  alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }>;
}

function run(cmd: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (r.error) assert.fail(`${cmd} could not run (${r.error.message}); it comes from Debian's "prometheus" package (promtool) or kubectl`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const groups = (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }).groups;
const testFiles = readdirSync(TESTS_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => join(TESTS_DIR, f));

test('promtool check rules accepts the rules file and the PrometheusRule groups', () => {
  const r = run('promtool', ['check', 'rules', RULES_FILE]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rules found/);
});

test('promtool test rules: every test file passes', () => {
  assert.ok(testFiles.length >= 2);
  const r = run('promtool', ['test', 'rules', ...testFiles.map((f) => relative(ROOT, f))]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /FAILED/);
});

test('every alert has a case where it fires and one where it must not', () => {
  const firing = new Set<string>();
  const quiet = new Set<string>();
  for (const f of testFiles) {
    for (const t of (parse(readFileSync(f, 'utf8')) as { tests: RuleTest[] }).tests) {
      for (const a of t.alert_rule_test ?? []) (a.exp_alerts.length ? firing : quiet).add(a.alertname);
    }
  }
  const alerts = groups.flatMap((g) => g.rules).flatMap((r) => (r.alert ? [r.alert] : []));
  assert.ok(alerts.length >= 10);
  for (const a of alerts) {
    assert.ok(firing.has(a), `${a}: no test where it fires`);
    assert.ok(quiet.has(a), `${a}: no test where it must stay quiet`);
  }
});

test('a promtool test that expects the wrong alert fails (the harness can fail)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-alerts-'));
  try {
    const src = readFileSync(join(TESTS_DIR, 'subnet-node-cluster.yaml'), 'utf8')
      .replace('../pullprobe-rules.yaml', RULES_FILE)
      .replace(
        'subnet: 10.0.1.0/24\n              registry: r.example\n              stage: tcp',
        'subnet: 10.0.2.0/24\n              registry: r.example\n              stage: tcp',
      );
    writeFileSync(join(dir, 't.yaml'), src);
    const r = run('promtool', ['test', 'rules', join(dir, 't.yaml')]);
    assert.notEqual(r.code, 0, 'the control subnet must not be reported');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the PrometheusRule is generated from the rules file: same groups, up to date', () => {
  const have = readFileSync(PROMETHEUS_RULE_FILE, 'utf8');
  assert.equal(have, prometheusRuleYaml(readFileSync(RULES_FILE, 'utf8')), 'run: node --import tsx alerts/build-prometheus-rule.ts');
  const object = parse(have) as { spec: { groups: unknown } };
  assert.deepEqual(object.spec.groups, groups);
});

test('the prometheus-operator component renders a namespaced PodMonitor and PrometheusRule with the release label', () => {
  const dir = mkdtempSync(join(ROOT, '.kustomize-test-'));
  try {
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents:\n  - ${relative(dir, COMPONENT)}\n`,
    );
    const r = run('kubectl', ['kustomize', dir]);
    assert.equal(r.code, 0, r.out);
    const docs = parseAllDocuments(r.out).map(
      (d) => d.toJS() as { kind: string; metadata: { namespace?: string; labels?: Record<string, string> }; spec: Record<string, unknown> },
    );
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['PodMonitor', 'PrometheusRule']);
    for (const d of docs) {
      assert.equal(d.metadata.namespace, 'pullprobe', d.kind);
      assert.equal(d.metadata.labels?.['release'], 'kube-prometheus-stack', d.kind);
    }
    const pm = docs.find((d) => d.kind === 'PodMonitor');
    assert.ok(pm, 'a PodMonitor');
    assert.equal(pm.spec['jobLabel'], 'app.kubernetes.io/name', 'job="pullprobe", which the agent alerts select');
    assert.deepEqual((pm.spec['selector'] as { matchLabels: unknown }).matchLabels, { 'app.kubernetes.io/name': 'pullprobe' });
    assert.ok(
      !JSON.stringify(pm.spec).includes('targetLabel: node') && !JSON.stringify(pm.spec).includes('"targetLabel":"node"'),
      "no node target label (it would rename the agent's node label)",
    );
    assert.deepEqual(docs.find((d) => d.kind === 'PrometheusRule')?.spec['groups'], groups);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("dashboard: the JSON is the generator's output, every panel query parses (promtool), variables as documented", async () => {
  const { DASHBOARD_FILE, dashboardJson } = await import('../../dashboards/build-dashboard.js');
  const have = readFileSync(DASHBOARD_FILE, 'utf8');
  assert.equal(have, dashboardJson(), 'run: node --import tsx dashboards/build-dashboard.ts');
  const d = JSON.parse(have) as {
    templating: { list: Array<{ name: string }> };
    panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  };
  assert.deepEqual(
    d.templating.list.map((v) => v.name),
    ['datasource', 'cluster', 'subnet', 'registry'],
  );
  const exprs = d.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(exprs.length >= 12);
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-dash-'));
  try {
    const rules = exprs.map((e, i) => ({
      record: `dashboard:query:${i}`,
      expr: e.replaceAll('$__rate_interval', '1m').replace(/\$(cluster|subnet|registry)/g, '.*'),
    }));
    writeFileSync(join(dir, 'r.yaml'), JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = run('promtool', ['check', 'rules', join(dir, 'r.yaml')]);
    assert.equal(r.code, 0, r.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the grafana-dashboard component renders a namespaced ConfigMap labelled grafana_dashboard="1" holding the JSON', () => {
  const dir = mkdtempSync(join(ROOT, '.kustomize-test-'));
  try {
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents:\n  - ${relative(dir, join(ROOT, 'manifests', 'components', 'grafana-dashboard'))}\n`,
    );
    const r = run('kubectl', ['kustomize', dir]);
    assert.equal(r.code, 0, r.out);
    const docs = parseAllDocuments(r.out).map(
      (x) =>
        x.toJS() as {
          kind: string;
          metadata: { name: string; namespace?: string; labels?: Record<string, string> };
          data: Record<string, string>;
        },
    );
    assert.equal(docs.length, 1);
    const cm = docs[0];
    assert.ok(cm, 'a ConfigMap');
    assert.equal(cm.kind, 'ConfigMap');
    assert.equal(cm.metadata.namespace, 'pullprobe');
    assert.equal(cm.metadata.labels?.['grafana_dashboard'], '1');
    assert.equal(
      cm.data['pullprobe.json'],
      readFileSync(join(ROOT, 'manifests', 'components', 'grafana-dashboard', 'pullprobe.json'), 'utf8'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
