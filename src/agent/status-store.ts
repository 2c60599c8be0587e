/**
 * What the status page shows: per target the latest periodic ProbeResult,
 * when its verdict last changed, and a bounded list of recent failures that
 * stays after they clear (blackbox keeps failed results apart from its
 * history for the same reason, prober/history.go).
 */
import type { Cause, Reason, Stage } from '../diagnosis/catalog.js';
import type { ProbeResult } from '../model/types.js';
import type { NodeInfo } from './metrics.js';

export interface TargetStatus {
  target: string;
  /** Latest periodic result; null until the first probe finished. */
  result: ProbeResult | null;
  /** Epoch ms of the last verdict change (ok ↔ failing, or another stage/reason); null before the first result. */
  since: number | null;
  /** Epoch ms the latest result arrived. */
  lastProbeAt: number | null;
}

/** One failure episode of a target: from the first failing result until the verdict changed. */
export interface FailureRecord {
  target: string;
  stage: Stage;
  reason: Reason;
  cause: Cause | null;
  host: string | null;
  message: string | null;
  hint: string | null;
  /** Epoch ms of the first failing result of this episode. */
  startedAt: number;
  /** Epoch ms of the latest failing result of this episode. */
  lastSeenAt: number;
  /** Failing results in this episode. */
  count: number;
  /** Epoch ms the verdict changed away from this failure; null while it lasts. */
  clearedAt: number | null;
  /** What the verdict changed to when this episode ended (ok, another failure, or the target removed); null while it lasts. */
  changedTo: Verdict | null;
}

/**
 * A target's verdict, small enough to keep in history: ok (possibly
 * degraded), failing at a stage for a reason, or removed from the
 * configuration.
 */
export type Verdict =
  { state: 'ok'; degraded: boolean } | { state: 'failing'; stage: Stage; reason: Reason; message: string | null } | { state: 'removed' };

/** One verdict change of a target: what it was (null for its first result) and what it became. */
export interface VerdictChange {
  target: string;
  /** Epoch ms. */
  at: number;
  from: Verdict | null;
  to: Verdict;
  /** Epoch ms the `from` verdict began; null for a first result. */
  fromSince: number | null;
}

export interface StatusSnapshot {
  /** Epoch ms. */
  generatedAt: number;
  node: NodeInfo | null;
  targets: TargetStatus[];
  /** Newest first. */
  recentFailures: FailureRecord[];
  /**
   * Newest first: verdict changes (ok ↔ failing, one failure to another,
   * removed), and first results that were failing. A first result that is ok
   * is not a change worth listing. Optional so hand-made snapshots (tests,
   * older callers) stay valid; the store always fills it.
   */
  recentChanges?: VerdictChange[];
}

export interface StatusStoreOptions {
  /** Failure episodes kept; default 50. */
  maxFailures?: number;
  /** Verdict changes kept; default 50. */
  maxChanges?: number;
  /** Epoch ms; default Date.now. */
  wallNow?: () => number;
}

function verdictKey(r: ProbeResult): string {
  return r.ok ? 'ok' : `${r.stage ?? ''}/${r.reason ?? ''}`;
}

/** The verdict of a result; a failing result without a stage or reason (never produced by the chain) reads as an internal error. */
export function verdictOf(r: ProbeResult): Verdict {
  if (r.ok) return { state: 'ok', degraded: r.degraded };
  return { state: 'failing', stage: r.stage ?? 'reference', reason: r.reason ?? 'internal_error', message: r.message };
}

export class StatusStore {
  private readonly maxFailures: number;
  private readonly maxChanges: number;
  /** Oldest first. */
  private changes: VerdictChange[] = [];
  private readonly wallNow: () => number;
  private readonly targets = new Map<string, TargetStatus>();
  /** Oldest first; the open episode of a target is also in `open`. */
  private failures: FailureRecord[] = [];
  private readonly open = new Map<string, FailureRecord>();
  private node: NodeInfo | null = null;
  /** Set once setTargets was called: results for targets not listed are dropped. */
  private configured = false;

  constructor(opts: StatusStoreOptions = {}) {
    this.maxFailures = Math.max(1, opts.maxFailures ?? 50);
    this.maxChanges = Math.max(1, opts.maxChanges ?? 50);
    this.wallNow = opts.wallNow ?? Date.now;
  }

  setNode(node: NodeInfo): void {
    this.node = { ...node };
  }

  /** Configured targets, in config order; targets no longer listed are forgotten (their failure history stays). */
  setTargets(targets: readonly string[]): void {
    this.configured = true;
    const keep = new Set(targets);
    for (const t of [...this.targets.keys()]) if (!keep.has(t)) this.forget(t);
    const next = new Map<string, TargetStatus>();
    for (const t of targets) next.set(t, this.targets.get(t) ?? { target: t, result: null, since: null, lastProbeAt: null });
    this.targets.clear();
    for (const [k, v] of next) this.targets.set(k, v);
  }

  forget(target: string): void {
    const prev = this.targets.get(target);
    this.targets.delete(target);
    const now = this.wallNow();
    const removed: Verdict = { state: 'removed' };
    const episode = this.open.get(target);
    if (episode) {
      episode.clearedAt = now;
      episode.changedTo = removed;
      this.open.delete(target);
    }
    if (prev?.result) this.recordChange({ target, at: now, from: verdictOf(prev.result), to: removed, fromSince: prev.since });
  }

  private recordChange(change: VerdictChange): void {
    this.changes.push(change);
    if (this.changes.length > this.maxChanges) this.changes = this.changes.slice(-this.maxChanges);
  }

  /**
   * Record a periodic result; `changed` is true when the verdict differs from
   * the previous one. Once the configured targets are known, a result for any
   * other target (a probe that finished after a reload removed it) is dropped.
   */
  update(target: string, result: ProbeResult): { changed: boolean; recorded: boolean } {
    const prev = this.targets.get(target);
    if (this.configured && !prev) return { changed: false, recorded: false };
    const now = this.wallNow();
    const changed = !prev?.result || verdictKey(prev.result) !== verdictKey(result);
    const since = changed ? now : prev.since;
    this.targets.set(target, { target, result, since, lastProbeAt: now });

    if (changed && (prev?.result || !result.ok)) {
      const from = prev?.result ? verdictOf(prev.result) : null;
      this.recordChange({ target, at: now, from, to: verdictOf(result), fromSince: prev?.result ? prev.since : null });
    }
    const episode = this.open.get(target);
    if (episode && changed) {
      episode.clearedAt = now;
      episode.changedTo = verdictOf(result);
      this.open.delete(target);
    }
    if (!result.ok && result.stage && result.reason) {
      const current = this.open.get(target);
      if (current) {
        current.lastSeenAt = now;
        current.count += 1;
      } else {
        const record: FailureRecord = {
          target,
          stage: result.stage,
          reason: result.reason,
          cause: result.cause,
          host: result.host,
          message: result.message,
          hint: result.hint,
          startedAt: now,
          lastSeenAt: now,
          count: 1,
          clearedAt: null,
          changedTo: null,
        };
        this.open.set(target, record);
        this.failures.push(record);
        if (this.failures.length > this.maxFailures) this.failures = this.failures.slice(-this.maxFailures);
      }
    }
    return { changed, recorded: true };
  }

  get(target: string): TargetStatus | undefined {
    const s = this.targets.get(target);
    return s ? { ...s } : undefined;
  }

  snapshot(): StatusSnapshot {
    return {
      generatedAt: this.wallNow(),
      node: this.node ? { ...this.node } : null,
      targets: [...this.targets.values()].map((s) => ({ ...s })),
      recentFailures: [...this.failures].reverse().map((f) => ({ ...f })),
      recentChanges: [...this.changes].reverse().map((c) => ({ ...c })),
    };
  }
}
