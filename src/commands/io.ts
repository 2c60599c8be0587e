/** What a CLI command may touch, injected so tests drive commands in-process. */
export interface Io {
  stdout(s: string): void;
  stderr(s: string): void;
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
}

export { UsageError } from '../shared/errors.js';

/** Colour only on a TTY, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(io: Io): boolean {
  const noColor = io.env['NO_COLOR'];
  return io.isTTY && (noColor === undefined || noColor === '');
}
