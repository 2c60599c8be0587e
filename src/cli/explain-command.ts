import { parseArgs } from 'node:util';
import { explainMessage } from '../probe/explain.js';
import { causeText } from './format-human.js';
import { UsageError, type Io } from './io.js';

export function runExplainCommand(argv: string[], io: Io): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { json: { type: 'boolean', default: false } },
  });
  if (positionals.length === 0) throw new UsageError('explain: no MESSAGE given (quote the whole error text)', true);
  const e = explainMessage(positionals.join(' '));
  if (values.json) {
    io.stdout(JSON.stringify({ stage: e.stage, reason: e.reason, cause: e.cause, message: e.message, hint: e.hint }) + '\n');
  } else if (e.reason === null) {
    io.stdout('No known image-pull failure recognised in that message.\nRun `pullprobe probe IMAGE` on the affected node to walk the pull path.\n');
  } else {
    io.stdout(`Reason: ${e.stage}/${e.reason}\nCause:  ${e.cause ? causeText(e.cause) : ''}\nError:  ${e.message ?? ''}\nFix:    ${e.hint ?? ''}\n`);
  }
  return e.reason === null ? 1 : 0;
}
