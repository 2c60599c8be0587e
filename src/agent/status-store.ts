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
}

export interface StatusSnapshot {
  /** Epoch ms. */
  generatedAt: number;
  node: NodeInfo | null;
  targets: TargetStatus[];
  /** Newest first. */
  recentFailures: FailureRecord[];
}

export interface StatusStoreOptions {
  /** Failure episodes kept; default 50. */
  maxFailures?: number;
  /** Epoch ms; default Date.now. */
  wallNow?: () => number;
}

function verdictKey(r: ProbeResult): string {
  return r.ok ? 'ok' : `${r.stage ?? ''}/${r.reason ?? ''}`;
}

export class StatusStore {
  private readonly maxFailures: number;
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
    this.targets.delete(target);
    const episode = this.open.get(target);
    if (episode) {
      episode.clearedAt = this.wallNow();
      this.open.delete(target);
    }
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
    const since = changed ? now : (prev?.since ?? now);
    this.targets.set(target, { target, result, since, lastProbeAt: now });

    const episode = this.open.get(target);
    if (episode && changed) {
      episode.clearedAt = now;
      this.open.delete(target);
    }
    if (!result.ok && result.stage && result.reason) {
      const current = this.open.get(target);
      if (current) {
        current.lastSeenAt = now;
        current.count += 1;
      } else {
        const record: FailureRecord = {
          target, stage: result.stage, reason: result.reason, cause: result.cause,
          host: result.host, message: result.message, hint: result.hint,
          startedAt: now, lastSeenAt: now, count: 1, clearedAt: null,
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
    };
  }
}
