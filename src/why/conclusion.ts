/**
 * Pure: one conclusion per container, in the order the troubleshooting guide
 * checks: the image string, then what the registry said about the image
 * (wrong name, missing tag), then credentials (the pull secrets), then the
 * network (the node's verdict). When the evidence conflicts — the kubelet
 * says 401 but a pull secret matches and decodes, or it says the registry is
 * unreachable while the agent on that node reaches it — the conclusion says
 * so and names no cause rather than guessing.
 */
import { REASONS, causeOf, type Reason } from '../diagnosis/catalog.js';
import type { ReferenceParse } from '../model/reference.js';
import type { Conclusion, ContainerDiagnosis, NodeVerdict, PullSecretFinding } from './types.js';

export interface Evidence {
  state: string;
  failing: boolean;
  parsed: ReferenceParse;
  explained: ContainerDiagnosis['explained'];
  secrets: readonly PullSecretFinding[];
  node: NodeVerdict | null;
  nodeNote: string | null;
}

const of = (reason: Reason, summary: string, fix?: string): Conclusion => ({
  cause: causeOf(reason),
  reason,
  summary,
  fix: fix ?? REASONS[reason].hint,
});

function secretConclusion(secrets: readonly PullSecretFinding[], registry: string, kubeletReason: Reason | null): Conclusion | null {
  const reason: Reason = kubeletReason !== null && causeOf(kubeletReason) === 'credentials' ? kubeletReason : 'auth_required';
  if (secrets.some((s) => s.matchesImage && s.problem === null)) return null;
  const misplaced = secrets.find((s) => !s.found && s.foundIn.length > 0);
  if (misplaced) {
    return of(
      reason,
      `pull secret ${misplaced.name} is not in the pod's namespace; it exists in ${misplaced.foundIn.join(', ')}`,
      `Create the secret ${misplaced.name} in the pod's namespace (secrets are namespace-scoped: a secret in ${misplaced.foundIn[0]} is invisible to this pod), e.g. copy it with kubectl get secret ${misplaced.name} -n ${misplaced.foundIn[0]} -o yaml, change the namespace, kubectl apply.`,
    );
  }
  const bad = secrets.find((s) => s.problem !== null);
  if (bad) {
    const fix =
      bad.expiresAt !== null
        ? `Refresh the secret ${bad.name} (aws ecr get-login-password) — better, let the nodes authenticate to ECR (IAM role on the node group, or the ECR credential provider) instead of a static token.`
        : !bad.found
          ? `Create the secret ${bad.name} in the pod's namespace (kubectl create secret docker-registry ${bad.name} --docker-server=${registry} …).`
          : bad.registries.length > 0 && !bad.matchesImage
            ? `Add credentials for ${registry} to the secret ${bad.name} (its --docker-server must be ${registry}), or reference a secret that has them.`
            : `Recreate the secret ${bad.name} with kubectl create secret docker-registry ${bad.name} --docker-server=${registry} ….`;
    return of(reason, `pull secret ${bad.name} ${bad.problem}`, fix);
  }
  return of(
    reason,
    secrets.length === 0
      ? 'the pod has no pull secret (neither in its spec nor on its service account)'
      : `no pull secret of the pod has credentials for ${registry}`,
    `Create a docker-registry secret for ${registry} in the pod's namespace and list it under imagePullSecrets (or on the pod's service account); on a cloud registry, nodes can also authenticate with their IAM role.`,
  );
}

export function conclude(ev: Evidence, registry: string): Conclusion {
  if (!ev.parsed.ok || ev.state === 'InvalidImageName') {
    return of('invalid_reference', `the image string is not a valid reference${ev.parsed.ok ? '' : `: ${ev.parsed.message}`}`);
  }
  if (ev.state === 'ErrImageNeverPull') return of('never_pull', 'the pod says imagePullPolicy: Never and the image is not on the node');
  if (!ev.failing)
    return { cause: null, reason: null, summary: `the container is ${ev.state}: its image is not failing to pull`, fix: null };
  const k = ev.explained;
  const nodeFails = ev.node !== null && !ev.node.ok;
  const nodeText =
    ev.node === null
      ? ''
      : ev.node.ok
        ? 'the agent on the node reaches the registry'
        : `the node's agent says ${ev.node.stage ?? '?'}/${ev.node.reason ?? '?'}${ev.node.subnetVerdict ? ` (${ev.node.subnetVerdict}${ev.node.subnet ? ` in ${ev.node.subnet}` : ''})` : ''}`;

  if (k !== null && (k.cause === 'name' || k.cause === 'missing'))
    return of(k.reason, `the kubelet says ${REASONS[k.reason].message}: the registry answered, the image is not there`);
  if (k !== null && k.cause === 'credentials') {
    const s = secretConclusion(ev.secrets, registry, k.reason);
    if (s !== null) return s;
    const good = ev.secrets.find((x) => x.matchesImage);
    return {
      cause: null,
      reason: null,
      summary: `conflicting evidence: the kubelet says ${REASONS[k.reason].message}, but pull secret ${good?.name ?? '?'} has credentials for ${registry} and decodes`,
      fix: `Check the username and password in ${good?.name ?? 'the secret'} against the registry (run with --probe to try them from here), and whether the account may pull this repository.`,
    };
  }
  if (k !== null && k.cause === 'network') {
    if (ev.node !== null && ev.node.ok) {
      return {
        cause: null,
        reason: null,
        summary: `conflicting evidence: the kubelet says ${REASONS[k.reason].message}, but ${nodeText}`,
        fix: 'The failure may be over (delete the pod to retry the pull now), or the container runtime takes another road than the agent (proxy, mirror in hosts.toml): run pullprobe probe --pull on the node.',
      };
    }
    return of(
      k.reason,
      `the kubelet says ${REASONS[k.reason].message}${nodeFails ? `; ${nodeText}` : ev.nodeNote ? `; ${ev.nodeNote}` : ''}`,
    );
  }
  if (k !== null) return of(k.reason, `the kubelet says ${REASONS[k.reason].message}${nodeFails ? `; ${nodeText}` : ''}`);

  // The kubelet's message names no cause: walk the guide's order over the rest.
  if (ev.secrets.some((s) => s.problem !== null)) {
    const s = secretConclusion(ev.secrets, registry, null);
    if (s !== null) return s;
  }
  if (nodeFails && ev.node?.reason) return of(ev.node.reason, `the kubelet's message names no cause; ${nodeText}`);
  return {
    cause: null,
    reason: null,
    summary: "the kubelet's message names no cause and no other step found one",
    fix: 'Read the full "Failed to pull image" event (kubectl describe pod), or run pullprobe probe IMAGE on the node.',
  };
}
