/**
 * The human status page served at `/`: plain server-rendered HTML, no
 * scripts, no external assets, refreshing itself. A banner says at a glance
 * whether this node can pull; failing registries come first, each with its
 * fix once; every target shows its stages as chips; recent changes say what
 * a target changed from and to. Pure: snapshot in, HTML out. Every piece of
 * text goes through esc().
 */
import { STAGES, type Stage } from '../diagnosis/catalog.js';
import type { ProbeResult } from '../model/types.js';
import { buildPageModel, problemOf, type PageModel, type RegistryView, type TargetState, type TargetView } from './status-page-model.js';
import { STATUS_PAGE_STYLE } from './status-page-style.js';
import type { StatusSnapshot, TargetStatus, Verdict, VerdictChange } from './status-store.js';

export interface StatusPageOptions {
  /** Seconds between automatic reloads; default 10. */
  refreshSeconds?: number;
  /** Registries found on this node's pods (pod discovery), shown apart from the configured targets. */
  discovered?: readonly string[];
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * HTML-escape text (also for attribute values). Control characters a
 * registry may send (ESC of terminal colours, NUL, C1 codes) and bidi
 * overrides that could make text read backwards are shown as visible
 * symbols, never passed through.
 */
export function esc(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/\u001b\[[0-9;]*m/g, '') // terminal colours mean nothing here
      .replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, controlPicture)
  );
}

function controlPicture(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x20) return String.fromCharCode(0x2400 + code);
  if (code === 0x7f) return '\u2421';
  return '\ufffd';
}

const STATE_MARK: Record<TargetState, string> = { failing: '✗', degraded: '!', pending: '…', ok: '✓' };

export function renderStatusPage(snap: StatusSnapshot, opts: StatusPageOptions = {}): string {
  const refresh = opts.refreshSeconds ?? 10;
  const model = buildPageModel(snap);
  const stages = shownStages(snap.targets);
  const failing = model.counts.failing;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta http-equiv="refresh" content="${refresh}">
<title>${failing ? `✗ ${failing} failing` : model.total ? '✓ all ok' : 'no targets'} · pullprobe${snap.node ? ` · ${esc(snap.node.node)}` : ''}</title>
<style>${STATUS_PAGE_STYLE}</style>
</head>
<body>
<main>
${banner(snap, model, refresh)}
${nodeFileProblems(snap.targets)}${registries(model, stages, snap.generatedAt)}${discoveredList(opts.discovered ?? [])}
${changes(snap.recentChanges ?? [], snap.generatedAt)}
</main>
</body>
</html>
`;
}

function banner(snap: StatusSnapshot, m: PageModel, refresh: number): string {
  const now = snap.generatedAt;
  const failingRegs = m.registries.filter((r) => r.state === 'failing').length;
  let state: string;
  let headline: string;
  let since = '';
  if (m.total === 0) {
    state = 'none';
    headline = 'No targets configured';
  } else if (m.counts.failing > 0) {
    state = 'failing';
    headline = `✗ ${plural(failingRegs, 'registry', 'registries')} failing from this node`;
    if (m.failingSince !== null) since = `failing since ${when(m.failingSince, now)}`;
  } else if (m.counts.pending === m.total) {
    state = 'none';
    headline = 'Waiting for the first probes';
  } else {
    state = m.counts.degraded > 0 ? 'degraded' : 'ok';
    headline = m.counts.degraded > 0 ? '✓ All registries reachable, some degraded' : '✓ All registries reachable';
    if (m.okSince !== null) since = `ok since ${when(m.okSince, now)}`;
  }
  const pills = (['failing', 'degraded', 'pending', 'ok'] as const)
    .filter((s) => m.total > 0 && (m.counts[s] > 0 || s === 'ok' || s === 'failing'))
    .map((s) => `<span class="pill${m.counts[s] > 0 ? ` ${s}` : ''}">${m.counts[s]} ${s}</span>`)
    .join('');
  const node = snap.node;
  const where = [
    ['node', node?.node ?? 'unknown'],
    ['subnet', node?.subnet ?? 'unknown'],
    ['zone', node?.zone ?? 'unknown'],
  ]
    .map(([k, v]) => `<div><dt>${k}</dt><dd>${esc(v ?? '')}</dd></div>`)
    .join('');
  const meta = [
    since,
    `${m.total} ${m.total === 1 ? 'target' : 'targets'}`,
    `updated ${when(now, now, true)}`,
    `refreshes every ${refresh}s`,
    '<a href="/metrics">metrics</a>',
  ]
    .filter(Boolean)
    .join(' · ');
  return `<header class="banner ${state}" id="summary">
<p class="headline">${esc(headline)}</p>
${pills ? `<div class="counts">${pills}</div>` : ''}
<dl class="where">${where}</dl>
<div class="meta">${meta}</div>
</header>`;
}

/** Problems reading the node's files (resolv.conf, hosts, CA, docker config), from the latest results' DNS steps. */
export function nodeFileProblemsOf(targets: TargetStatus[]): string[] {
  const seen = new Set<string>();
  for (const t of targets) {
    for (const step of t.result?.steps ?? []) {
      if (step.stage !== 'dns') continue;
      const detail: unknown = step.detail;
      const problems = detail && typeof detail === 'object' ? (detail as { problems?: unknown }).problems : undefined;
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
  return `<section class="files" id="node-file-problems"><p>Problems reading this node's files:</p><ul>${items}</ul></section>\n`;
}

function shownStages(targets: TargetStatus[]): Stage[] {
  const seen = new Set<Stage>();
  for (const t of targets) for (const s of t.result?.steps ?? []) seen.add(s.stage);
  return STAGES.filter((s) => s !== 'runtime' || seen.has(s));
}

function registries(m: PageModel, stages: Stage[], now: number): string {
  if (m.total === 0) {
    return '<h2>Registries</h2>\n<p class="empty">No targets configured: list registries or images under <code>targets</code> in the agent configuration.</p>';
  }
  // With many targets, healthy registries fold to one line each (a native
  // <details>, no script) so the failures stay in view.
  const foldOk = m.total > FOLD_OK_ABOVE;
  return `<h2>Registries</h2>\n${m.registries.map((r) => registry(r, stages, now, foldOk)).join('\n')}`;
}

function discoveredList(regs: readonly string[]): string {
  if (regs.length === 0) return '';
  return `\n<h2>Discovered from this node's pods</h2>\n<p class="muted">Not configured: registries of images that pods on this node use, probed anonymously like the configured targets (results above).</p>\n<ul class="discovered">${regs.map((r) => `<li><code>${esc(r)}</code></li>`).join('')}</ul>`;
}

/** Targets on the page above which healthy registries are folded. */
const FOLD_OK_ABOVE = 30;

function registry(r: RegistryView, stages: Stage[], now: number, foldOk: boolean): string {
  const n = r.targets.length;
  const tally =
    r.counts.failing > 0
      ? `${r.counts.failing} of ${plural(n, 'target', 'targets')} failing`
      : r.counts.degraded > 0
        ? `${r.counts.degraded} of ${plural(n, 'target', 'targets')} degraded`
        : plural(n, 'target', 'targets');
  const problems = r.problems
    .map((p) => {
      const hosts = p.hosts.length ? ` <span class="muted">at <code>${p.hosts.map(esc).join('</code>, <code>')}</code></span>` : '';
      const count = r.counts.failing > 1 ? ` <span class="muted">(${plural(p.targets, 'target', 'targets')})</span>` : '';
      const fix = p.hint ? `\n<p class="fix"><b>Fix</b>${esc(p.hint)}</p>` : '';
      return `<div class="problem"><p class="what"><span class="why">${esc(p.message ?? p.reason)}</span> <code class="muted">${esc(`${p.stage}/${p.reason}`)}</code>${hosts}${count}</p>${fix}</div>`;
    })
    .join('\n');
  const rows = r.targets.map((t) => targetRow(r, t, stages, now)).join('\n');
  const head = `<span class="pill ${r.state}">${STATE_MARK[r.state]} ${r.state}</span><h3><code>${esc(r.registry)}</code></h3><span class="tally">${esc(tally)}</span>`;
  const body = `${problems ? `${problems}\n` : ''}<ul class="targets">\n${rows}\n</ul>`;
  const attrs = `class="reg ${r.state}" data-registry="${esc(r.registry)}"`;
  if (r.state === 'ok') return `<details ${attrs}${foldOk ? '' : ' open'}>\n<summary class="head">${head}</summary>\n${body}\n</details>`;
  return `<section ${attrs}>\n<header class="head">${head}</header>\n${body}\n</section>`;
}

function targetRow(r: RegistryView, view: TargetView, stages: Stage[], now: number): string {
  const t = view.status;
  const res = t.result;
  const name = `<div class="name"><span class="mark" aria-label="${view.state}">${STATE_MARK[view.state]}</span><code>${esc(t.target)}</code></div>`;
  if (!res) {
    return `<li class="t pending" data-state="pending">${name}<div class="chips"><span class="chip">waiting for the first probe</span></div><div class="when"></div></li>`;
  }
  const chips = `<div class="chips">${stages.map((s) => stageChip(res, s)).join('')}</div>`;
  const whenCell = `<div class="when">${view.state === 'failing' ? 'failing' : view.state} ${when(t.since, now)}</div>`;
  let sub = '';
  if (!res.ok && res.reason) {
    // The problem and its fix are shown once for the registry; a row only
    // says what differs: which problem (when there are several), its own
    // message, its own endpoint.
    const p = problemOf(r, t);
    const which = r.problems.length > 1 ? `<span class="why">${esc(`${res.stage ?? ''}/${res.reason}`)}</span>` : '';
    const own = res.message && res.message !== p?.message ? esc(res.message) : '';
    const host = res.host && (p?.hosts.length ?? 0) > 1 ? `at <code>${esc(res.host)}</code>` : '';
    const parts = [which, own, host].filter(Boolean);
    if (parts.length) sub = `<div class="sub">${parts.join(' · ')}</div>`;
  } else if (res.degraded) {
    const parts = res.steps.filter((s) => s.degraded).map((s) => `${s.stage}${s.message ? `: ${s.message}` : ''}`);
    sub = `<div class="sub">degraded: ${esc(parts.join('; ') || 'part of the path is broken')}</div>`;
  }
  return `<li class="t ${view.state}" data-state="${view.state}">${name}${chips}${whenCell}${sub}</li>`;
}

function stageChip(r: ProbeResult, stage: Stage): string {
  const steps = r.steps.filter((s) => s.stage === stage);
  if (steps.length === 0) return `<span class="chip" title="${stage}: not reached">${stage} ·</span>`;
  const seconds = steps.reduce((a, s) => a + s.seconds, 0);
  const failed = steps.some((s) => !s.ok);
  const degraded = steps.some((s) => s.degraded);
  const [cls, mark, word] = failed ? ['failing', '✗', 'failed'] : degraded ? ['degraded', '!', 'degraded'] : ['ok', '✓', 'ok'];
  const detail =
    steps.length > 1
      ? ` (${steps.map((s) => `${s.host ?? stage} ${s.ok ? (s.degraded ? '!' : '✓') : '✗'} ${s.seconds.toFixed(3)}s`).join(', ')})`
      : steps[0]?.host
        ? ` at ${steps[0].host}`
        : '';
  const title = `${stage}: ${word} in ${seconds.toFixed(3)}s${detail}`;
  return `<span class="chip ${cls}" title="${esc(title)}">${stage} ${mark}</span>`;
}

function changes(list: VerdictChange[], now: number): string {
  if (list.length === 0) return '<h2>Recent changes</h2>\n<p class="empty">No changes since the agent started.</p>';
  const items = list
    .map((c) => {
      const lasted = c.fromSince !== null && c.from ? ` <span class="muted">after ${esc(duration(c.at - c.fromSince))}</span>` : '';
      return (
        `<li><span class="muted">${when(c.at, now)}</span><span class="what"><code>${esc(c.target)}</code> ` +
        `${verdict(c.from)} <span class="arrow">→</span> ${verdict(c.to)}${lasted}</span></li>`
      );
    })
    .join('\n');
  return `<h2>Recent changes</h2>\n<ol class="changes" id="changes">\n${items}\n</ol>`;
}

function verdict(v: Verdict | null): string {
  if (!v) return '<span class="v none">first probe</span>';
  switch (v.state) {
    case 'ok':
      return v.degraded ? '<span class="v degraded">! ok, degraded</span>' : '<span class="v ok">✓ ok</span>';
    case 'removed':
      return '<span class="v none">removed from the configuration</span>';
    default:
      return `<span class="v failing" title="${esc(v.message ?? '')}">✗ ${esc(`${v.stage}/${v.reason}`)}</span>`;
  }
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `<time>` reading "3m ago" with the exact time in its title; `absolute` reads the time itself. */
function when(ms: number | null, now: number, absolute = false): string {
  if (ms === null) return '';
  const stamp = esc(iso(ms));
  return `<time datetime="${stamp}" title="${stamp}">${absolute ? stamp : esc(ago(now - ms))}</time>`;
}

export function ago(ms: number): string {
  return `${duration(ms)} ago`;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}
