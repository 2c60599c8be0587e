/**
 * Pure: per-subnet × registry verdicts from the `pullprobe.dev/status` node
 * annotations (design.md, "`report --json`"). No I/O, no clock: the caller
 * passes the parsed `kubectl get nodes -o json` document and the time.
 *
 * Decisions:
 * - Input is a NodeList (`{"items":[…]}`) or one Node; anything else is an
 *   entry in `errors` (never a throw). `nodeItems()` tells the CLI which.
 * - A node without the annotation → `unknown` (an item that is not an object,
 *   or has no name, is listed as `(item N)`). A node whose annotation is not
 *   JSON, has an unknown `v`, no parseable `at` or no `registries` object →
 *   `unknown` as well, plus an `errors` entry naming the node. A registry entry
 *   without a boolean `ok` is skipped with an `errors` entry.
 * - Staleness is per node: `at` older than 3 × heartbeat (the annotation does
 *   not carry its period, the caller passes it). A stale node goes to `stale`
 *   and is left out of the live counts. A subnet × registry whose annotated
 *   nodes are all stale gets verdict `stale` (nodes = those nodes, failing 0,
 *   stage/reason null, failingNodes []). An `at` in the future is not stale.
 * - Rows cover the non-stale nodes of a subnet that report the registry.
 *   Verdict order: `cluster-wide` when every non-stale node reporting the
 *   registry, in every subnet, fails (at least one such node — so a cluster
 *   with a single subnet says cluster-wide, not subnet-wide); else
 *   `subnet-wide` when every node of the subnet fails; else `isolated` when
 *   some fail; else `ok`.
 * - stage/reason: the most common (stage, reason) pair among failing nodes;
 *   ties → alphabetical by stage, then reason; a pair with an unrecognised
 *   stage or reason (a newer agent) is recorded as null and loses ties.
 * - Subnet: the annotation's `subnet`; null, absent or not a string → "unknown".
 * - Rows sorted by registry, then subnet (IPv4 CIDRs numerically, then other
 *   strings, "unknown" last). Node name lists are sorted.
 */
import { CAUSES, STAGES, isReason, type Cause, type Reason, type Stage } from '../diagnosis/catalog.js';
import { isPlainObject } from '../shared/guards.js';
import { ANNOTATION_KEY, ANNOTATION_VERSION, type AnnotationState, type RegistryState } from '../kube/patches.js';

export const VERDICTS = ['ok', 'subnet-wide', 'isolated', 'cluster-wide', 'stale'] as const;
export type ReportVerdict = (typeof VERDICTS)[number];

export const UNKNOWN_SUBNET = 'unknown';

/** One row of `report --json`; key order is the contract's. */
export interface ReportRow {
  subnet: string;
  registry: string;
  nodes: number;
  failing: number;
  verdict: ReportVerdict;
  stage: Stage | null;
  reason: Reason | null;
  failingNodes: string[];
}

export interface Report {
  rows: ReportRow[];
  /** Nodes without a usable annotation, sorted. */
  unknown: string[];
  /** Nodes whose annotation heartbeat is older than 3 × its period, sorted. */
  stale: string[];
  /** One line per problem, each naming the node (or the input). */
  errors: string[];
}

/** The staleness factor: `at` older than this many heartbeat periods. */
export const STALE_FACTOR = 3;

/** The node objects of a NodeList or a single Node, or why the input is neither. */
export function nodeItems(json: unknown): { ok: true; items: unknown[] } | { ok: false; error: string } {
  if (isPlainObject(json)) {
    if (Array.isArray(json['items'])) return { ok: true, items: json['items'] };
    if (json['kind'] === 'Node' || (json['kind'] === undefined && isPlainObject(json['metadata']))) {
      return { ok: true, items: [json] };
    }
    if (typeof json['kind'] === 'string') {
      return { ok: false, error: `input is a ${json['kind']}, expected a NodeList or a Node (kubectl get nodes -o json)` };
    }
  }
  return { ok: false, error: 'input is not a NodeList or a Node (expected the output of kubectl get nodes -o json)' };
}

interface ParsedNode {
  name: string;
  state: AnnotationState;
  atMs: number;
}

type ParseOutcome = { ok: true; node: ParsedNode } | { ok: false; name: string; error: string | null };

function parseNode(item: unknown, index: number, errors: string[]): ParseOutcome {
  if (!isPlainObject(item)) return { ok: false, name: `(item ${index})`, error: `item ${index} is not a Node object` };
  const meta = isPlainObject(item['metadata']) ? item['metadata'] : null;
  const rawName = meta?.['name'];
  const name = typeof rawName === 'string' && rawName !== '' ? rawName : `(item ${index})`;
  const annotations = meta && isPlainObject(meta['annotations']) ? meta['annotations'] : null;
  const raw = annotations?.[ANNOTATION_KEY];
  if (raw === undefined) return { ok: false, name, error: null };
  const fail = (why: string): ParseOutcome => ({ ok: false, name, error: `node ${name}: annotation ${ANNOTATION_KEY} ${why}` });
  if (typeof raw !== 'string') return fail('is not a string');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return fail('is not valid JSON');
  }
  if (!isPlainObject(value)) return fail('is not a JSON object');
  if (value['v'] !== ANNOTATION_VERSION)
    return fail(`has unsupported version v=${value['v'] === undefined ? 'absent' : JSON.stringify(value['v'])}`);
  const at = value['at'];
  const atMs = typeof at === 'string' ? Date.parse(at) : Number.NaN;
  if (!Number.isFinite(atMs)) return fail('has no valid "at" time');
  const regs = value['registries'];
  if (!isPlainObject(regs)) return fail('has no "registries" object');
  const registries: Record<string, RegistryState> = {};
  for (const [registry, entry] of Object.entries(regs)) {
    if (!isPlainObject(entry) || typeof entry['ok'] !== 'boolean') {
      errors.push(`node ${name}: registry ${registry} entry has no boolean "ok"; ignored`);
      continue;
    }
    const stage = entry['stage'];
    const reason = entry['reason'];
    registries[registry] = {
      ok: entry['ok'],
      stage: typeof stage === 'string' && (STAGES as readonly string[]).includes(stage) ? (stage as Stage) : null,
      reason: typeof reason === 'string' && isReason(reason) ? reason : null,
      cause:
        typeof entry['cause'] === 'string' && (CAUSES as readonly string[]).includes(entry['cause']) ? (entry['cause'] as Cause) : null,
      since: typeof entry['since'] === 'string' ? entry['since'] : '',
    };
  }
  const subnet = typeof value['subnet'] === 'string' && value['subnet'] !== '' ? value['subnet'] : null;
  const zone = typeof value['zone'] === 'string' ? value['zone'] : null;
  return { ok: true, node: { name, atMs, state: { at: at as string, subnet, zone, registries } } };
}

interface Group {
  subnet: string;
  registry: string;
  live: Array<{ name: string; state: RegistryState }>;
  staleCount: number;
}

export function buildReport(nodesJson: unknown, nowMs: number, heartbeatMs: number): Report {
  const errors: string[] = [];
  const unknown: string[] = [];
  const stale: string[] = [];
  const items = nodeItems(nodesJson);
  if (!items.ok) return { rows: [], unknown, stale, errors: [items.error] };

  const groups = new Map<string, Group>();
  const staleBefore = nowMs - STALE_FACTOR * heartbeatMs;
  items.items.forEach((item, i) => {
    const parsed = parseNode(item, i, errors);
    if (!parsed.ok) {
      unknown.push(parsed.name);
      if (parsed.error !== null) errors.push(parsed.error);
      return;
    }
    const { name, state, atMs } = parsed.node;
    const isStale = atMs < staleBefore;
    if (isStale) stale.push(name);
    const subnet = state.subnet ?? UNKNOWN_SUBNET;
    for (const [registry, rs] of Object.entries(state.registries)) {
      const key = `${registry}\u0000${subnet}`;
      let g = groups.get(key);
      if (!g) {
        g = { subnet, registry, live: [], staleCount: 0 };
        groups.set(key, g);
      }
      if (isStale) g.staleCount++;
      else g.live.push({ name, state: rs });
    }
  });

  // cluster-wide: per registry, every live node in every subnet fails.
  const clusterWide = new Map<string, boolean>();
  for (const g of groups.values()) {
    const prev = clusterWide.get(g.registry) ?? true;
    clusterWide.set(g.registry, prev && g.live.every((n) => !n.state.ok));
  }

  const rows: ReportRow[] = [];
  for (const g of groups.values()) {
    if (g.live.length === 0) {
      rows.push({
        subnet: g.subnet,
        registry: g.registry,
        nodes: g.staleCount,
        failing: 0,
        verdict: 'stale',
        stage: null,
        reason: null,
        failingNodes: [],
      });
      continue;
    }
    const failingLive = g.live.filter((n) => !n.state.ok);
    const failingNodes = failingLive.map((n) => n.name).sort(compareStrings);
    let verdict: ReportVerdict = 'ok';
    if (failingLive.length > 0) {
      if (clusterWide.get(g.registry) === true) verdict = 'cluster-wide';
      else if (failingLive.length === g.live.length) verdict = 'subnet-wide';
      else verdict = 'isolated';
    }
    const top = mostCommonPair(failingLive.map((n) => n.state));
    rows.push({
      subnet: g.subnet,
      registry: g.registry,
      nodes: g.live.length,
      failing: failingLive.length,
      verdict,
      stage: top.stage,
      reason: top.reason,
      failingNodes,
    });
  }
  rows.sort((a, b) => compareStrings(a.registry, b.registry) || compareSubnets(a.subnet, b.subnet));
  return { rows, unknown: unknown.sort(compareStrings), stale: stale.sort(compareStrings), errors };
}

/** Most common (stage, reason) pair; ties alphabetical; null pairs lose ties. */
export function mostCommonPair(states: ReadonlyArray<Pick<RegistryState, 'stage' | 'reason'>>): {
  stage: Stage | null;
  reason: Reason | null;
} {
  const counts = new Map<string, { stage: Stage | null; reason: Reason | null; n: number }>();
  for (const s of states) {
    const key = `${s.stage ?? ''}\u0000${s.reason ?? ''}`;
    const c = counts.get(key);
    if (c) c.n++;
    else counts.set(key, { stage: s.stage, reason: s.reason, n: 1 });
  }
  let best: { stage: Stage | null; reason: Reason | null; n: number } | null = null;
  for (const c of counts.values()) {
    if (best === null || comparePairs(c, best) < 0) best = c;
  }
  return best === null ? { stage: null, reason: null } : { stage: best.stage, reason: best.reason };
}

function comparePairs(
  a: { stage: string | null; reason: string | null; n: number },
  b: { stage: string | null; reason: string | null; n: number },
): number {
  if (a.n !== b.n) return b.n - a.n;
  return compareNullable(a.stage, b.stage) || compareNullable(a.reason, b.reason);
}

function compareNullable(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return compareStrings(a, b);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** IPv4 (CIDR) numerically first, then other strings, "unknown" last. */
export function compareSubnets(a: string, b: string): number {
  if (a === b) return 0;
  if (a === UNKNOWN_SUBNET) return 1;
  if (b === UNKNOWN_SUBNET) return -1;
  const ma = IPV4_CIDR.exec(a);
  const mb = IPV4_CIDR.exec(b);
  if (ma && mb) {
    for (let i = 1; i <= 5; i++) {
      const d = Number(ma[i] ?? -1) - Number(mb[i] ?? -1);
      if (d !== 0) return d;
    }
    return 0;
  }
  if (ma) return -1;
  if (mb) return 1;
  return compareStrings(a, b);
}
