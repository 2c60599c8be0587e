/**
 * The diagnostic sequence for one pod, through an injected kubectl:
 * pod → containers → image → kubelet message → pull secrets → node verdict →
 * conclusion. Reads what the user may read; a Forbidden on an optional
 * lookup (events, service account, other namespaces, node list) becomes a
 * note, never a stop. Only the pod itself is required.
 */
import { parseImageReference, type ImageRef } from '../model/reference.js';
import type { DockerAuths } from '../node-config/docker-config.js';
import type { ProbeResult } from '../model/types.js';
import type { Kubectl, KubectlResult } from './kubectl.js';
import { podFacts, refNames, isObj } from './pod.js';
import { kubeletFinding, podEvents } from './kubelet-message.js';
import { analyseSecret, mergeAuths, type SecretAnalysis } from './pull-secrets.js';
import { nodeFinding, type NodeFinding } from './node-verdict.js';
import { conclude } from './conclusion.js';
import type { ContainerDiagnosis, WhyReport } from './types.js';

export class WhyError extends Error {
  override readonly name = 'WhyError';
  readonly code = 'PULLPROBE_CONFIG' as const;
}

/** Probes an image from here with these credentials (in memory). */
export type ImageProber = (image: string, auths: DockerAuths | undefined) => Promise<ProbeResult>;

export interface WhyInput {
  pod: string;
  /** null: kubectl's current namespace. */
  namespace: string | null;
  all: boolean;
  kubectl: Kubectl;
  nowMs: number;
  probe?: ImageProber;
}

/** Per container, what the human output adds to the JSON. */
export interface ContainerNotes {
  parsed: ImageRef | null;
  parseError: string | null;
  node: NodeFinding | null;
}

export interface WhyOutcome {
  report: WhyReport;
  notes: ContainerNotes[];
  /** Lookups that could not be made (forbidden, failed), in plain words. */
  warnings: string[];
  /** Every secret string met; the caller checks none is in what it prints. */
  secretValues: string[];
}

async function json(kubectl: Kubectl, args: string[]): Promise<{ ok: true; value: unknown } | Extract<KubectlResult, { ok: false }>> {
  const r = await kubectl([...args, '-o', 'json']);
  if (!r.ok) return r;
  try {
    return { ok: true, value: JSON.parse(r.stdout) };
  } catch {
    return { ok: false, kind: 'failed', message: `\`kubectl ${args.join(' ')} -o json\` did not print JSON` };
  }
}

export async function diagnosePod(input: WhyInput): Promise<WhyOutcome> {
  const { kubectl } = input;
  const nsArgs = input.namespace !== null ? ['-n', input.namespace] : [];
  const got = await json(kubectl, ['get', 'pod', input.pod, ...nsArgs]);
  if (!got.ok)
    throw new WhyError(
      got.kind === 'not-found' ? `pod ${input.pod} not found${input.namespace ? ` in namespace ${input.namespace}` : ''}` : got.message,
    );
  const pod = podFacts(got.value);
  if (pod === null) throw new WhyError(`kubectl get pod ${input.pod}: the answer is not a Pod`);
  const ns = pod.namespace;
  const warnings: string[] = [];
  const secretValues: string[] = [];
  const chosen = pod.containers.filter((c) => input.all || c.failing);
  const report: WhyReport = { pod: pod.name, namespace: ns, node: pod.node, containers: [] };
  if (chosen.length === 0) return { report, notes: [], warnings, secretValues };

  const ev = await json(kubectl, ['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${pod.name}`]);
  if (!ev.ok) warnings.push(`could not read the pod's events: ${ev.message}`);
  const events = ev.ok ? podEvents(ev.value) : [];

  const names = [...pod.pullSecrets];
  const sa = await json(kubectl, ['get', 'serviceaccount', pod.serviceAccount, '-n', ns]);
  if (sa.ok) {
    for (const n of refNames(isObj(sa.value) ? sa.value['imagePullSecrets'] : undefined)) if (!names.includes(n)) names.push(n);
  } else warnings.push(`could not read service account ${pod.serviceAccount} (its pull secrets are not included): ${sa.message}`);

  const lookups = new Map<string, { secret: unknown; elsewhere: string[] | null }>();
  for (const name of names) {
    const s = await json(kubectl, ['get', 'secret', name, '-n', ns]);
    if (s.ok) {
      lookups.set(name, { secret: s.value, elsewhere: [] });
      continue;
    }
    if (s.kind !== 'not-found') warnings.push(`could not read secret ${name}: ${s.message}`);
    // The classic mistake: the secret was created in another namespace (default). Only names are read.
    const other = await kubectl([
      'get',
      'secrets',
      '-A',
      '--field-selector',
      `metadata.name=${name}`,
      '-o',
      'jsonpath={range .items[*]}{.metadata.namespace}{"\\n"}{end}',
    ]);
    if (!other.ok) warnings.push(`could not look for secret ${name} in other namespaces: ${other.message}`);
    const elsewhere = other.ok
      ? other.stdout
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && l !== ns)
      : null;
    lookups.set(name, { secret: null, elsewhere });
  }

  let node: unknown = null;
  let nodeList: unknown = null;
  if (pod.node !== null) {
    const n = await json(kubectl, ['get', 'node', pod.node]);
    if (n.ok) node = n.value;
    else warnings.push(`could not read node ${pod.node}: ${n.message}`);
    const list = await json(kubectl, ['get', 'nodes']);
    if (list.ok) nodeList = list.value;
    else warnings.push(`could not list nodes for the subnet verdict: ${list.message}`);
  }

  const notes: ContainerNotes[] = [];
  for (const c of chosen) {
    const parsed = parseImageReference(c.image);
    const ref = parsed.ok ? parsed.ref : null;
    const kubelet = kubeletFinding(c, events);
    const analyses: SecretAnalysis[] = names.map((name) =>
      analyseSecret(name, ns, lookups.get(name) ?? { secret: null, elsewhere: null }, ref, input.nowMs),
    );
    for (const a of analyses) secretValues.push(...a.values);
    const nf = ref !== null && node !== null ? nodeFinding(node, nodeList, ref.registry, input.nowMs) : null;
    const pullSecrets = analyses.map((a) => a.finding);
    const conclusion = conclude(
      {
        state: c.state,
        failing: c.failing,
        parsed,
        explained: kubelet.explained,
        secrets: pullSecrets,
        node: nf?.verdict ?? null,
        nodeNote: nf?.note ?? (pod.node === null ? 'the pod is not scheduled on a node' : null),
      },
      ref?.registry ?? '',
    );
    const d: ContainerDiagnosis = {
      name: c.name,
      image: c.image,
      state: c.state,
      kubeletMessage: kubelet.message,
      explained: kubelet.explained,
      pullSecrets,
      nodeVerdict: nf?.verdict ?? null,
      conclusion,
    };
    if (input.probe && ref !== null) d.probe = await input.probe(c.image, mergeAuths(analyses.map((a) => a.auths)));
    report.containers.push(d);
    notes.push({ parsed: ref, parseError: parsed.ok ? null : parsed.message, node: nf });
  }
  return { report, notes, warnings, secretValues };
}
