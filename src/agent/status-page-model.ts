/**
 * What the status page shows, worked out from a snapshot before any HTML:
 * targets grouped by registry, failing first, each registry's distinct
 * problems (and their fix) once, and the banner's counts. Pure.
 */
import type { Reason, Stage } from '../diagnosis/catalog.js';
import { parseTarget } from '../model/reference.js';
import type { StatusSnapshot, TargetStatus } from './status-store.js';

export type TargetState = 'failing' | 'degraded' | 'pending' | 'ok';

/** Worst first: the order registries and targets are listed in. */
const RANK: Record<TargetState, number> = { failing: 0, degraded: 1, pending: 2, ok: 3 };

export interface TargetView {
  status: TargetStatus;
  state: TargetState;
}

/** One distinct failure of a registry: its stage and reason, its fix, and the targets it hits. */
export interface Problem {
  stage: Stage;
  reason: Reason;
  /** The first target's message; rows whose message differs show their own. */
  message: string | null;
  hint: string | null;
  /** Endpoints involved, in first-seen order. */
  hosts: string[];
  targets: number;
}

export interface RegistryView {
  registry: string;
  state: TargetState;
  /** Worst first, then configuration order. */
  targets: TargetView[];
  problems: Problem[];
  counts: Record<TargetState, number>;
}

export interface PageModel {
  registries: RegistryView[];
  counts: Record<TargetState, number>;
  total: number;
  /** Epoch ms the oldest ongoing failure began; null when nothing fails. */
  failingSince: number | null;
  /** Epoch ms of the latest verdict change when nothing fails; null otherwise or before any result. */
  okSince: number | null;
}

export function stateOf(t: TargetStatus): TargetState {
  const r = t.result;
  if (!r) return 'pending';
  if (!r.ok) return 'failing';
  return r.degraded ? 'degraded' : 'ok';
}

/** The registry a target belongs to: from its latest result, else parsed from the target string, else the string itself. */
export function registryOf(t: TargetStatus): string {
  if (t.result?.registry) return t.result.registry;
  const p = parseTarget(t.target);
  if (!p.ok) return t.target;
  return p.target.kind === 'registry' ? p.target.registry : p.target.ref.registry;
}

function zeroCounts(): Record<TargetState, number> {
  return { failing: 0, degraded: 0, pending: 0, ok: 0 };
}

function byRank<T extends { state: TargetState }>(items: T[]): T[] {
  // Array.prototype.sort is stable, so equal ranks keep configuration order.
  return [...items].sort((a, b) => RANK[a.state] - RANK[b.state]);
}

function problemsOf(targets: TargetView[]): Problem[] {
  const problems = new Map<string, Problem>();
  for (const { status } of targets) {
    const r = status.result;
    if (!r || r.ok || !r.stage || !r.reason) continue;
    const key = `${r.stage}\u0000${r.reason}\u0000${r.hint ?? ''}`;
    let p = problems.get(key);
    if (!p) {
      p = { stage: r.stage, reason: r.reason, message: r.message, hint: r.hint, hosts: [], targets: 0 };
      problems.set(key, p);
    }
    p.targets += 1;
    if (r.host && !p.hosts.includes(r.host)) p.hosts.push(r.host);
  }
  return [...problems.values()];
}

/** The problem a failing target's row belongs to (same stage, reason and fix). */
export function problemOf(view: RegistryView, t: TargetStatus): Problem | undefined {
  const r = t.result;
  if (!r || r.ok) return undefined;
  return view.problems.find((p) => p.stage === r.stage && p.reason === r.reason && p.hint === r.hint);
}

export function buildPageModel(snap: StatusSnapshot): PageModel {
  const groups = new Map<string, TargetView[]>();
  const counts = zeroCounts();
  let failingSince: number | null = null;
  let lastChange: number | null = null;
  for (const status of snap.targets) {
    const state = stateOf(status);
    counts[state] += 1;
    if (status.since !== null) {
      if (state === 'failing' && (failingSince === null || status.since < failingSince)) failingSince = status.since;
      if (lastChange === null || status.since > lastChange) lastChange = status.since;
    }
    const registry = registryOf(status);
    const list = groups.get(registry) ?? [];
    list.push({ status, state });
    groups.set(registry, list);
  }
  const registries = [...groups].map(([registry, list]): RegistryView => {
    const targets = byRank(list);
    const regCounts = zeroCounts();
    for (const t of targets) regCounts[t.state] += 1;
    return { registry, state: targets[0]?.state ?? 'pending', targets, problems: problemsOf(targets), counts: regCounts };
  });
  return {
    registries: byRank(registries),
    counts,
    total: snap.targets.length,
    failingSince,
    okSince: counts.failing === 0 ? lastChange : null,
  };
}
