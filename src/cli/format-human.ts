/**
 * Human output that reads like the seed's diagnostic sequence: one line per
 * stage with ✓/✗, seconds and the host involved; then, for a failure, the
 * seed's message, the cause and the fix.
 */
import { STAGES, type Cause } from '../probe/catalog.js';
import type { ProbeResult, StepResult } from '../probe/types.js';

export interface FormatOptions {
  color: boolean;
}

const CAUSE_TEXT: Record<Cause, string> = {
  name: 'wrong image name or tag',
  missing: 'image does not exist in the registry',
  credentials: 'missing or wrong registry credentials',
  network: 'registry unreachable from this node',
  registry: 'registry answered but is unhealthy or limiting',
  node: 'a problem on the node itself (container runtime, disk or pull policy)',
  internal: 'pullprobe itself failed (a bug; the registry was not judged)',
};

export function causeText(cause: Cause): string {
  return CAUSE_TEXT[cause];
}

function paint(opts: FormatOptions, code: number, s: string): string {
  return opts.color ? `\u001b[${code}m${s}\u001b[0m` : s;
}

function seconds(s: number): string {
  return `${s.toFixed(3)}s`;
}

function summary(step: StepResult): string {
  const d = (step.detail ?? {}) as Record<string, unknown>;
  switch (step.stage) {
    case 'reference':
      return String(d['image'] ?? d['registry'] ?? '');
    case 'dns': {
      const addrs = Array.isArray(d['addresses']) ? (d['addresses'] as unknown[]).map(String) : [];
      const ns = Array.isArray(d['nameservers']) ? (d['nameservers'] as unknown[]).length : 0;
      const src = d['source'] === 'hosts' ? ' (hosts file)' : d['source'] === 'literal' ? ' (IP literal)' : ns ? ` (${ns} nameserver${ns === 1 ? '' : 's'})` : '';
      return `${step.host ?? ''}${addrs.length ? ' → ' + addrs.join(', ') : ''}${src}`;
    }
    case 'tcp': {
      const list = Array.isArray(d['addresses']) ? (d['addresses'] as Array<Record<string, unknown>>) : [];
      const good = list.filter((a) => a['ok']).length;
      return `${step.host ?? ''}${list.length > 1 ? ` (${good}/${list.length} addresses connect)` : ''}`;
    }
    case 'tls': {
      const proto = d['protocol'] ? ` ${String(d['protocol'])}` : '';
      const exp = d['earliestExpiry'] ? `, expires ${String(d['earliestExpiry']).slice(0, 10)}` : '';
      return `${step.host ?? ''}${proto}${exp}`;
    }
    case 'http':
      return `${step.host ?? ''} GET /v2/ → ${d['status'] ?? '?'}`;
    case 'auth': {
      const scheme = d['scheme'] ? String(d['scheme']) : '';
      const cached = d['tokenCached'] ? ' (cached token)' : '';
      return `${step.host ?? ''}${scheme ? ` ${scheme}` : ''}${cached}`;
    }
    case 'manifest': {
      const digest = d['digest'] ? ` ${String(d['digest']).slice(0, 19)}…` : '';
      const mt = d['mediaType'] ? ` ${String(d['mediaType']).replace(/^application\//, '')}` : '';
      return `${step.host ?? ''}${digest}${mt}`;
    }
    default:
      return step.host ?? '';
  }
}

export function formatResult(r: ProbeResult, opts: FormatOptions): string {
  const lines: string[] = [];
  const verdict = r.ok ? paint(opts, 32, r.degraded ? 'OK (degraded)' : 'OK') : paint(opts, 31, 'FAILED');
  lines.push(`${r.image ?? r.registry ?? r.target}  ${verdict}  ${seconds(r.seconds)}`);
  const reached = new Set(r.steps.map((s) => s.stage));
  for (const step of r.steps) {
    const mark = step.ok ? (step.degraded ? paint(opts, 33, '!') : paint(opts, 32, '✓')) : paint(opts, 31, '✗');
    const tail = step.ok ? '' : `  ${step.message ?? ''}`;
    lines.push(`  ${mark} ${step.stage.padEnd(9)} ${seconds(step.seconds).padStart(8)}  ${summary(step)}${tail}`);
  }
  if (!r.ok) {
    const last = STAGES.indexOf(r.stage ?? 'reference');
    const skipped = STAGES.filter((s, i) => i > last && s !== 'runtime' && !reached.has(s) && !(r.image === null && s === 'manifest'));
    for (const s of skipped) lines.push(`  ${paint(opts, 90, '·')} ${s.padEnd(9)} ${''.padStart(8)}  not reached`);
    lines.push('');
    lines.push(`  Error:  ${r.message ?? ''}${r.host ? `  (${r.host})` : ''}`);
    lines.push(`  Reason: ${r.stage}/${r.reason}`);
    if (r.cause) lines.push(`  Cause:  ${causeText(r.cause)}`);
    lines.push(`  Fix:    ${r.hint ?? ''}`);
  } else if (r.degraded) {
    const bad = r.steps.filter((s) => s.degraded).map((s) => s.stage).join(', ');
    lines.push('');
    lines.push(`  Note:   pull path works, but part of it is broken (${bad}); see --json for the per-server/per-address detail.`);
  }
  return lines.join('\n');
}

export function formatHuman(results: ProbeResult[], opts: FormatOptions): string {
  return results.map((r) => formatResult(r, opts)).join('\n\n') + '\n';
}
