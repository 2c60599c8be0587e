/**
 * Renders kustomizations with the real `kubectl kustomize` (no cluster
 * needed) and gives the rendered objects a loosely typed, test-only shape.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const MANIFESTS = fileURLToPath(new URL('../../manifests/', import.meta.url));

/**
 * A rendered object, loosely typed (test data: its shape is checked by the
 * schema validator, not by types); tests read deeper fields through the
 * Kubernetes interfaces of `kubernetes-models`.
 */
export interface Obj {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** The kubectl on PATH, or an error telling what is missing. */
export function kubectl(): string {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return 'kubectl';
  } catch {
    throw new Error('kubectl not found on PATH: the manifest tests render with `kubectl kustomize` (.ci/run checks for it)');
  }
}

/** `kubectl kustomize DIR`, parsed. */
export function render(dir: string): Obj[] {
  const out = execFileSync(kubectl(), ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out).map((d) => {
    if (d.errors.length) throw new Error(`${dir}: rendered YAML does not parse: ${d.errors[0]?.message ?? ''}`);
    return d.toJS() as Obj;
  });
}

/**
 * The README's way to install into another namespace, next to `namespace:`:
 * kustomize's `namespace:` field leaves ClusterRoleBinding subjects alone (it
 * only moves subjects named "default"); this transformer moves them too.
 */
export function namespaceTransformer(namespace: string): string {
  return [
    'transformers:',
    '  - |-',
    '    apiVersion: builtin',
    '    kind: NamespaceTransformer',
    '    metadata:',
    '      name: namespace',
    `      namespace: ${namespace}`,
    '    setRoleBindingSubjects: allServiceAccounts',
  ].join('\n');
}

/** Renders a throw-away overlay: the given kustomizations and components (absolute paths), with a namespace or extra text. */
export function renderOverlay(
  components: string[],
  namespace: string | null = 'pullprobe',
  resources = [join(MANIFESTS, 'base')],
  extra = '',
): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-kustomize-'));
  try {
    const text = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      namespace === null ? '' : `namespace: ${namespace}`,
      // kustomize takes relative paths only
      `resources: ${JSON.stringify(resources.map((r) => relative(dir, r)))}`,
      `components: ${JSON.stringify(components.map((c) => relative(dir, c)))}`,
      extra,
    ].join('\n');
    writeFileSync(join(dir, 'kustomization.yaml'), `${text}\n`);
    return render(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function one(objs: Obj[], kind: string, name?: string): Obj {
  const hits = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  if (hits.length !== 1) throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, rendered ${hits.length}`);
  return hits[0] as Obj;
}
