/**
 * Pure: what `why` reads from a Pod object (`kubectl get pod -o json`):
 * its containers (init containers first, as the kubelet starts them) with
 * their spec image and status, the pod's pull secrets, service account and
 * node. Anything missing or malformed is read as absent, never a throw.
 */
import { PULL_FAILURE_STATES } from './types.js';

export interface PodContainer {
  name: string;
  init: boolean;
  image: string;
  /** Waiting reason, or running / terminated / unknown. */
  state: string;
  /** The status's waiting message, when there is one. */
  message: string | null;
  failing: boolean;
}

export interface PodFacts {
  name: string;
  namespace: string;
  node: string | null;
  serviceAccount: string;
  pullSecrets: string[];
  containers: PodContainer[];
}

type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Names in a `[{name}]` list (imagePullSecrets), deduplicated, in order. */
export function refNames(list: unknown): string[] {
  const out: string[] = [];
  for (const item of arr(list)) {
    const n = isObj(item) ? str(item['name']) : null;
    if (n !== null && !out.includes(n)) out.push(n);
  }
  return out;
}

function stateOf(status: unknown): { state: string; message: string | null } {
  const st = isObj(status) && isObj(status['state']) ? status['state'] : null;
  if (st === null) return { state: 'unknown', message: null };
  if (isObj(st['waiting'])) return { state: str(st['waiting']['reason']) ?? 'waiting', message: str(st['waiting']['message']) };
  if (isObj(st['running'])) return { state: 'running', message: null };
  if (isObj(st['terminated'])) return { state: 'terminated', message: null };
  return { state: 'unknown', message: null };
}

export function podFacts(pod: unknown): PodFacts | null {
  if (!isObj(pod) || !isObj(pod['metadata'])) return null;
  const meta = pod['metadata'];
  const spec = isObj(pod['spec']) ? pod['spec'] : {};
  const status = isObj(pod['status']) ? pod['status'] : {};
  const containers: PodContainer[] = [];
  for (const [specKey, statusKey, init] of [
    ['initContainers', 'initContainerStatuses', true],
    ['containers', 'containerStatuses', false],
  ] as const) {
    const statuses = arr(status[statusKey]).filter(isObj);
    for (const c of arr(spec[specKey])) {
      if (!isObj(c)) continue;
      const name = str(c['name']) ?? '(unnamed)';
      const { state, message } = stateOf(statuses.find((s) => s['name'] === name));
      containers.push({
        name,
        init,
        image: typeof c['image'] === 'string' ? c['image'] : '',
        state,
        message,
        failing: (PULL_FAILURE_STATES as readonly string[]).includes(state),
      });
    }
  }
  return {
    name: str(meta['name']) ?? '',
    namespace: str(meta['namespace']) ?? 'default',
    node: str(spec['nodeName']),
    serviceAccount: str(spec['serviceAccountName']) ?? str(spec['serviceAccount']) ?? 'default',
    pullSecrets: refNames(spec['imagePullSecrets']),
    containers,
  };
}
