/** Deadline helpers: every wait in a probe goes through an AbortSignal. */
import type { ProbeContext } from '../model/types.js';
import { realTimers, unrefTimers, type Timers } from '../shared/timers.js';
import { DeadlineError } from '../shared/errors.js';

/**
 * Whole milliseconds left before the overall probe deadline (never negative).
 * An integer, because undici rejects fractional timeouts.
 */
export function remainingMs(ctx: ProbeContext): number {
  return Math.max(0, Math.floor(ctx.deadlineAt - ctx.clock.now()));
}

export interface StageTimer {
  signal: AbortSignal;
  /** True when the stage's own timeout (or the probe deadline) fired. */
  timedOut(): boolean;
  dispose(): void;
}

/**
 * A signal that aborts after `ms` or at the probe deadline, whichever is
 * first. Always call dispose() so no timer outlives the stage. The timer
 * comes from `ctx.timers` (real, unref'd timers by default).
 */
export function stageTimer(ctx: ProbeContext, ms: number): StageTimer {
  const controller = new AbortController();
  const deadline = stageDeadline(ctx, ms, () => controller.abort(new DeadlineError()));
  // At once, not in stageDeadline's microtask: callers look at signal.aborted right away.
  if (ctx.signal.aborted) controller.abort(new DeadlineError());
  return { signal: controller.signal, timedOut: () => controller.signal.aborted, dispose: deadline.dispose };
}

/**
 * stageTimer for a stage that needs no AbortSignal, only a callback (TCP connect, TLS handshake):
 * `onFire` runs once after `ms` or at the probe deadline, whichever is first (never inside this
 * call: a probe already aborted fires it in a microtask; callers check ctx.signal first to skip
 * the work). Cheaper: no AbortController, no signal of its own.
 */
export function stageDeadline(ctx: ProbeContext, ms: number, onFire: () => void): Omit<StageTimer, 'signal'> {
  const wait = Math.max(0, Math.min(ms, remainingMs(ctx)));
  let fired = false;
  let disposed = false;
  const fire = (): void => {
    if (fired || disposed) return;
    fired = true;
    onFire();
  };
  const timers = ctx.timers ?? unrefTimers;
  const timer = timers.setTimeout(fire, wait);
  const dispose = (): void => {
    disposed = true;
    timers.clearTimeout(timer);
    ctx.signal.removeEventListener('abort', fire);
  };
  if (ctx.signal.aborted) queueMicrotask(fire);
  else ctx.signal.addEventListener('abort', fire, { once: true });
  return { timedOut: () => fired, dispose };
}

export { DeadlineError };

/** Resolve after ms, or reject when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal, timers: Timers = realTimers): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the AbortSignal contract (as in node:timers/promises): reject with what abort() was given
      reject(signal.reason);
      return;
    }
    const t = timers.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      timers.clearTimeout(t);
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- as above: the signal's own reason
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
