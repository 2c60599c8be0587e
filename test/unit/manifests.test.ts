/**
 * The kustomize manifests, checked without a cluster (none runs here): every
 * file parses, the kustomization lists exactly the files present, the
 * DaemonSet is hostNetwork and hardened as house style asks, RBAC grants only
 * what the node writer needs (never secrets), and the shipped ConfigMap is a
 * config the agent accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/agent/config.js';

const BASE = fileURLToPath(new URL('../../manifests/base/', import.meta.url));

/** A test-only, loosely typed view of a YAML document. */
type Doc = Record<string, any>;

function load(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(join(BASE, file), 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], `${file}: YAML errors`);
  return docs.map((d) => d.toJS() as Doc);
}

const byKind = (): Map<string, Doc> => {
  const out = new Map<string, Doc>();
  for (const f of readdirSync(BASE).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
    for (const d of load(f)) out.set(String(d['kind']), d);
  }
  return out;
};

test('kustomization lists exactly the manifest files present', () => {
  const [k] = load('kustomization.yaml');
  const files = readdirSync(BASE).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml').sort();
  assert.deepEqual([...(k?.['resources'] as string[])].sort(), files);
});

test('DaemonSet: hostNetwork, NODE_NAME/HOST_IP from the downward API, hardened container, probes on a named port, requests = limits', () => {
  const ds = byKind().get('DaemonSet');
  assert.ok(ds);
  const pod = ds['spec']['template']['spec'];
  assert.equal(pod['hostNetwork'], true);
  const c = pod['containers'][0];
  const env = Object.fromEntries((c['env'] as Doc[]).map((e) => [e['name'], e['valueFrom']?.['fieldRef']?.['fieldPath']]));
  assert.equal(env['NODE_NAME'], 'spec.nodeName');
  assert.equal(env['HOST_IP'], 'status.hostIP');
  const sc = c['securityContext'];
  assert.equal(sc['readOnlyRootFilesystem'], true);
  assert.equal(sc['runAsNonRoot'], true);
  assert.equal(sc['allowPrivilegeEscalation'], false);
  assert.equal(sc['seccompProfile']['type'], 'RuntimeDefault');
  assert.deepEqual(sc['capabilities']['drop'], ['ALL']);
  assert.deepEqual(c['resources']['requests'], c['resources']['limits']);
  const port = c['ports'][0]['name'];
  assert.equal(c['livenessProbe']['httpGet']['port'], port);
  assert.equal(c['readinessProbe']['httpGet']['path'], '/readyz');
  for (const m of c['volumeMounts'] as Doc[]) assert.equal(m['readOnly'], true, `${m['name']} mounted read-only`);
});

test('RBAC: nodes get/patch, nodes/status patch, events create — and never secrets', () => {
  const role = byKind().get('ClusterRole');
  assert.ok(role);
  const grants = (role['rules'] as Doc[]).flatMap((r) => (r['resources'] as string[]).map((res) => `${res}:${[...r['verbs']].sort().join(',')}`)).sort();
  assert.deepEqual(grants, ['events:create', 'nodes/status:patch', 'nodes:get,patch']);
});

test('the shipped ConfigMap is a config the agent accepts', () => {
  const cm = byKind().get('ConfigMap');
  assert.ok(cm);
  const r = parseConfig(String(cm['data']['config.yaml']), 'config-map.yaml', { hostname: 'n' });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
});
