/**
 * Realistic status-page data for the page tests: a StatusStore filled
 * through its public update() with results shaped like the probe chain's,
 * on an injected wall clock.
 */
import { causeOf, reasonInfo, STAGES, type Reason, type Stage } from '../../src/diagnosis/catalog.js';
import type { ProbeResult, StepResult } from '../../src/model/types.js';
import { StatusStore } from '../../src/agent/status-store.js';

const CHAIN = STAGES.filter((s) => s !== 'runtime');
const SECONDS: Record<Stage, number> = {
  reference: 0.00002,
  dns: 0.004,
  tcp: 0.011,
  tls: 0.038,
  http: 0.052,
  auth: 0.121,
  manifest: 0.087,
  runtime: 0,
};

export interface ResultOpts {
  fail?: Reason;
  message?: string;
  degraded?: Stage;
  degradedMessage?: string;
  dnsProblems?: string[];
}

/** A result that walked the chain up to its failing stage (or to the end). */
export function chainResult(target: string, registry: string, opts: ResultOpts = {}): ProbeResult {
  const failStage = opts.fail ? (reasonInfo(opts.fail).stage ?? 'http') : null;
  const host = registry.includes(':') ? registry : `${registry}:443`;
  const steps: StepResult[] = [];
  for (const stage of CHAIN) {
    if (stage === 'manifest' && !target.includes('/')) break;
    const failed = stage === failStage;
    const name = registry.split(':')[0] ?? registry;
    const base = {
      ok: !failed,
      seconds: SECONDS[stage],
      ...(stage === 'reference' ? {} : { host: stage === 'dns' ? name : host }),
      ...(failed && opts.fail ? { reason: opts.fail, message: opts.message ?? reasonInfo(opts.fail).message } : {}),
      ...(stage === opts.degraded ? { degraded: true, message: opts.degradedMessage ?? 'one nameserver did not answer' } : {}),
    };
    const step: StepResult =
      stage === 'dns' && opts.dnsProblems
        ? { ...base, stage: 'dns', detail: { addresses: ['10.0.0.10'], source: 'dns', name, nameservers: [], problems: opts.dnsProblems } }
        : { ...base, stage };
    steps.push(step);
    if (failed) break;
  }
  const info = opts.fail ? reasonInfo(opts.fail) : null;
  return {
    target,
    image: target.includes('/') ? target : null,
    registry,
    ok: !opts.fail,
    stage: failStage,
    reason: opts.fail ?? null,
    cause: opts.fail ? causeOf(opts.fail) : null,
    host: opts.fail ? host : null,
    message: opts.fail ? (opts.message ?? info?.message ?? null) : null,
    hint: info?.hint ?? null,
    degraded: opts.degraded !== undefined,
    seconds: steps.reduce((a, s) => a + s.seconds, 0),
    steps,
  };
}

export const SCENE = {
  harbor: 'harbor.corp.example.com:8443',
  ghcr: 'ghcr.io',
  ecr: 'public.ecr.aws',
  changed: 'ghcr.io/acme-platform/payments-api:2.14.0',
  hub: 'docker.io/library/nginx:1.27',
  /** Text a registry sent with terminal colours and markup in it. */
  hostileMessage: '\u001b[31mno such host\u001b[0m <img src=x onerror=alert(1)>',
} as const;

/**
 * Several ok targets, two registries failing for different reasons (harbor:
 * DNS, two images; ghcr.io: expired certificate, one of them after it
 * changed from tcp_refused), a degraded one, one recovered, one pending.
 */
export function sceneStore(start = Date.parse('2026-11-29T09:00:00Z')): { store: StatusStore; now: () => number } {
  let now = start;
  const store = new StatusStore({ wallNow: () => now });
  store.setNode({ node: 'ip-10-0-3-17.eu-west-1.compute.internal', subnet: 'subnet-0a1b2c3d4e5f67890', zone: 'eu-west-1b' });
  const h = SCENE.harbor;
  const targets = [
    'registry.k8s.io/pause:3.10',
    'registry.k8s.io/coredns/coredns:v1.11.3',
    SCENE.hub,
    'quay.io/prometheus/node-exporter:v1.8.2',
    `${h}/payments/ledger-service:2025.11.3-rc.1`,
    `${h}/shared/base-images/distroless-java21-with-a-rather-long-name:latest`,
    SCENE.changed,
    'ghcr.io/acme-platform/checkout-web:7.2.1',
    'public.ecr.aws/eks-distro/kubernetes/kube-proxy:v1.31.2-eks-1-31-7',
    'quay.io',
    'registry.gitlab.com/acme/never-probed:1',
  ];
  store.setTargets(targets);
  const reg = (t: string): string => (t.includes('/') ? (t.split('/')[0] ?? t) : t);
  const dnsProblems = ["/host/etc/containerd/certs.d/quay.io/hosts.toml: line 3: expected '=' after a key"];
  const all = (overrides: Record<string, ResultOpts>): void => {
    for (const t of targets.slice(0, -1)) {
      const r = reg(t);
      store.update(t, chainResult(t, r, { dnsProblems, ...overrides[t] }));
    }
  };
  all({ [SCENE.hub]: { fail: 'rate_limited' }, [SCENE.changed]: { fail: 'tcp_refused' } });
  now += 4 * 60_000;
  all({ [SCENE.changed]: { fail: 'tcp_refused' } });
  now += 3 * 60_000;
  all({
    [targets[4] ?? '']: { fail: 'dns_nxdomain', message: SCENE.hostileMessage },
    [targets[5] ?? '']: { fail: 'dns_nxdomain', message: SCENE.hostileMessage },
    [SCENE.changed]: { fail: 'tls_expired', message: 'certificate has expired: notAfter 2026-11-28T23:59:59Z' },
    [targets[7] ?? '']: { fail: 'tls_expired', message: 'certificate has expired: notAfter 2026-11-28T23:59:59Z' },
    [targets[8] ?? '']: { degraded: 'dns', degradedMessage: 'nameserver 10.0.0.2 timed out; answered by 10.0.0.3' },
  });
  now += 90_000;
  return { store, now: () => now };
}

/** `n` ok targets over n/5 registries with long names, for the page at scale. */
export function manyStore(n: number): StatusStore {
  const store = new StatusStore({ wallNow: () => Date.parse('2026-11-29T09:00:00Z') });
  const targets = Array.from(
    { length: n },
    (_, i) => `registry-${Math.floor(i / 5)}.mirror.internal.example.org/team-${i % 7}/service-with-a-long-name-${i}:v1.${i}.0`,
  );
  store.setTargets(targets);
  targets.forEach((t, i) => {
    const r = t.split('/')[0] ?? t;
    store.update(t, chainResult(t, r, i % 37 === 3 ? { fail: 'manifest_unknown' } : {}));
  });
  return store;
}
