/**
 * The kustomize manifests, rendered with the real `kubectl kustomize` (no
 * cluster runs here): every kustomization renders; every rendered object is
 * valid against the Kubernetes API schema, strict on unknown fields; the
 * DaemonSet is Linux-only, hardened, sized from the benchmark and mounts only
 * the node files its config reads, read-only (the CRI socket in its own
 * component excepted); RBAC never reaches secrets; the namespace admits the
 * pod under Pod Security; the shipped config is one the agent accepts and
 * listens on the node IP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/agent/config.js';
import { SYSTEM_BUNDLES } from '../../src/node-config/trust.js';
import { MANIFESTS, namespaceTransformer, one, render, renderOverlay, type Obj } from '../support/kustomize.js';
import { schemaErrors, unknownFieldErrors, type K8sObject } from '../support/k8s-validate.js';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IResourceQuota } from 'kubernetes-models/v1/ResourceQuota';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IPolicyRule } from 'kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule';

const comp = (name: string): string => join(MANIFESTS, 'components', name);
const OURS = ['priority-class', 'cri-runtime-check', 'credential-providers', 'pod-discovery'];

const renders = new Map<string, Obj[]>([
  ['base', render(join(MANIFESTS, 'base'))],
  ['overlays/example', render(join(MANIFESTS, 'overlays', 'example'))],
  ...OURS.map((c): [string, Obj[]] => [`base + components/${c}`, renderOverlay([comp(c)])]),
]);
const got = (k: string): Obj[] => renders.get(k) as Obj[];
const base = got('base');
const example = got('overlays/example');

/** Present, or the test fails naming what is missing. */
function must<T>(v: T | null | undefined, what: string): T {
  assert.ok(v !== undefined && v !== null, `${what} is missing`);
  return v;
}

// Typed views: every rendered object is checked against the Kubernetes API schema (the second test),
// so reading one through the API's own interface is sound.
const ds = (objs: Obj[]): IDaemonSet => one(objs, 'DaemonSet', 'pullprobe') as unknown as IDaemonSet;
const pod = (objs: Obj[]): IPodSpec => must(ds(objs).spec?.template.spec, 'the DaemonSet pod spec');
const container = (objs: Obj[]): IContainer => must(pod(objs).containers[0], 'the DaemonSet container');
const rules = (role: Obj): IPolicyRule[] => must((role as unknown as { rules?: IPolicyRule[] }).rules, `${role.kind} rules`);
const firstSubject = (binding: Obj): { namespace?: string } =>
  must((binding as unknown as IClusterRoleBinding).subjects?.[0], `${binding.kind} subject`);

/** Prometheus-operator kinds come from their own component's owner; everything else must be Kubernetes API. */
const isCustom = (o: Obj): boolean => o.apiVersion.startsWith('monitoring.coreos.com/');

test('every kustomization lists exactly the manifest files in its directory', () => {
  for (const dir of ['base', ...OURS.map((c) => `components/${c}`)]) {
    const k = parse(readFileSync(join(MANIFESTS, dir, 'kustomization.yaml'), 'utf8')) as Obj;
    const files = readdirSync(join(MANIFESTS, dir))
      .filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')
      .sort();
    assert.deepEqual([...((k['resources'] ?? []) as string[])].sort(), files, dir);
  }
});

test('every rendered object is valid Kubernetes API: schema (types, enums, required) and no unknown field anywhere', () => {
  const all: K8sObject[] = [];
  for (const [name, objs] of renders) {
    assert.ok(objs.length > 0, `${name} rendered nothing`);
    const api = objs.filter((o) => !isCustom(o));
    assert.deepEqual(schemaErrors(api), [], name);
    all.push(...api);
  }
  assert.deepEqual(unknownFieldErrors(all), []);
});

test('the validator is strict: a misspelt field, a wrong type or an unknown kind is caught', () => {
  const broken = structuredClone(base);
  // Object.assign: wrong on purpose, so not through the typed interfaces.
  Object.assign(must(container(broken).securityContext, 'securityContext'), { readOnlyRootFilesytem: true });
  Object.assign(must(pod(broken).volumes?.[1]?.hostPath, "the second volume's hostPath"), { typ: 'File' });
  Object.assign(must(container(broken).securityContext, 'securityContext'), { runAsUser: 'root' });
  assert.equal(unknownFieldErrors(broken).length, 2, 'two unknown fields');
  assert.equal(schemaErrors(broken).length, 1, 'runAsUser must be an integer');
  assert.equal(schemaErrors([{ apiVersion: 'v1', kind: 'Nodde', metadata: { name: 'x' } }]).length, 1);
});

test('namespace: Pod Security "privileged" (hostNetwork and hostPath are refused by baseline), enforced, audited and warned', () => {
  const labels = must(one(base, 'Namespace').metadata?.labels, 'Namespace labels');
  for (const mode of ['enforce', 'audit', 'warn']) assert.equal(labels[`pod-security.kubernetes.io/${mode}`], 'privileged', mode);
});

test('DaemonSet: Linux nodes only, every taint tolerated, hostNetwork, hardened like metrics-server, probes on a named port', () => {
  const p = pod(base);
  assert.deepEqual(p.nodeSelector, { 'kubernetes.io/os': 'linux' });
  assert.deepEqual(p.tolerations, [{ operator: 'Exists' }]);
  assert.equal(p.hostNetwork, true);
  assert.equal(p.hostPID, undefined);
  assert.equal(p.priorityClassName, undefined, 'the priority class is a component (it needs a quota on GKE)');
  const c = container(base);
  const sc = must(c.securityContext, 'securityContext');
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.runAsNonRoot, true);
  assert.equal(sc.runAsUser, 65532);
  assert.equal(sc.runAsGroup, 65532);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.privileged, undefined);
  assert.equal(must(sc.seccompProfile, 'seccompProfile').type, 'RuntimeDefault');
  assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
  const port = must(c.ports?.[0]?.name, 'a named port');
  assert.equal(must(c.livenessProbe?.httpGet, 'livenessProbe.httpGet').port, port);
  const readiness = must(c.readinessProbe?.httpGet, 'readinessProbe.httpGet');
  assert.equal(readiness.port, port);
  assert.equal(readiness.path, '/readyz');
});

function mib(q: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q);
  assert.ok(m, `memory quantity ${q} in Mi or Gi`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

/** The measured peak RSS (VmHWM, MiB) the limit is sized from (npm run bench, 2026-11-29, with the heap cap below). */
const BENCH_PEAK_MIB = 122;

test('resources: requests = limits, above the benchmark peak (122 MiB, 2026-11-29); V8 heap capped: old space within half the limit, small young generation', () => {
  const c = container(base);
  const resources = must(c.resources, 'resources');
  const limits = must(resources.limits, 'resource limits');
  assert.deepEqual(resources.requests, limits);
  const limit = mib(String(must(limits['memory'], 'the memory limit')));
  assert.ok(limit >= BENCH_PEAK_MIB * 1.25, `memory limit ${limit} MiB leaves 25% above the measured ${BENCH_PEAK_MIB} MiB peak`);
  assert.equal(limits['cpu'], '200m');
  const env = new Map(must(c.env, 'env').map((e) => [e.name, e]));
  const options = String(env.get('NODE_OPTIONS')?.value);
  const heap = /--max-old-space-size=(\d+)/.exec(options);
  assert.ok(heap, 'NODE_OPTIONS caps the V8 old space');
  const old = Number(heap[1]);
  assert.ok(old <= limit / 2, `old space ${old} MiB within half of ${limit} MiB`);
  // Not below what a real 4 MiB image index parsed beside the live heap needs (~45 MiB).
  assert.ok(old >= 48, `old space ${old} MiB leaves room to parse a 4 MiB index`);
  const semi = /--max-semi-space-size=(\d+)/.exec(options);
  assert.ok(semi, 'NODE_OPTIONS caps the young generation (the default 16 MiB semi-space lets RSS reach 155 MiB)');
  assert.ok(Number(semi[1]) <= 4, `semi-space ${semi[1]} MiB`);
  // Only flags Node accepts in NODE_OPTIONS, each written once.
  const flags = options.split(/\s+/).filter(Boolean);
  assert.deepEqual(
    flags.filter((f) => !/^--max-(old|semi)-space-size=\d+$/.test(f)),
    [],
    options,
  );
  assert.equal(new Set(flags.map((f) => f.split('=')[0])).size, flags.length, options);
  const comment = readFileSync(join(MANIFESTS, 'base', 'daemon-set.yaml'), 'utf8');
  assert.match(comment, /npm run bench.*2026-11-29/, 'the figure and its date are written next to the resources');
});

test('one malloc arena: V8 worker threads strand freed pages in arenas of their own (10-16 MiB, lab series 2026-11-30)', () => {
  const env = new Map(must(container(base).env, 'env').map((e) => [e.name, e]));
  assert.equal(env.get('MALLOC_ARENA_MAX')?.value, '1');
  const text = readFileSync(join(MANIFESTS, 'base', 'daemon-set.yaml'), 'utf8');
  assert.match(
    text,
    /# One malloc arena[\s\S]*2026-11-30[\s\S]*- name: MALLOC_ARENA_MAX/,
    'the measurement is written next to the setting',
  );
});

interface Mount {
  name: string;
  mountPath: string;
  readOnly: boolean;
  hostPath?: { path: string; type?: string };
}

function mounts(objs: Obj[]): Mount[] {
  const vols = new Map(must(pod(objs).volumes, 'volumes').map((v) => [v.name, v]));
  return must(container(objs).volumeMounts, 'volumeMounts').map((m) => {
    const hostPath = vols.get(m.name)?.hostPath;
    return { name: m.name, mountPath: m.mountPath, readOnly: m.readOnly === true, ...(hostPath ? { hostPath } : {}) };
  });
}

test('base mounts: only the node files the config reads, each read-only at its node path under /host, never all of /etc', () => {
  const ms = mounts(base);
  for (const m of ms) assert.equal(m.readOnly, true, `${m.name} read-only`);
  const host = ms.filter((m) => m.hostPath);
  assert.deepEqual(host.map((m) => m.hostPath?.path).sort(), [
    '/etc/containerd',
    '/etc/docker/certs.d',
    '/etc/hosts',
    '/etc/pki',
    '/etc/resolv.conf',
    '/etc/ssl/certs',
    '/run/systemd/resolve',
  ]);
  for (const m of host) {
    const { path, type = '' } = m.hostPath ?? { path: '' };
    assert.equal(m.mountPath, `/host${path}`, `${m.name} at the node's own path under /host`);
    assert.ok(['', 'File', 'Directory', 'DirectoryOrCreate', 'Socket'].includes(type), `${m.name}: type ${type}`);
    if (type === 'DirectoryOrCreate') assert.ok(path.startsWith('/run/'), `${m.name}: only a tmpfs path may be created on the node`);
  }
});

test('the shipped config is accepted by the agent, listens on HOST_IP, and every node file it reads is under a mount', () => {
  const cm = one(base, 'ConfigMap', 'pullprobe') as unknown as IConfigMap;
  const text = String(cm.data?.['config.yaml']);
  const r = parseConfig(text, 'config-map.yaml', { hostname: 'n', HOST_IP: '10.0.1.7' });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  assert.deepEqual(r.config.listen, { host: '10.0.1.7', port: 9808 }, 'the node address, not every interface');
  const env = container(base).env?.find((e) => e.name === 'HOST_IP');
  assert.equal(env?.valueFrom?.fieldRef?.fieldPath, 'status.hostIP');
  assert.equal(container(base).ports?.[0]?.containerPort, r.config.listen.port);
  assert.equal(r.config.hostRoot, '/host');
  const mountPaths = mounts(base).map((m) => m.mountPath);
  const covered = (p: string): boolean => mountPaths.some((m) => p === m || p.startsWith(`${m}/`));
  // containerd's config.toml decides the certs.d roots (its config_path or the default ones, opened under /host).
  assert.equal(r.config.containerd.configPathSet, false, 'config.toml, not the ConfigMap, decides the certs.d roots');
  const certsD = r.config.containerd.configPath.map((d) => `/host${d}`);
  const read = [
    r.config.dns.resolvConf,
    r.config.dns.hosts,
    r.config.containerd.config ?? '',
    ...certsD,
    '/host/run/systemd/resolve/resolv.conf',
  ];
  for (const p of read) assert.ok(covered(p), `${p} is mounted`);
  const bundles = SYSTEM_BUNDLES.map((b) => posix.join('/host', b));
  assert.deepEqual(
    bundles.filter((b) => !covered(b)),
    ['/host/etc/ssl/ca-bundle.pem', '/host/etc/ssl/cert.pem'],
    'system CA bundles: Debian and RHEL families mounted; SUSE/Alpine ones are documented as a patch',
  );
});

function grants(objs: Obj[]): string[] {
  return objs
    .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
    .flatMap((role) =>
      rules(role).flatMap((r) => must(r.resources, `${role.kind} rule resources`).map((res) => `${res}:${[...r.verbs].sort().join(',')}`)),
    )
    .sort();
}

test('RBAC: nodes get/patch, nodes/status patch, events create; pods get/list/watch only with pod-discovery; never secrets or wildcards', () => {
  assert.deepEqual(grants(base), ['events:create', 'nodes/status:patch', 'nodes:get,patch']);
  assert.deepEqual(grants(got('base + components/pod-discovery')), [
    'events:create',
    'nodes/status:patch',
    'nodes:get,patch',
    'pods:get,list,watch',
  ]);
  for (const [name, objs] of renders) {
    for (const g of grants(objs)) assert.doesNotMatch(g, /secret|\*/, `${name}: ${g}`);
    for (const b of objs.filter((o) => o.kind === 'ClusterRoleBinding')) {
      assert.deepEqual(
        b['subjects'],
        [{ kind: 'ServiceAccount', name: 'pullprobe', namespace: 'pullprobe' }],
        `${name}: ${b.metadata?.name ?? '(no name)'}`,
      );
    }
  }
});

test('priority-class: system-node-critical with the ResourceQuota that admits it in this namespace', () => {
  const objs = got('base + components/priority-class');
  assert.equal(pod(objs).priorityClassName, 'system-node-critical');
  const q = one(objs, 'ResourceQuota') as unknown as IResourceQuota;
  assert.equal(q.metadata?.namespace, 'pullprobe');
  assert.deepEqual(q.spec?.scopeSelector?.matchExpressions, [
    { operator: 'In', scopeName: 'PriorityClass', values: ['system-node-critical'] },
  ]);
});

test('cri-runtime-check: the CRI socket (type Socket) is the one read-write mount; the user stays 65532 with the root group', () => {
  const objs = got('base + components/cri-runtime-check');
  const rw = mounts(objs).filter((m) => !m.readOnly);
  assert.deepEqual(
    rw.map((m) => [m.mountPath, m.hostPath]),
    [['/host/run/containerd/containerd.sock', { path: '/run/containerd/containerd.sock', type: 'Socket' }]],
  );
  assert.deepEqual(pod(objs).securityContext?.supplementalGroups, [0]);
  assert.equal(container(objs).securityContext?.runAsUser, 65532);
});

test('credential-providers: the kubelet provider config file and bin dir, read-only at their node paths', () => {
  const added = mounts(got('base + components/credential-providers')).filter((m) => !mounts(base).some((b) => b.name === m.name));
  assert.deepEqual(
    added.map((m) => [m.mountPath, m.readOnly, m.hostPath?.type]),
    [
      ['/host/var/lib/kubelet/credential-provider-config.yaml', true, 'File'],
      ['/host/var/lib/kubelet/credential-provider', true, 'Directory'],
    ],
  );
});

test('overlays/example: every component on, the namespace set on every namespaced object and binding', () => {
  assert.equal(pod(example).priorityClassName, 'system-node-critical');
  assert.equal(mounts(example).filter((m) => !m.readOnly).length, 1);
  assert.ok(grants(example).includes('pods:get,list,watch'));
  const k = parse(readFileSync(join(MANIFESTS, 'overlays', 'example', 'kustomization.yaml'), 'utf8')) as Obj;
  assert.deepEqual(
    [...(k['components'] as string[])].map((c) => c.replace('../../components/', '')).sort(),
    [...OURS, 'grafana-dashboard', 'prometheus-operator'].sort(),
  );
  const plain = renderOverlay([], 'probes', [join(MANIFESTS, 'overlays', 'example')]);
  assert.deepEqual(
    plain.filter((o) => o.kind === 'ClusterRoleBinding').map((b) => firstSubject(b).namespace),
    ['pullprobe', 'pullprobe'],
    "kustomize's namespace: field leaves the bindings behind (why the README says to use the transformer)",
  );
  const moved = renderOverlay([], 'probes', [join(MANIFESTS, 'overlays', 'example')], namespaceTransformer('probes'));
  for (const o of moved) {
    if (['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) continue;
    assert.equal(o.metadata?.namespace, 'probes', `${o.kind}/${o.metadata?.name ?? '(no name)'}`);
  }
  for (const b of moved.filter((o) => o.kind === 'ClusterRoleBinding')) assert.equal(firstSubject(b).namespace, 'probes');
  assert.equal(one(moved, 'Namespace').metadata?.name, 'probes');
});
