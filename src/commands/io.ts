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

/**
 * Whether stdout is a terminal. @types/node types `process.stdout` as a tty.WriteStream whose
 * `isTTY` is always a boolean, but a pipe or a file has no `isTTY` at all: hence the wider type.
 */
export function stdoutIsTTY(stdout: { isTTY?: boolean } = process.stdout): boolean {
  return stdout.isTTY === true;
}
