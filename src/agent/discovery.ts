/**
 * Pod discovery: what the node actually runs. From the Pods bound to this
 * node (PodWatch) it derives the registries their images come from —
 * registries, not tags, so the number of probe targets and series stays
 * bounded — and, when a container starts waiting in ErrImagePull or
 * ImagePullBackOff, probes that image at once (single-flight, at most once
 * per image per minute) and records a `PullProbeDiagnosis` Event on the Pod:
 * Warning with the node's failing stage, reason, subnet and fix, or Normal
 * saying the network is not the cause and what the kubelet's message points
 * to. Never more than one Event per pod per image per verdict. The agent
 * never reads secrets: every probe here is anonymous.
 */
import type { KubePod, ContainerStatus } from '../kube/pod-watch.js';
import type { ProbeResult } from '../model/types.js';
import { parseImageReference } from '../model/reference.js';
import { explainMessage } from '../diagnosis/explain.js';
import { EVENT_COMPONENT } from '../kube/patches.js';
import { rfc3339 } from '../shared/rfc3339.js';

export const DIAGNOSIS_REASON = 'PullProbeDiagnosis';
const PULL_WAITING = new Set(['ErrImagePull', 'ImagePullBackOff']);
const REPROBE_MS = 60_000;
const MAX_MESSAGE = 1000;

export interface PullFailure {
  container: string;
  /** An init container (the event's fieldPath says so). */
  init: boolean;
  image: string;
  waitingReason: string;
  message: string;
}

export interface DiscoveryLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DiscoveryOptions {
  node: string;
  subnet: string | null;
  /** An anonymous probe of one image, now. */
  probeImage(image: string): Promise<ProbeResult>;
  createEvent(namespace: string, event: object): Promise<void>;
  /** The registries of the node's images changed: distinct images per registry. */
  onRegistries(counts: ReadonlyMap<string, number>): void;
  /** Wall clock in ms (event timestamps and the per-image minute). */
  now?: () => number;
  log?: DiscoveryLog;
  reprobeMs?: number;
}

/** Distinct images per registry over all containers (init included); unparsable images are left out. */
export function imagesByRegistry(pods: Iterable<KubePod>): Map<string, number> {
  const images = new Map<string, string>();
  for (const pod of pods) {
    for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
      if (typeof c.image !== 'string' || images.has(c.image)) continue;
      const p = parseImageReference(c.image);
      if (p.ok) images.set(c.image, p.ref.registry);
    }
  }
  const counts = new Map<string, number>();
  for (const registry of images.values()) counts.set(registry, (counts.get(registry) ?? 0) + 1);
  return counts;
}

/** Containers of the pod waiting in ErrImagePull / ImagePullBackOff, with the spec's image string. */
export function pullFailures(pod: KubePod): PullFailure[] {
  const specImage = new Map<string, string>();
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    if (typeof c.image === 'string') specImage.set(c.name, c.image);
  }
  const out: PullFailure[] = [];
  const statuses: Array<[ContainerStatus, boolean]> = [
    ...(pod.status?.initContainerStatuses ?? []).map((s): [ContainerStatus, boolean] => [s, true]),
    ...(pod.status?.containerStatuses ?? []).map((s): [ContainerStatus, boolean] => [s, false]),
  ];
  for (const [s, init] of statuses) {
    const w = s.state?.waiting;
    if (!w || typeof w.reason !== 'string' || !PULL_WAITING.has(w.reason)) continue;
    const image = specImage.get(s.name) ?? s.image;
    if (typeof image !== 'string' || image === '') continue;
    out.push({ container: s.name, init, image, waitingReason: w.reason, message: typeof w.message === 'string' ? w.message : '' });
  }
  return out;
}

/** A failure the node itself has in reaching the registry (as opposed to names, credentials, missing images). */
export function nodeSideFailure(r: ProbeResult): boolean {
  return !r.ok && (r.cause === 'network' || r.cause === 'registry');
}

function verdictKey(r: ProbeResult): string {
  return nodeSideFailure(r) ? `fail:${r.stage ?? ''}:${r.reason ?? ''}` : 'not-network';
}

/** The Event's type and message (pure). */
export function diagnosisText(
  node: string,
  subnet: string | null,
  r: ProbeResult,
  f: PullFailure,
): { type: 'Warning' | 'Normal'; message: string } {
  const registry = r.registry ?? 'the registry';
  const where = subnet ? `node ${node} (subnet ${subnet})` : `node ${node}`;
  let message: string;
  if (nodeSideFailure(r)) {
    message =
      `${where} cannot reach ${registry}: ${r.reason ?? 'unknown'} at stage ${r.stage ?? 'unknown'}` +
      `${r.message ? ` (${r.message})` : ''}. Fix: ${r.hint ?? 'check the path from this node to the registry.'}`;
  } else {
    const k = explainMessage(f.message);
    const points = k.reason
      ? `the kubelet's message points to ${k.reason} (${k.cause ?? 'unknown cause'}): ${k.hint ?? ''}`
      : "the kubelet's message matches no known cause; read it in the events above";
    message = `${where} reaches ${registry}: the network is not the cause; ${points}`;
  }
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 3)}...`;
  return { type: nodeSideFailure(r) ? 'Warning' : 'Normal', message: message.trim() };
}

export class PodDiscovery {
  private counts = new Map<string, number>();
  private readonly probed = new Map<string, { at: number; result: ProbeResult }>();
  private readonly inFlight = new Map<string, Promise<ProbeResult>>();
  /** `uid|image|verdict` already told to the pod. */
  private readonly told = new Set<string>();
  /** `uid|image` being diagnosed right now. */
  private readonly busy = new Map<string, Promise<void>>();
  private seq = 0;
  private readonly now: () => number;

  constructor(private readonly opts: DiscoveryOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Registries currently discovered, with their image counts. */
  registries(): ReadonlyMap<string, number> {
    return this.counts;
  }

  /** The node's current Pods (after each list / watch event). */
  update(pods: ReadonlyMap<string, KubePod>): void {
    const counts = imagesByRegistry(pods.values());
    if (!sameCounts(counts, this.counts)) {
      this.counts = counts;
      this.opts.onRegistries(counts);
    }
    const live = new Set<string>();
    for (const pod of pods.values()) {
      const uid = pod.metadata.uid ?? `${pod.metadata.namespace}/${pod.metadata.name}`;
      live.add(uid);
      for (const f of pullFailures(pod)) {
        const key = `${uid}|${f.image}`;
        if (this.busy.has(key)) continue;
        const run = this.diagnose(pod, uid, f).finally(() => this.busy.delete(key));
        this.busy.set(key, run);
      }
    }
    for (const k of this.told) if (!live.has(k.split('|')[0] ?? '')) this.told.delete(k);
    const images = new Set<string>();
    for (const pod of pods.values()) {
      for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) if (c.image) images.add(c.image);
    }
    for (const image of this.probed.keys()) if (!images.has(image)) this.probed.delete(image);
  }

  /** Resolves when every diagnosis in flight has finished (tests, stop). */
  async settle(): Promise<void> {
    while (this.busy.size) await Promise.all([...this.busy.values()]);
  }

  private async diagnose(pod: KubePod, uid: string, f: PullFailure): Promise<void> {
    let result: ProbeResult;
    try {
      result = await this.probeOnce(f.image);
    } catch (err) {
      this.opts.log?.warn({ image: f.image, error: err instanceof Error ? err.message : 'error' }, 'pod discovery: probe failed');
      return;
    }
    const told = `${uid}|${f.image}|${verdictKey(result)}`;
    if (this.told.has(told)) return;
    this.told.add(told);
    const { type, message } = diagnosisText(this.opts.node, this.opts.subnet, result, f);
    const at = this.now();
    const ts = rfc3339(at);
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${pod.metadata.name}.${Math.floor(at).toString(16)}${(this.seq++ % 0x10000).toString(16).padStart(4, '0')}`,
        namespace: pod.metadata.namespace,
      },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        name: pod.metadata.name,
        namespace: pod.metadata.namespace,
        ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
        fieldPath: `spec.${f.init ? 'initContainers' : 'containers'}{${f.container}}`,
      },
      reason: DIAGNOSIS_REASON,
      message,
      type,
      source: { component: EVENT_COMPONENT, host: this.opts.node },
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.opts.node,
    };
    try {
      await this.opts.createEvent(pod.metadata.namespace, event);
      this.opts.log?.info(
        { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, image: f.image, type },
        'pull diagnosis recorded on the pod',
      );
    } catch (err) {
      this.told.delete(told); // a later update tries again
      this.opts.log?.warn(
        { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, error: err instanceof Error ? err.message : 'error' },
        'pod discovery: cannot record the event',
      );
    }
  }

  /** Single-flight per image; a result is reused for a minute. */
  private probeOnce(image: string): Promise<ProbeResult> {
    const last = this.probed.get(image);
    if (last && this.now() - last.at < (this.opts.reprobeMs ?? REPROBE_MS)) return Promise.resolve(last.result);
    const running = this.inFlight.get(image);
    if (running) return running;
    const p = this.opts
      .probeImage(image)
      .then((result) => {
        this.probed.set(image, { at: this.now(), result });
        return result;
      })
      .finally(() => this.inFlight.delete(image));
    this.inFlight.set(image, p);
    return p;
  }
}

function sameCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
