/**
 * Pure: the node's own verdict for a registry from its `pullprobe.dev/status`
 * annotation, with the annotation's age, and the subnet verdict
 * `pullprobe report` gives for the same subnet × registry (report/rows.ts,
 * over the node list when the user may list nodes, else over this node).
 */
import { ANNOTATION_KEY } from '../kube/patches.js';
import { buildReport } from '../report/rows.js';
import { isReason, stageOf } from '../diagnosis/catalog.js';
import type { NodeVerdict } from './types.js';
import { isObj } from './pod.js';

/** The agent's default heartbeat: report's staleness is 3 × this. */
export const DEFAULT_HEARTBEAT_MS = 10 * 60_000;

export interface NodeFinding {
  verdict: NodeVerdict | null;
  /** Why there is no verdict, or what to know about it (stale, no entry for the registry). */
  note: string | null;
  /** Epoch ms of the annotation's last write, when there is one. */
  at: number | null;
}

export function nodeFinding(
  node: unknown,
  nodeList: unknown,
  registry: string,
  nowMs: number,
  heartbeatMs = DEFAULT_HEARTBEAT_MS,
): NodeFinding {
  const meta = isObj(node) && isObj(node['metadata']) ? node['metadata'] : {};
  const name = typeof meta['name'] === 'string' ? meta['name'] : '?';
  const annotations = isObj(meta['annotations']) ? meta['annotations'] : {};
  const raw = annotations[ANNOTATION_KEY];
  if (typeof raw !== 'string')
    return { verdict: null, note: `no agent on this node (node ${name} has no ${ANNOTATION_KEY} annotation)`, at: null };
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch {
    doc = null;
  }
  if (!isObj(doc) || !isObj(doc['registries']))
    return { verdict: null, note: `the ${ANNOTATION_KEY} annotation on node ${name} is not readable`, at: null };
  const atMs = typeof doc['at'] === 'string' ? Date.parse(doc['at']) : Number.NaN;
  const at = Number.isFinite(atMs) ? atMs : null;
  const entry = doc['registries'][registry];
  if (!isObj(entry) || typeof entry['ok'] !== 'boolean') {
    return { verdict: null, note: `the agent on node ${name} does not probe ${registry} (add it to the agent's targets)`, at };
  }
  const subnet = typeof doc['subnet'] === 'string' && doc['subnet'] !== '' ? doc['subnet'] : null;
  const reason = typeof entry['reason'] === 'string' && isReason(entry['reason']) ? entry['reason'] : null;
  const report = buildReport(nodeList ?? { items: [node] }, nowMs, heartbeatMs);
  const row = report.rows.find((r) => r.registry === registry && r.subnet === (subnet ?? 'unknown'));
  const stale = at !== null && at < nowMs - 3 * heartbeatMs;
  return {
    verdict: {
      ok: entry['ok'],
      stage: reason !== null ? stageOf(reason) : null,
      reason,
      since: typeof entry['since'] === 'string' ? entry['since'] : null,
      subnet,
      subnetVerdict: nodeList === null && !stale ? null : (row?.verdict ?? null),
    },
    note: stale
      ? `the annotation is stale (last written more than ${(3 * heartbeatMs) / 60_000} minutes ago): the agent may not be running`
      : null,
    at,
  };
}
