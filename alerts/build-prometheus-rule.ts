/**
 * Writes manifests/components/prometheus-operator/prometheus-rule.yaml from
 * alerts/pullprobe-rules.yaml (the groups unchanged), so the PrometheusRule
 * and the file promtool tests are the same rules.
 *
 *   node --import tsx alerts/build-prometheus-rule.ts          # write
 *   node --import tsx alerts/build-prometheus-rule.ts --check  # exit 1 if out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const RULES_FILE = join(ROOT, 'alerts', 'pullprobe-rules.yaml');
export const PROMETHEUS_RULE_FILE = join(ROOT, 'manifests', 'components', 'prometheus-operator', 'prometheus-rule.yaml');

/** The PrometheusRule text for a rules file's text. */
export function prometheusRuleYaml(rulesText: string): string {
  const rules = parse(rulesText) as { groups?: unknown };
  if (!Array.isArray(rules.groups)) throw new Error(`${RULES_FILE}: no "groups" list`);
  const object = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'pullprobe',
      namespace: 'pullprobe',
      labels: {
        'app.kubernetes.io/name': 'pullprobe',
        // kube-prometheus-stack's ruleSelector matches its Helm release name; see README "Metrics, alerts and dashboard".
        release: 'kube-prometheus-stack',
      },
    },
    spec: { groups: rules.groups },
  };
  return `# Generated from alerts/pullprobe-rules.yaml by alerts/build-prometheus-rule.ts; do not edit.\n${stringify(object, { lineWidth: 0 })}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const want = prometheusRuleYaml(readFileSync(RULES_FILE, 'utf8'));
  if (process.argv.includes('--check')) {
    let have = '';
    try {
      have = readFileSync(PROMETHEUS_RULE_FILE, 'utf8');
    } catch {
      // missing counts as out of date
    }
    if (have !== want) {
      process.stderr.write(`${PROMETHEUS_RULE_FILE} is out of date: run node --import tsx alerts/build-prometheus-rule.ts\n`);
      process.exit(1);
    }
  } else {
    writeFileSync(PROMETHEUS_RULE_FILE, want);
  }
}
