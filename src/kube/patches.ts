/**
 * Pure builders for everything pullprobe writes to the Node (design.md
 * "Kubernetes outputs"): the `pullprobe.dev/status` annotation (merge patch on
 * `nodes`), the `RegistryReachable` condition (strategic-merge patch on
 * `nodes/status`, merge key `type`, so other conditions are never touched) and
 * the core/v1 Events for per-registry transitions. No I/O, no clock: callers
 * pass the times in (like NPD's `generatePatch`).
 */
import type { Cause, Reason, Stage } from '../diagnosis/catalog.js';
import type { ProbeResult } from '../model/types.js';
import { rfc3339 } from '../shared/rfc3339.js';

export const ANNOTATION_KEY = 'pullprobe.dev/status';
export const CONDITION_TYPE = 'RegistryReachable';
export const EVENT_COMPONENT = 'pullprobe';
export const EVENT_NAMESPACE = 'default';
export const ANNOTATION_VERSION = 1;

/** A registry's current verdict, folded over its targets. */
export interface Verdict {
  ok: boolean;
  stage: Stage | null;
  reason: Reason | null;
  cause: Cause | null;
  /** The failing target (first failing one), or the first target when ok. */
  target: string;
}

/** A registry's entry in the annotation: the verdict plus when it began. */
export interface RegistryState {
  ok: boolean;
  stage: Stage | null;
  reason: Reason | null;
  cause: Cause | null;
  /** RFC 3339: when this verdict (ok, reason) began. */
  since: string;
}

export interface AnnotationState {
  /** RFC 3339 time of this write (heartbeats move it). */
  at: string;
  subnet: string | null;
  zone: string | null;
  registries: Record<string, RegistryState>;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionState {
  status: ConditionStatus;
  reason: string;
  message: string;
}

export interface NodeCondition {
  type: string;
  status: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface ConditionPatch {
  status: { conditions: NodeCondition[] };
}

export interface AnnotationPatch {
  metadata: { annotations: Record<string, string> };
}

/** The key a result is grouped under: its registry, else (invalid reference) its target. */
export function registryKey(result: ProbeResult): string {
  return result.registry ?? result.target;
}

/**
 * Fold results into one verdict per registry. A registry fails when any of
 * its targets fails; the first failing target (input order) names the
 * stage and reason.
 */
export function verdictsFromResults(results: readonly ProbeResult[]): Record<string, Verdict> {
  const out: Record<string, Verdict> = {};
  for (const r of results) {
    const key = registryKey(r);
    const prev = out[key];
    if (prev && !prev.ok) continue;
    if (prev && r.ok) continue;
    out[key] = r.ok
      ? { ok: true, stage: null, reason: null, cause: null, target: r.target }
      : { ok: false, stage: r.stage, reason: r.reason, cause: r.cause, target: r.target };
  }
  return out;
}

export { rfc3339 };

/**
 * The annotation value: compact JSON with a fixed key order and registries
 * sorted by name, so equal states give byte-equal strings. An ok registry
 * carries only `ok` and `since`.
 */
export function annotationValue(state: AnnotationState): string {
  const registries: Record<string, object> = {};
  for (const name of Object.keys(state.registries).sort()) {
    const r = state.registries[name];
    if (!r) continue;
    registries[name] = r.ok
      ? { ok: true, since: r.since }
      : { ok: false, stage: r.stage, reason: r.reason, cause: r.cause, since: r.since };
  }
  return JSON.stringify({
    v: ANNOTATION_VERSION,
    at: state.at,
    subnet: state.subnet,
    zone: state.zone,
    registries,
  });
}

export function buildAnnotationPatch(state: AnnotationState): AnnotationPatch {
  return { metadata: { annotations: { [ANNOTATION_KEY]: annotationValue(state) } } };
}

/** `tcp_refused` → `TcpRefused` (condition reasons are CamelCase). */
export function camelReason(reason: string): string {
  return reason
    .split(/[_\-\s]+/)
    .filter((p) => p.length > 0)
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase())
    .join('');
}

const MESSAGE_MAX = 1024;

/**
 * The condition for a set of registry states; null means no probe has
 * finished yet (Unknown). The reason is the first failing registry's (by
 * name); the message lists every failing registry with its reason.
 */
export function conditionFromStates(states: Record<string, Pick<RegistryState, 'ok' | 'reason'>> | null): ConditionState {
  if (states === null) {
    return { status: 'Unknown', reason: 'NoProbeYet', message: 'no registry probe has completed yet' };
  }
  const names = Object.keys(states).sort();
  const failing = names.filter((n) => states[n]?.ok === false);
  if (failing.length === 0) {
    return { status: 'True', reason: 'AllRegistriesReachable', message: `all ${names.length} registries reachable` };
  }
  const first = states[failing[0] as string];
  const list = failing.map((n) => `${n} (${states[n]?.reason ?? 'unknown'})`).join(', ');
  let message = `${failing.length} of ${names.length} registries unreachable: ${list}`;
  if (message.length > MESSAGE_MAX) message = `${message.slice(0, MESSAGE_MAX - 3)}...`;
  return { status: 'False', reason: camelReason(first?.reason ?? 'unknown'), message };
}

/**
 * Strategic-merge patch for `nodes/status` touching only our condition type.
 * `lastTransitionTime` is omitted when undefined, so the server keeps the
 * stored one.
 */
export function buildConditionPatch(cond: ConditionState, heartbeatTime: string, transitionTime?: string): ConditionPatch {
  const c: NodeCondition = { type: CONDITION_TYPE, status: cond.status, lastHeartbeatTime: heartbeatTime };
  if (transitionTime !== undefined) c.lastTransitionTime = transitionTime;
  c.reason = cond.reason;
  c.message = cond.message;
  return { status: { conditions: [c] } };
}

export interface EventInput {
  node: string;
  uid?: string | null;
  registry: string;
  /** The new verdict of the registry. */
  verdict: Pick<Verdict, 'ok' | 'stage' | 'reason' | 'cause' | 'target'>;
  /** Wall clock, epoch ms. */
  at: number;
  /** Distinguishes events created in the same millisecond. */
  seq: number;
  namespace?: string;
}

export interface CoreEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  involvedObject: { apiVersion: 'v1'; kind: 'Node'; name: string; uid?: string };
  reason: 'RegistryUnreachable' | 'RegistryReachable';
  message: string;
  type: 'Warning' | 'Normal';
  source: { component: string; host: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  reportingComponent: string;
  reportingInstance: string;
}

/** A core/v1 Event on the Node for one registry transition. */
export function buildEvent(input: EventInput): CoreEvent {
  const { node, registry, verdict } = input;
  const ts = rfc3339(input.at);
  const involved: CoreEvent['involvedObject'] = { apiVersion: 'v1', kind: 'Node', name: node };
  if (input.uid) involved.uid = input.uid;
  const message = verdict.ok
    ? `registry ${registry} reachable from node ${node}`
    : `registry ${registry} unreachable from node ${node}: ${verdict.reason ?? 'unknown'} ` +
      `(stage ${verdict.stage ?? 'unknown'}, cause ${verdict.cause ?? 'unknown'}, target ${verdict.target})`;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: `${node}.${Math.floor(input.at).toString(16)}${input.seq.toString(16).padStart(4, '0')}`,
      namespace: input.namespace ?? EVENT_NAMESPACE,
    },
    involvedObject: involved,
    reason: verdict.ok ? 'RegistryReachable' : 'RegistryUnreachable',
    message,
    type: verdict.ok ? 'Normal' : 'Warning',
    source: { component: EVENT_COMPONENT, host: node },
    firstTimestamp: ts,
    lastTimestamp: ts,
    count: 1,
    reportingComponent: EVENT_COMPONENT,
    reportingInstance: node,
  };
}
