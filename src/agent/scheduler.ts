/**
 * Runs every target on its own interval, spread across the fleet: a target's
 * first slot is `start + offset(node, target)` with the offset a hash of node
 * name and target in [0, jitter × interval), so nodes do not hit a registry in
 * lockstep. Later slots are `previous slot + interval` — computed from the
 * slot, not from when the timer fired, so there is no drift — with no further
 * per-run jitter (the per-node phase is the spread).
 *
 * A slot that arrives while the target is still running or waiting for a
 * concurrency slot is skipped, never queued, so an overrunning target costs
 * at most one run per interval and cannot pile up. At most `concurrency` runs
 * are in flight; each target has its own timer, so a hung target only holds
 * its own slot. Errors thrown by `run` are logged, never left unhandled.
 *
 * Start-up: `start()` only arms one timer per target (no probe runs inside
 * it), so the first cycle is spread over each target's jitter window and the
 * agent is ready — serving, every first probe scheduled (`scheduled`) — at
 * once, not when the first cycle has finished (200 targets of a 60 s interval
 * with jitter 0.1: first probes spread over 6 s, ready in milliseconds).
 */
import { realClock, silentLog, type Clock, type Log } from '../model/types.js';
import { realTimers, type Timers } from '../shared/timers.js';
import type { TargetConfig } from './config.js';
import { RunAbortedError } from '../shared/errors.js';

export type { Timers } from '../shared/timers.js';

export interface SchedulerOptions {
  targets: readonly TargetConfig[];
  concurrency: number;
  node: string;
  run: (target: TargetConfig, signal: AbortSignal) => Promise<void>;
  clock?: Clock;
  timers?: Timers;
  log?: Log;
  /** A run still going this long past its target's timeout has its signal aborted (default 5000). */
  overrunGraceMs?: number;
}

export interface TargetStats {
  target: string;
  runs: number;
  /** Slots skipped because the previous run was still going (or the process stalled). */
  skipped: number;
  failures: number;
  lastStart: number | null;
  nextDue: number | null;
  inFlight: boolean;
  queued: boolean;
}

export { RunAbortedError };

const MAX_TIMER_MS = 2 ** 31 - 1;

/** 32-bit FNV-1a with a murmur3 finaliser, mapped to [0, 1). */
function hash01(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** The node's phase for a target: deterministic, in [0, jitter × interval). */
export function jitterOffsetMs(node: string, target: TargetConfig): number {
  const windowMs = Math.max(0, target.jitter * target.intervalMs);
  return Math.floor(hash01(`${node}\u0000${target.target}`) * windowMs);
}

interface Entry {
  target: TargetConfig;
  createdAt: number;
  due: number;
  timer: unknown;
  state: 'idle' | 'queued' | 'running';
  removed: boolean;
  runs: number;
  skipped: number;
  failures: number;
  lastStart: number | null;
  controller: AbortController | null;
  watchdog: unknown;
}

export class Scheduler {
  readonly #opts: SchedulerOptions;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #log: Log;
  readonly #concurrency: number;
  #entries = new Map<string, Entry>();
  readonly #queue: Entry[] = [];
  readonly #running = new Set<Entry>();
  #started = false;
  #stopped = false;
  #onSettle: (() => void) | null = null;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.#timers = opts.timers ?? realTimers;
    this.#log = opts.log ?? silentLog;
    this.#concurrency = Math.max(1, Math.floor(opts.concurrency));
    this.updateTargets(opts.targets);
  }

  /**
   * True once `start()` has given every target its first slot (and until
   * `stop()`): the agent's readiness, which does not wait for any probe.
   */
  get scheduled(): boolean {
    return this.#started && !this.#stopped;
  }

  /** Give every target its first slot: now + its node offset in the jitter window. Runs nothing itself. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    const now = this.#clock.now();
    for (const e of this.#entries.values()) {
      e.createdAt = now;
      e.due = now + jitterOffsetMs(this.#opts.node, e.target);
      this.#arm(e);
    }
  }

  /** Swap the target list (config reload). Unchanged targets keep their phase and counters. */
  updateTargets(targets: readonly TargetConfig[]): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    const next = new Map<string, Entry>();
    for (const t of targets) {
      if (next.has(t.target)) {
        this.#log.warn({ target: t.target }, 'duplicate target ignored');
        continue;
      }
      // A target removed earlier whose run is still in flight is revived, not duplicated.
      const e = this.#entries.get(t.target) ?? [...this.#running].find((r) => r.target.target === t.target);
      if (e) {
        const old = e.target;
        e.target = t;
        if (e.removed) {
          e.removed = false;
          if (this.#started) {
            e.due = now + jitterOffsetMs(this.#opts.node, t);
            this.#arm(e);
          }
        } else if (this.#started && (old.intervalMs !== t.intervalMs || old.jitter !== t.jitter)) {
          this.#disarm(e);
          const fresh = e.runs === 0 && e.skipped === 0;
          e.due = fresh ? e.createdAt + jitterOffsetMs(this.#opts.node, t) : e.due - old.intervalMs + t.intervalMs;
          this.#arm(e);
        }
        next.set(t.target, e);
        continue;
      }
      const entry: Entry = {
        target: t,
        createdAt: now,
        due: now,
        timer: null,
        state: 'idle',
        removed: false,
        runs: 0,
        skipped: 0,
        failures: 0,
        lastStart: null,
        controller: null,
        watchdog: null,
      };
      next.set(t.target, entry);
      if (this.#started) {
        entry.due = now + jitterOffsetMs(this.#opts.node, t);
        this.#arm(entry);
      }
    }
    for (const [key, e] of this.#entries) {
      if (next.has(key)) continue;
      // A removed target's run in flight is left to finish; it is not rescheduled.
      e.removed = true;
      this.#disarm(e);
      this.#dequeue(e);
    }
    this.#entries = next;
  }

  /**
   * Stop scheduling, wait up to graceMs for runs in flight, then abort their
   * signals. Resolves with how many finished within the grace and how many
   * were aborted (those may still be unwinding).
   */
  stop(graceMs: number): Promise<{ finished: number; aborted: number }> {
    this.#stopped = true;
    for (const e of this.#entries.values()) {
      this.#disarm(e);
      this.#dequeue(e);
    }
    const inFlight = this.#running.size;
    if (inFlight === 0) return Promise.resolve({ finished: 0, aborted: 0 });
    const abortRest = (): { finished: number; aborted: number } => {
      this.#onSettle = null;
      const still = [...this.#running];
      for (const e of still) {
        this.#clearWatchdog(e);
        e.controller?.abort(new RunAbortedError('stop'));
      }
      return { finished: inFlight - still.length, aborted: still.length };
    };
    if (graceMs <= 0) return Promise.resolve(abortRest());
    return new Promise((resolve) => {
      const grace = this.#timers.setTimeout(() => resolve(abortRest()), graceMs);
      this.#onSettle = () => {
        if (this.#running.size > 0) return;
        this.#onSettle = null;
        this.#timers.clearTimeout(grace);
        resolve({ finished: inFlight, aborted: 0 });
      };
    });
  }

  stats(): TargetStats[] {
    return [...this.#entries.values()].map((e) => ({
      target: e.target.target,
      runs: e.runs,
      skipped: e.skipped,
      failures: e.failures,
      lastStart: e.lastStart,
      nextDue: e.timer !== null ? e.due : null,
      inFlight: e.state === 'running',
      queued: e.state === 'queued',
    }));
  }

  /** Sizes of the internal structures (tests assert they stay flat over many cycles). */
  sizes(): { entries: number; queue: number; running: number; timers: number } {
    let timers = 0;
    for (const e of this.#running) if (e.watchdog !== null) timers++;
    for (const e of this.#entries.values()) if (e.timer !== null) timers++;
    return { entries: this.#entries.size, queue: this.#queue.length, running: this.#running.size, timers };
  }

  #arm(e: Entry): void {
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, e.due - this.#clock.now()));
    e.timer = this.#timers.setTimeout(() => this.#onDue(e), wait);
  }

  #disarm(e: Entry): void {
    if (e.timer !== null) this.#timers.clearTimeout(e.timer);
    e.timer = null;
  }

  #dequeue(e: Entry): void {
    if (e.state !== 'queued') return;
    const i = this.#queue.indexOf(e);
    if (i !== -1) this.#queue.splice(i, 1);
    e.state = 'idle';
  }

  #onDue(e: Entry): void {
    e.timer = null;
    if (this.#stopped || e.removed) return;
    const now = this.#clock.now();
    if (e.due - now > 1) {
      this.#arm(e); // woke early (timer clamp)
      return;
    }
    const interval = e.target.intervalMs;
    if (now - e.due >= interval) {
      // The process stalled past whole slots: run once now, skip the rest.
      const missed = Math.floor((now - e.due) / interval);
      e.due += missed * interval;
      e.skipped += missed;
    }
    if (e.state === 'idle') {
      e.state = 'queued';
      this.#queue.push(e);
    } else {
      e.skipped++;
      this.#log.debug({ target: e.target.target, state: e.state }, 'slot skipped: previous run still going');
    }
    e.due += interval;
    this.#arm(e);
    this.#pump();
  }

  #pump(): void {
    while (!this.#stopped && this.#running.size < this.#concurrency) {
      const e = this.#queue.shift();
      if (!e) return;
      this.#launch(e);
    }
  }

  #launch(e: Entry): void {
    const target = e.target;
    const controller = new AbortController();
    e.state = 'running';
    e.runs++;
    e.lastStart = this.#clock.now();
    e.controller = controller;
    this.#running.add(e);
    const overrunMs = target.timeoutMs + (this.#opts.overrunGraceMs ?? 5_000);
    e.watchdog = this.#timers.setTimeout(() => {
      e.watchdog = null;
      this.#log.warn({ target: target.target, ms: overrunMs }, 'run overran its timeout; aborting it');
      controller.abort(new RunAbortedError('overrun'));
    }, overrunMs);
    // An async wrapper: a run that throws before returning its promise rejects it like any other failure.
    const p = (async () => {
      await this.#opts.run(target, controller.signal);
    })();
    // The entry is settled whatever happens (even a logger that throws), or its
    // target would never run again; nothing is left as an unhandled rejection.
    p.then(undefined, (err: unknown) => {
      e.failures++;
      this.#logError({ target: target.target, err: errorText(err) }, 'probe run failed');
    })
      .then(() => this.#settle(e))
      .catch((err: unknown) => this.#logError({ err: errorText(err) }, 'scheduler internal error'));
  }

  #logError(obj: object, msg: string): void {
    try {
      this.#log.error(obj, msg);
    } catch {
      // a logger that throws has nowhere left to report to
    }
  }

  #settle(e: Entry): void {
    this.#clearWatchdog(e);
    this.#running.delete(e);
    e.controller = null;
    e.state = 'idle';
    this.#onSettle?.();
    this.#pump();
  }

  #clearWatchdog(e: Entry): void {
    if (e.watchdog !== null) this.#timers.clearTimeout(e.watchdog);
    e.watchdog = null;
  }
}

function errorText(err: unknown): string {
  try {
    if (err instanceof Error) return `${err.name}: ${err.message}`;
    return String(err);
  } catch {
    return 'unprintable error';
  }
}
