import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.js';
import { UsageError, type Io } from './io.js';

/** What the SIGHUP handler needs of the agent. */
export interface Reloadable {
  reload(): Promise<unknown>;
  readonly log: { error(obj: object, msg?: string): void };
}

/**
 * The SIGHUP handler: reloads, and a reload that fails in any way (throws or
 * rejects) is logged, never left as an unhandled rejection that would end the
 * process.
 */
export function reloadOnSignal(agent: Reloadable): () => void {
  const failed = (err: unknown): void => {
    let text: string;
    try {
      text = err instanceof Error ? err.message : String(err);
    } catch {
      text = 'unprintable error';
    }
    try {
      agent.log.error({ err: text }, 'config reload failed; keeping the previous config');
    } catch {
      // nothing left to report to
    }
  };
  return () => {
    try {
      agent.reload().catch(failed);
    } catch (err) {
      failed(err);
    }
  };
}

/** `pullprobe agent --config FILE`: runs until SIGTERM/SIGINT; SIGHUP reloads. */
export async function runAgentCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, strict: true, options: { config: { type: 'string' } } });
  if (!values.config) throw new UsageError('agent: --config FILE is required', true);
  const started = await Agent.start({ configPath: values.config });
  if (!started.ok) {
    for (const e of started.errors) io.stderr(`pullprobe: ${e}\n`);
    return 2;
  }
  const agent = started.agent;
  return new Promise<number>((resolve) => {
    const onStop = (): void => {
      agent.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
    process.on('SIGHUP', reloadOnSignal(agent));
  });
}
