/**
 * The human status page served at `/`: plain server-rendered HTML, no
 * scripts, refreshing itself. Pure: snapshot in, HTML out. Every piece of
 * text goes through esc().
 */
import { STAGES, type Stage } from '../diagnosis/catalog.js';
import type { ProbeResult } from '../model/types.js';
import type { FailureRecord, StatusSnapshot, TargetStatus } from './status-store.js';

export interface StatusPageOptions {
  /** Seconds between automatic reloads; default 10. */
  refreshSeconds?: number;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

const STYLE = `
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.ok{color:#17803d}.fail{color:#b3261e;font-weight:bold}.warn{color:#a86b00}.skip{color:#999}
.num{font-variant-numeric:tabular-nums;white-space:nowrap}
small{color:#666}
`;

export function renderStatusPage(snap: StatusSnapshot, opts: StatusPageOptions = {}): string {
  const refresh = opts.refreshSeconds ?? 10;
  const stages = shownStages(snap.targets);
  const failing = snap.targets.filter((t) => t.result && !t.result.ok).length;
  const probed = snap.targets.filter((t) => t.result).length;
  const node = snap.node;
  const nodeLine = node
    ? `node <b>${esc(node.node)}</b> · subnet ${esc(node.subnet ?? 'unknown')} · zone ${esc(node.zone ?? 'unknown')}`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${refresh}">
<title>pullprobe: ${failing ? `${failing} failing` : 'all ok'}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>pullprobe</h1>
<p>${nodeLine}<br><small>${probed}/${snap.targets.length} targets probed, ${failing} failing · generated ${esc(iso(snap.generatedAt))} · refreshes every ${refresh}s · <a href="/metrics">metrics</a></small></p>
${nodeFileProblems(snap.targets)}<h2>Targets</h2>
${targetsTable(snap, stages)}
<h2>Recent failures</h2>
${failuresTable(snap)}
</body>
</html>
`;
}

/** Problems reading the node's files (resolv.conf, hosts, CA, docker config), from the latest results' DNS steps. */
export function nodeFileProblemsOf(targets: TargetStatus[]): string[] {
  const seen = new Set<string>();
  for (const t of targets) {
    for (const step of t.result?.steps ?? []) {
      const problems = step.stage === 'dns' ? step.detail?.['problems'] : undefined;
      if (!Array.isArray(problems)) continue;
      for (const p of problems) if (typeof p === 'string') seen.add(p);
    }
  }
  return [...seen];
}

function nodeFileProblems(targets: TargetStatus[]): string {
  const problems = nodeFileProblemsOf(targets);
  if (problems.length === 0) return '';
  const items = problems.map((p) => `<li>${esc(p)}</li>`).join('');
  return `<p class="warn" id="node-file-problems">Problems reading this node's files:</p>\n<ul class="warn">${items}</ul>\n`;
}

function shownStages(targets: TargetStatus[]): Stage[] {
  const seen = new Set<Stage>();
  for (const t of targets) for (const s of t.result?.steps ?? []) seen.add(s.stage);
  return STAGES.filter((s) => s !== 'runtime' || seen.has(s));
}

function targetsTable(snap: StatusSnapshot, stages: Stage[]): string {
  if (snap.targets.length === 0) return '<p>No targets configured.</p>';
  const head = ['target', 'verdict', ...stages, 'reason', 'message', 'fix', 'since', 'last probe']
    .map((h) => `<th>${esc(h)}</th>`).join('');
  const rows = snap.targets.map((t) => targetRow(t, stages, snap.generatedAt)).join('\n');
  return `<table>\n<tr>${head}</tr>\n${rows}\n</table>`;
}

function targetRow(t: TargetStatus, stages: Stage[], now: number): string {
  const r = t.result;
  if (!r) {
    const blanks = stages.map(() => '<td class="skip">·</td>').join('');
    return `<tr><td>${esc(t.target)}</td><td class="skip">pending</td>${blanks}<td></td><td></td><td></td><td></td><td></td></tr>`;
  }
  const cells = stages.map((s) => stageCell(r, s)).join('');
  return `<tr><td>${esc(t.target)}</td>${verdictCell(r)}${cells}`
    + `<td>${r.reason ? esc(`${r.stage ?? ''}/${r.reason}`) : ''}</td>`
    + `<td>${esc(r.message ?? '')}${r.host ? ` <small>(${esc(r.host)})</small>` : ''}</td>`
    + `<td>${esc(r.hint ?? '')}</td>`
    + `<td class="num">${when(t.since, now)}</td>`
    + `<td class="num">${when(t.lastProbeAt, now)}</td></tr>`;
}

function verdictCell(r: ProbeResult): string {
  if (!r.ok) return '<td class="fail">✗ failing</td>';
  return r.degraded ? '<td class="warn">✓ degraded</td>' : '<td class="ok">✓ ok</td>';
}

function stageCell(r: ProbeResult, stage: Stage): string {
  const steps = r.steps.filter((s) => s.stage === stage);
  if (steps.length === 0) return '<td class="skip">·</td>';
  const seconds = steps.reduce((a, s) => a + s.seconds, 0);
  const failed = steps.some((s) => !s.ok);
  const degraded = steps.some((s) => s.degraded);
  const [cls, mark] = failed ? ['fail', '✗'] : degraded ? ['warn', '✓!'] : ['ok', '✓'];
  return `<td class="${cls} num">${mark} ${esc(seconds.toFixed(3))}s</td>`;
}

function failuresTable(snap: StatusSnapshot): string {
  if (snap.recentFailures.length === 0) return '<p>No failures recorded since start.</p>';
  const head = ['target', 'reason', 'message', 'fix', 'started', 'last seen', 'probes', 'cleared']
    .map((h) => `<th>${esc(h)}</th>`).join('');
  const rows = snap.recentFailures.map((f) => failureRow(f, snap.generatedAt)).join('\n');
  return `<table>\n<tr>${head}</tr>\n${rows}\n</table>`;
}

function failureRow(f: FailureRecord, now: number): string {
  const cleared = f.clearedAt === null ? '<td class="fail">ongoing</td>' : `<td class="num ok">${when(f.clearedAt, now)}</td>`;
  return `<tr><td>${esc(f.target)}</td><td>${esc(`${f.stage}/${f.reason}`)}</td>`
    + `<td>${esc(f.message ?? '')}${f.host ? ` <small>(${esc(f.host)})</small>` : ''}</td>`
    + `<td>${esc(f.hint ?? '')}</td><td class="num">${when(f.startedAt, now)}</td>`
    + `<td class="num">${when(f.lastSeenAt, now)}</td><td class="num">${f.count}</td>${cleared}</tr>`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "2024-05-01T10:00:00Z (3m ago)". */
function when(ms: number | null, now: number): string {
  if (ms === null) return '';
  return `${esc(iso(ms))} <small>(${esc(ago(now - ms))})</small>`;
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h ago`;
}
