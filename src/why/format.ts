/**
 * Human output of `why`: the troubleshooting guide's sequence, one line per
 * step with ✓/✗, then the conclusion. Texts from the cluster (messages,
 * names) pass through `visible` so they cannot drive the terminal.
 */
import { causeText, visible } from '../output/format-human.js';
import { formatDuration } from '../shared/duration.js';
import type { ContainerNotes, WhyOutcome } from './diagnose.js';
import type { ContainerDiagnosis } from './types.js';

const OK = '✓';
const BAD = '✗';
const INFO = '•';

function age(iso: string | null, nowMs: number): string {
  const t = iso === null ? Number.NaN : Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const ms = Math.max(0, nowMs - t);
  return ` for ${formatDuration(Math.floor(ms / 1000) * 1000)}`;
}

function container(d: ContainerDiagnosis, n: ContainerNotes | undefined, nowMs: number): string {
  const out: string[] = [`Container ${visible(d.name)} (${visible(d.state)})`];
  const ref = n?.parsed ?? null;
  out.push(
    ref !== null
      ? `  ${OK} 1. Image: ${visible(d.image)} → ${ref.normalized} (registry ${ref.registry})`
      : `  ${BAD} 1. Image: ${visible(d.image)} is not a valid reference: ${n?.parseError ?? 'invalid reference format'}`,
  );
  if (d.explained !== null)
    out.push(
      `  ${BAD} 2. Kubelet: ${d.explained.stage ?? '?'}/${d.explained.reason} (${causeText(d.explained.cause)}): ${visible(d.kubeletMessage ?? '')}`,
    );
  else
    out.push(
      `  ${d.kubeletMessage === null ? INFO : BAD} 2. Kubelet: ${d.kubeletMessage === null ? 'no message' : `${visible(d.kubeletMessage)} (names no cause)`}`,
    );
  if (d.pullSecrets.length === 0) out.push(`  ${INFO} 3. Pull secrets: none (pod spec and service account)`);
  for (const s of d.pullSecrets) {
    const what =
      s.problem !== null
        ? s.problem
        : `${s.type ?? ''}, covers ${s.registries.join(', ') || 'nothing'}${s.matchesImage ? ', matches the image' : ''}${s.expiresAt ? `, expires ${s.expiresAt}` : ''}`;
    out.push(`  ${s.problem === null ? OK : BAD} 3. Pull secret ${visible(s.name)}: ${visible(what)}`);
  }
  const v = d.nodeVerdict;
  if (v === null) out.push(`  ${INFO} 4. Node: ${n?.node?.note ?? 'no verdict (pod not scheduled, node unreadable or image invalid)'}`);
  else {
    const written =
      n?.node?.at != null ? `; annotation written ${formatDuration(Math.max(0, Math.floor((nowMs - n.node.at) / 1000)) * 1000)} ago` : '';
    const subnet = `subnet ${v.subnet ?? 'unknown'}: ${v.subnetVerdict ?? 'not known'}`;
    out.push(
      `  ${v.ok ? OK : BAD} 4. Node: ${v.ok ? 'reaches the registry' : `${v.stage ?? '?'}/${v.reason ?? '?'}`}${age(v.since, nowMs)}${written}; ${subnet}`,
    );
    if (n?.node?.note) out.push(`       ${n.node.note}`);
  }
  const c = d.conclusion;
  out.push(`  ⇒ ${c.cause !== null ? `Cause: ${causeText(c.cause)} (${c.reason})` : 'No single cause'}: ${visible(c.summary)}`);
  if (c.fix !== null) out.push(`    Fix: ${c.fix}`);
  if (d.probe) {
    const p = d.probe;
    out.push(
      `  ${p.ok ? OK : BAD} Probe from here (with the pod's pull secrets): ${p.ok ? 'pull path ok' : `${p.stage}/${p.reason}: ${visible(p.message ?? '')}`}`,
    );
    out.push(
      "    (reachability from here is not the node's: network results apply to this machine only; names and credentials do carry over)",
    );
  }
  return out.join('\n') + '\n';
}

export function formatWhy(o: WhyOutcome, nowMs: number): string {
  const r = o.report;
  let s = `Pod ${visible(r.namespace)}/${visible(r.pod)}${r.node ? ` on node ${visible(r.node)}` : ' (not scheduled)'}\n`;
  if (r.containers.length === 0) return s + `${OK} No container is failing to pull its image.\n`;
  for (const [i, d] of r.containers.entries()) s += '\n' + container(d, o.notes[i], nowMs);
  for (const w of o.warnings) s += `\nnote: ${visible(w)}`;
  return o.warnings.length > 0 ? s + '\n' : s;
}
