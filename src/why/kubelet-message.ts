/**
 * Pure: the kubelet's message for one container, from its waiting status and
 * the pod's Events (`kubectl get events --field-selector
 * involvedObject.name=POD -o json`), classified with the `explain` table.
 * The first message that names a known failure wins, in this order: the
 * container status, then the events for this container newest first (the
 * status of a container in ImagePullBackOff only says "Back-off pulling
 * image"; the cause is in the earlier "Failed to pull image" event).
 */
import { explainText } from '../diagnosis/explain.js';
import type { Cause, Reason, Stage } from '../diagnosis/catalog.js';
import { isObj } from './pod.js';

export interface PodEvent {
  fieldPath: string | null;
  reason: string;
  message: string;
  /** Epoch ms of its last occurrence, 0 when unknown. */
  at: number;
}

export function podEvents(list: unknown): PodEvent[] {
  const items = isObj(list) && Array.isArray(list['items']) ? list['items'] : [];
  const out: PodEvent[] = [];
  for (const e of items) {
    if (!isObj(e) || typeof e['message'] !== 'string') continue;
    const inv = isObj(e['involvedObject']) ? e['involvedObject'] : {};
    const meta = isObj(e['metadata']) ? e['metadata'] : {};
    const when = [e['lastTimestamp'], e['eventTime'], e['firstTimestamp'], meta['creationTimestamp']].find(
      (t) => typeof t === 'string' && Number.isFinite(Date.parse(t)),
    );
    out.push({
      fieldPath: typeof inv['fieldPath'] === 'string' ? inv['fieldPath'] : null,
      reason: typeof e['reason'] === 'string' ? e['reason'] : '',
      message: e['message'],
      at: typeof when === 'string' ? Date.parse(when) : 0,
    });
  }
  return out;
}

export interface KubeletFinding {
  message: string | null;
  explained: { stage: Stage | null; reason: Reason; cause: Cause } | null;
}

/** The events about this container (by fieldPath; events without one, when they name its image). */
function eventsFor(events: readonly PodEvent[], container: { name: string; init: boolean; image: string }): PodEvent[] {
  const path = `spec.${container.init ? 'initContainers' : 'containers'}{${container.name}}`;
  return events
    .filter((e) => (e.fieldPath !== null ? e.fieldPath === path : container.image !== '' && e.message.includes(`"${container.image}"`)))
    .sort((a, b) => b.at - a.at);
}

export function kubeletFinding(
  container: { name: string; init: boolean; image: string; message: string | null },
  events: readonly PodEvent[],
): KubeletFinding {
  const mine = eventsFor(events, container);
  const warnings = mine.filter((e) => e.reason === 'Failed' || e.reason === 'InspectFailed' || e.reason === 'ErrImageNeverPull');
  const candidates = [container.message, ...warnings.map((e) => e.message), ...mine.map((e) => e.message)].filter(
    (m): m is string => m !== null && m.trim() !== '',
  );
  for (const text of candidates) {
    const e = explainText(text);
    if (e.reason !== null && e.cause !== null) return { message: text, explained: { stage: e.stage, reason: e.reason, cause: e.cause } };
  }
  return { message: candidates[0] ?? null, explained: null };
}
