/**
 * Human output that reads like the seed's diagnostic sequence: one line per
 * stage with ✓/✗, seconds and the host involved; then, for a failure, the
 * seed's message, the cause and the fix.
 */
import { STAGES, type Cause, type Stage } from '../diagnosis/catalog.js';
import type { ManifestDetail, ProbeResult, StepResult } from '../model/types.js';
import { escapeControl } from '../shared/visible-text.js';

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

/**
 * Registry-supplied text (tags, platforms, messages, hosts) made safe for a
 * terminal: C0/C1 control characters, DEL and bidi overrides are written as
 * visible `\u001b`-style escapes instead of reaching the terminal.
 */
export function visible(s: string): string {
  return escapeControl(s);
}

function paint(opts: FormatOptions, code: number, s: string): string {
  return opts.color ? `\u001b[${code}m${s}\u001b[0m` : s;
}

function seconds(s: number): string {
  return `${s.toFixed(3)}s`;
}

const MANIFEST_REQUEST = /^(HEAD|GET) \/v2\/.+\/manifests\//;

/** The manifest request's detail of an http step, when that step was the manifest request. */
function manifestRequestDetail(step: StepResult): ManifestDetail | undefined {
  if (step.stage !== 'http' || step.detail === undefined || !('request' in step.detail)) return undefined;
  if ('challenges' in step.detail) return undefined; // the http step's own request (it names the manifest HEAD too)
  const request = step.detail.request;
  return typeof request === 'string' && MANIFEST_REQUEST.test(request) ? step.detail : undefined;
}

/**
 * The stage a step is shown under. A manifest request that failed with an
 * http reason (5xx, timeout, a bad redirect) is filed under the reason's
 * stage in the JSON, but it was the manifest request: show it as such.
 */
export function shownStage(step: StepResult): Stage {
  return manifestRequestDetail(step) !== undefined ? 'manifest' : step.stage;
}

function manifestSummary(step: StepResult, d: ManifestDetail | undefined): string {
  if (d === undefined) return step.host ?? '';
  const digest = d.digest ? ` ${d.digest.slice(0, 19)}…` : '';
  const mt = d.mediaType ? ` ${d.mediaType.replace(/^application\//, '')}` : '';
  const request = !step.ok && typeof d.request === 'string' ? ` ${d.request}${d.status !== undefined ? ` → ${String(d.status)}` : ''}` : '';
  return `${step.host ?? ''}${request}${digest}${mt}`;
}

function summary(step: StepResult): string {
  const host = step.host ?? '';
  const asManifest = manifestRequestDetail(step);
  if (asManifest !== undefined) return manifestSummary(step, asManifest);
  switch (step.stage) {
    case 'reference': {
      const d = step.detail;
      return d === undefined ? '' : 'image' in d ? d.image : d.registry;
    }
    case 'dns': {
      const d = step.detail;
      if (d === undefined || !('nameservers' in d)) return host;
      const ns = d.nameservers.length;
      const src =
        d.source === 'hosts'
          ? ' (hosts file)'
          : d.source === 'literal'
            ? ' (IP literal)'
            : ns
              ? ` (${ns} nameserver${ns === 1 ? '' : 's'})`
              : '';
      return `${host}${d.addresses.length ? ' → ' + d.addresses.join(', ') : ''}${src}`;
    }
    case 'tcp': {
      const d = step.detail;
      const list = d !== undefined && 'connected' in d ? d.addresses : [];
      const good = list.filter((a) => a.ok).length;
      return `${host}${list.length > 1 ? ` (${good}/${list.length} addresses connect)` : ''}`;
    }
    case 'tls': {
      const d = step.detail;
      if (d !== undefined && 'plainHttp' in d) return `${host} plain HTTP (containerd falls back from HTTPS to HTTP for localhost)`;
      if (d === undefined || !('address' in d)) return host;
      const proto = d.protocol ? ` ${d.protocol}` : '';
      const exp = d.earliestExpiry ? `, expires ${d.earliestExpiry.slice(0, 10)}` : '';
      return `${host}${proto}${exp}`;
    }
    case 'http': {
      // The request this step was: the manifest HEAD for an image (as containerd), GET /v2/ for a registry.
      const d = step.detail;
      const request = d && 'request' in d && typeof d.request === 'string' ? d.request : 'GET /v2/';
      const status = d && 'status' in d ? String(d.status ?? '?') : '?';
      return `${host} ${request} → ${status}`;
    }
    case 'runtime': {
      const d = step.detail;
      if (d === undefined || !('endpoint' in d)) return host;
      const runtime = d.runtimeName ? ` ${d.runtimeName}${d.runtimeVersion ? ` ${d.runtimeVersion}` : ''}` : '';
      const pulled = step.ok && d.imageId ? ` pulled ${d.imageId.slice(0, 19)}…` : '';
      const classified = d.classified ? ` (${d.classified.stage}/${d.classified.reason})` : '';
      return `${d.endpoint}${runtime}${pulled}${classified}`;
    }
    case 'auth': {
      const d = step.detail;
      if (d === undefined || !('scheme' in d)) return host;
      const cached = d.tokenCached ? ' (cached token)' : '';
      return `${host} ${d.scheme}${cached}`;
    }
    case 'manifest':
      return manifestSummary(step, step.detail);
    default:
      return host;
  }
}

export function formatResult(r: ProbeResult, opts: FormatOptions): string {
  const lines: string[] = [];
  const verdict = r.ok ? paint(opts, 32, r.degraded ? 'OK (degraded)' : 'OK') : paint(opts, 31, 'FAILED');
  lines.push(`${visible(r.image ?? r.registry ?? r.target)}  ${verdict}  ${seconds(r.seconds)}`);
  const reached = new Set(r.steps.map(shownStage));
  for (const step of r.steps) {
    const mark = step.ok ? (step.degraded ? paint(opts, 33, '!') : paint(opts, 32, '✓')) : paint(opts, 31, '✗');
    const tail = step.ok ? '' : `  ${visible(step.message ?? '')}`;
    lines.push(`  ${mark} ${shownStage(step).padEnd(9)} ${seconds(step.seconds).padStart(8)}  ${visible(summary(step))}${tail}`);
  }
  // Who supplied the credentials and which proxy the requests went through (never a secret).
  const road: string[] = [];
  if (r.credentials) {
    const until = r.credentials.expiresAt ? `, valid until ${r.credentials.expiresAt}` : '';
    road.push(`credentials from ${r.credentials.source} ${r.credentials.name}${until}`);
  }
  if (r.proxy) road.push(`through proxy ${r.proxy}`);
  if (road.length > 0) lines.push(`  ${paint(opts, 90, '·')} ${visible(road.join('; '))}`);
  if (!r.ok) {
    const failed = [...r.steps].reverse().find((s) => !s.ok);
    const last = Math.max(STAGES.indexOf(r.stage ?? 'reference'), failed ? STAGES.indexOf(shownStage(failed)) : -1);
    const skipped = STAGES.filter((s, i) => i > last && s !== 'runtime' && !reached.has(s) && !(r.image === null && s === 'manifest'));
    for (const s of skipped) lines.push(`  ${paint(opts, 90, '·')} ${s.padEnd(9)} ${''.padStart(8)}  not reached`);
    lines.push('');
    lines.push(`  Error:  ${visible(r.message ?? '')}${r.host ? `  (${visible(r.host)})` : ''}`);
    lines.push(`  Reason: ${r.stage}/${r.reason}`);
    if (r.cause) lines.push(`  Cause:  ${causeText(r.cause)}`);
    lines.push(`  Fix:    ${visible(r.hint ?? '')}`);
  } else if (r.degraded) {
    const bad = r.steps
      .filter((s) => s.degraded)
      .map((s) => s.stage)
      .join(', ');
    lines.push('');
    lines.push(`  Note:   pull path works, but part of it is broken (${bad}); see --json for the per-server/per-address detail.`);
  }
  return lines.join('\n');
}

export function formatHuman(results: ProbeResult[], opts: FormatOptions): string {
  return results.map((r) => formatResult(r, opts)).join('\n\n') + '\n';
}
