/**
 * Keeps the Node's annotation, condition and events in line with the latest
 * probe results. Desired state is recomputed on every update(); one pump
 * writes whatever differs from what was last written, at most one request in
 * flight. On failure it backs off (with jitter) and, when it retries, writes
 * the state desired at that moment: the latest state wins, stale patches are
 * never queued. Nothing here throws into the caller, and the API being slow,
 * down, 403 or 429 only delays writes.
 */
import type { ProbeResult } from '../model/types.js';
import { unrefTimers, type Timers } from '../shared/timers.js';
import { silentLog, type Log } from '../model/types.js';
import { KubeApiError, isRetryable, type KubeClient, type KubeNode } from './client.js';
import {
  ANNOTATION_KEY,
  CONDITION_TYPE,
  EVENT_NAMESPACE,
  annotationValue,
  buildAnnotationPatch,
  buildConditionPatch,
  buildEvent,
  conditionFromStates,
  rfc3339,
  verdictsFromResults,
  type ConditionState,
  type CoreEvent,
  type RegistryState,
} from './patches.js';

export type { Timers } from '../shared/timers.js';

export const DEFAULT_HEARTBEAT_MS = 10 * 60_000;
/** A heartbeat is due this much early, so timer drift never skips a period. */
const HEARTBEAT_SLACK_MS = 1000;
const MIN_HEARTBEAT_MS = 1000;

export interface NodeWriterOptions {
  /** null: not in a cluster; the writer is off and says so once. */
  client: KubeClient | null;
  disabledReason?: string;
  node: string;
  subnet?: string | null;
  zone?: string | null;
  uid?: string | null;
  outputs?: { annotation?: boolean; condition?: boolean; events?: boolean; heartbeatMs?: number };
  /** The first cycle is complete once each of these targets has a result. */
  expectedTargets?: readonly string[];
  /** The node as read at start: seeds uid, `since` and the condition's transition time. */
  initialNode?: KubeNode | null;
  log?: Log;
  /** Wall clock, epoch ms. */
  wallNow?: () => number;
  timers?: Timers;
  random?: () => number;
  backoff?: { initialMs?: number; maxMs?: number };
  events?: { burst?: number; refillMs?: number; namespace?: string };
}

export interface NodeWriterStats {
  annotationWrites: number;
  conditionWrites: number;
  eventsCreated: number;
  eventsDropped: number;
  failures: number;
}

type Job = { output: 'annotation' | 'condition' | 'event'; run(signal: AbortSignal): Promise<unknown>; done(): void };

export class NodeWriter {
  readonly enabled: boolean;
  private readonly client: KubeClient | null;
  private readonly log: Log;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly out: { annotation: boolean; condition: boolean; events: boolean; heartbeatMs: number };
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly ev: { burst: number; refillMs: number; namespace: string };
  private readonly latest = new Map<string, ProbeResult>();
  private readonly seed: Record<string, RegistryState>;
  private current: Record<string, RegistryState> | null = null;
  private cond: ConditionState = conditionFromStates(null);
  private condStatus: string | null = null;
  private condTransitionAt: string | undefined;
  private written = { annKey: null as string | null, annAt: -Infinity, condKey: null as string | null, condAt: -Infinity };
  private readonly pendingEvents = new Map<string, CoreEvent>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private seq = 0;
  private inFlight: Promise<void> | null = null;
  private retryTimer: unknown = null;
  private heartbeatTimer: unknown = null;
  private attempt = 0;
  private started = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private subnet: string | null;
  private zone: string | null;
  private uid: string | null;
  /** The configured targets (follows reloads); null = take every result. */
  private expected: Set<string> | null;
  private readonly stats_: NodeWriterStats = { annotationWrites: 0, conditionWrites: 0, eventsCreated: 0, eventsDropped: 0, failures: 0 };

  constructor(private readonly opts: NodeWriterOptions) {
    this.client = opts.client;
    this.enabled = opts.client !== null;
    this.log = opts.log ?? silentLog;
    this.now = opts.wallNow ?? Date.now;
    this.timers = opts.timers ?? unrefTimers;
    this.random = opts.random ?? Math.random;
    const o = opts.outputs ?? {};
    this.out = {
      annotation: o.annotation ?? true,
      condition: o.condition ?? true,
      events: o.events ?? true,
      heartbeatMs: Math.max(MIN_HEARTBEAT_MS, o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS),
    };
    this.backoff = { initialMs: opts.backoff?.initialMs ?? 1000, maxMs: opts.backoff?.maxMs ?? 120_000 };
    this.ev = {
      burst: opts.events?.burst ?? 10,
      refillMs: opts.events?.refillMs ?? 30_000,
      namespace: opts.events?.namespace ?? EVENT_NAMESPACE,
    };
    this.subnet = opts.subnet ?? null;
    this.zone = opts.zone ?? null;
    this.uid = opts.uid ?? opts.initialNode?.metadata.uid ?? null;
    this.expected = opts.expectedTargets ? new Set(opts.expectedTargets) : null;
    this.seed = seedFromNode(opts.initialNode ?? null);
    const prev = opts.initialNode?.status?.conditions?.find((c) => c.type === CONDITION_TYPE);
    if (prev) {
      this.condStatus = prev.status;
      this.condTransitionAt = prev.lastTransitionTime;
    }
    if (!this.enabled) {
      this.log.info({ reason: opts.disabledReason ?? 'not in cluster' }, 'kubernetes outputs disabled (no in-cluster config)');
    }
  }

  /** Write the initial Unknown condition and arm the heartbeat. */
  start(): void {
    if (!this.enabled || this.started || this.stopped) return;
    this.started = true;
    this.safely(() => {
      this.refreshCondition();
      this.kick();
    });
  }

  /**
   * Take new results (one target or many); never throws. Results for targets
   * outside the configured set (a probe that finished after a reload removed
   * its target) are dropped.
   */
  update(results: readonly ProbeResult[]): void {
    if (!this.enabled || this.stopped) return;
    this.started = true;
    this.safely(() => {
      for (const r of results) if (!this.expected || this.expected.has(r.target)) this.latest.set(r.target, r);
      this.recompute();
      this.kick();
    });
  }

  /**
   * The configured targets changed (config reload): results of removed
   * targets are forgotten, so a registry no target uses any more leaves the
   * annotation and the condition with the next write.
   */
  setTargets(targets: readonly string[]): void {
    this.expected = new Set(targets);
    if (!this.enabled || this.stopped) return;
    this.safely(() => {
      let removed = false;
      for (const t of [...this.latest.keys()]) {
        if (!this.expected?.has(t)) removed = this.latest.delete(t) || removed;
      }
      // Before the first write, a removed target may have been the one still awaited.
      if (!removed && this.current !== null) return;
      this.recompute();
      this.kick();
    });
  }

  /** Subnet/zone/uid learned after construction. */
  setIdentity(id: { subnet?: string | null; zone?: string | null; uid?: string | null }): void {
    if (id.subnet !== undefined) this.subnet = id.subnet;
    if (id.zone !== undefined) this.zone = id.zone;
    if (id.uid !== undefined) this.uid = id.uid;
    if (this.enabled && this.started) this.safely(() => this.kick());
  }

  stats(): NodeWriterStats {
    return { ...this.stats_ };
  }

  /** Resolves once no write is in flight (a retry may still be scheduled). */
  async whenIdle(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    if (this.heartbeatTimer !== null) this.timers.clearTimeout(this.heartbeatTimer);
    this.retryTimer = this.heartbeatTimer = null;
    await this.whenIdle();
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      try {
        this.log.error({ err: safeMessage(err) }, 'node writer internal error');
      } catch {
        // a logger that throws has nowhere left to report to
      }
    }
  }

  private recompute(): void {
    // The first write waits for a full cycle; later ones go out as results arrive.
    const expected = this.expected;
    if (this.current === null && expected && ![...expected].every((t) => this.latest.has(t))) return;
    const verdicts = verdictsFromResults([...this.latest.values()]);
    const nowMs = this.now();
    const at = rfc3339(nowMs);
    const next: Record<string, RegistryState> = {};
    for (const [name, v] of Object.entries(verdicts)) {
      const prev = this.current?.[name] ?? this.seed[name];
      const same = prev !== undefined && prev.ok === v.ok && prev.reason === v.reason;
      next[name] = { ok: v.ok, stage: v.stage, reason: v.reason, cause: v.cause, since: same ? prev.since : at };
      if (!same && (prev !== undefined || !v.ok) && this.out.events) this.enqueueEvent(name, v, nowMs);
    }
    this.current = next;
    this.refreshCondition();
  }

  private refreshCondition(): void {
    this.cond = conditionFromStates(this.current);
    if (this.cond.status !== this.condStatus) {
      this.condStatus = this.cond.status;
      this.condTransitionAt = rfc3339(this.now());
    }
  }

  private enqueueEvent(registry: string, v: Parameters<typeof buildEvent>[0]['verdict'], nowMs: number): void {
    const b = this.buckets.get(registry) ?? { tokens: this.ev.burst, at: nowMs };
    b.tokens = Math.min(this.ev.burst, b.tokens + (nowMs - b.at) / this.ev.refillMs);
    b.at = nowMs;
    this.buckets.set(registry, b);
    if (b.tokens < 1) {
      this.stats_.eventsDropped++;
      this.log.debug({ registry }, 'node event dropped by rate limit');
      return;
    }
    b.tokens -= 1;
    const event = buildEvent({
      node: this.opts.node,
      uid: this.uid,
      registry,
      verdict: v,
      at: nowMs,
      seq: this.seq++ & 0xffff,
      namespace: this.ev.namespace,
    });
    this.pendingEvents.delete(registry);
    this.pendingEvents.set(registry, event);
  }

  private kick(): void {
    if (this.stopped || this.inFlight || this.retryTimer !== null) return;
    if (this.heartbeatTimer !== null) {
      this.timers.clearTimeout(this.heartbeatTimer);
      this.heartbeatTimer = null;
    }
    this.inFlight = this.drain()
      .catch((err: unknown) => this.internalError(err))
      .finally(() => {
        this.inFlight = null;
        if (this.retryTimer === null) this.safely(() => this.armHeartbeat());
      });
  }

  /** A bug while writing: logged, and retried with backoff like a failed write; never an unhandled rejection. */
  private internalError(err: unknown): void {
    try {
      this.log.error({ err: safeMessage(err) }, 'node writer internal error');
    } catch {
      // a logger that throws has nowhere left to report to
    }
    if (this.stopped || this.retryTimer !== null) return;
    this.safely(() => this.scheduleRetry('internal', new Error(safeMessage(err))));
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const job = this.nextJob();
      if (!job) return;
      try {
        await job.run(this.abort.signal);
        job.done();
        if (this.attempt > 0) this.log.info({ output: job.output }, 'kubernetes writes recovered');
        this.attempt = 0;
      } catch (err) {
        if (this.abort.signal.aborted) return; // stop() ran during the write
        this.stats_.failures++;
        const permanent = !isRetryable(err) || (job.output === 'event' && err instanceof KubeApiError && err.status === 409);
        if (permanent) {
          this.log.error({ output: job.output, err: errInfo(err) }, 'kubernetes write rejected; dropped until the state changes');
          job.done();
          if (job.output === 'event') this.stats_.eventsDropped++;
          continue;
        }
        this.scheduleRetry(job.output, err);
        return;
      }
    }
  }

  private nextJob(): Job | null {
    const c = this.client;
    if (!c) return null;
    const nowMs = this.now();
    const hb = this.out.heartbeatMs - Math.min(HEARTBEAT_SLACK_MS, this.out.heartbeatMs / 10);
    const node = this.opts.node;
    if (this.out.annotation && this.current !== null) {
      const key = annotationValue({ at: '', subnet: this.subnet, zone: this.zone, registries: this.current });
      if (key !== this.written.annKey || nowMs - this.written.annAt >= hb) {
        const patch = buildAnnotationPatch({ at: rfc3339(nowMs), subnet: this.subnet, zone: this.zone, registries: this.current });
        return {
          output: 'annotation',
          run: (signal) => c.patchNode(node, patch, signal),
          done: () => {
            this.written.annKey = key;
            this.written.annAt = nowMs;
            this.stats_.annotationWrites++;
          },
        };
      }
    }
    if (this.out.condition) {
      const key = JSON.stringify(this.cond);
      if (key !== this.written.condKey || nowMs - this.written.condAt >= hb) {
        const patch = buildConditionPatch(this.cond, rfc3339(nowMs), this.condTransitionAt);
        return {
          output: 'condition',
          run: (signal) => c.patchNodeStatus(node, patch, signal),
          done: () => {
            this.written.condKey = key;
            this.written.condAt = nowMs;
            this.stats_.conditionWrites++;
          },
        };
      }
    }
    const first = this.pendingEvents.entries().next();
    if (!first.done) {
      const [registry, event] = first.value;
      return {
        output: 'event',
        run: (signal) => c.createEvent(event.metadata.namespace, event, signal),
        done: () => {
          if (this.pendingEvents.get(registry) === event) this.pendingEvents.delete(registry);
          this.stats_.eventsCreated++;
        },
      };
    }
    return null;
  }

  private scheduleRetry(output: string, err: unknown): void {
    const base = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(this.attempt, 30));
    let delay = base / 2 + (this.random() * base) / 2;
    if (err instanceof KubeApiError && err.retryAfterMs !== null) {
      delay = Math.max(delay, Math.min(err.retryAfterMs, this.backoff.maxMs));
    }
    const info = { output, attempt: this.attempt + 1, retryInMs: Math.round(delay), err: errInfo(err) };
    if (this.attempt === 0) this.log.warn(info, 'kubernetes write failed; retrying with backoff');
    else this.log.debug(info, 'kubernetes write failed again');
    this.attempt++;
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.kick();
    }, delay);
  }

  private armHeartbeat(): void {
    if (this.stopped || this.heartbeatTimer !== null) return;
    const due: number[] = [];
    if (this.out.annotation && this.written.annKey !== null) due.push(this.written.annAt + this.out.heartbeatMs);
    if (this.out.condition && this.written.condKey !== null) due.push(this.written.condAt + this.out.heartbeatMs);
    if (due.length === 0) return;
    const delay = Math.max(0, Math.min(...due) - this.now());
    this.heartbeatTimer = this.timers.setTimeout(() => {
      this.heartbeatTimer = null;
      this.kick();
    }, delay);
  }
}

/** Registry states from the annotation a previous run left, so a restart keeps `since`. */
function seedFromNode(node: KubeNode | null): Record<string, RegistryState> {
  const raw = node?.metadata.annotations?.[ANNOTATION_KEY];
  if (!raw) return {};
  try {
    const parsed = JSON.parse(raw) as { registries?: Record<string, Partial<RegistryState> | null> };
    const out: Record<string, RegistryState> = {};
    for (const [name, r] of Object.entries(parsed.registries ?? {})) {
      if (typeof r?.ok !== 'boolean' || typeof r.since !== 'string') continue;
      out[name] = { ok: r.ok, stage: r.stage ?? null, reason: r.reason ?? null, cause: r.cause ?? null, since: r.since };
    }
    return out;
  } catch {
    return {};
  }
}

/** The message of anything thrown, even an object whose getters throw. */
function safeMessage(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unprintable error';
  }
}

function errInfo(err: unknown): { code?: string; status?: number; message: string } {
  const e = err as { code?: unknown; status?: unknown; message?: unknown } | null;
  const info: { code?: string; status?: number; message: string } = {
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
  if (typeof e?.code === 'string') info.code = e.code;
  if (typeof e?.status === 'number') info.status = e.status;
  return info;
}
