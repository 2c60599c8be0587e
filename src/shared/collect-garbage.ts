/**
 * Ask V8 for a full collection now. Used after reading a large image index
 * (up to 4 MiB of JSON and its parse tree, garbage once summarised): V8 lets
 * such garbage pile up in old space until its own heuristics fire, so a CLI
 * run of many targets with fresh indexes would otherwise grow well past what
 * one index needs. The `gc` function is taken once through the documented
 * `--expose-gc` flag; where that is refused, this does nothing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const fn: unknown = runInNewContext('gc');
      gc = typeof fn === 'function' ? (fn as () => void) : null;
    } catch {
      gc = null;
    }
  }
  gc?.();
}
