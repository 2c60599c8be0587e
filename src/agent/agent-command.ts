import { parseArgs } from 'node:util';
import { Agent } from './agent.js';
import { UsageError, type Io } from '../cli/io.js';

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
      agent.stop().then(() => resolve(0), () => resolve(1));
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
    process.on('SIGHUP', () => void agent.reload());
  });
}
