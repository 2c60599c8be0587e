/**
 * `pullprobe why --json` (design.md, "why"): one object per pod, one entry
 * per container that fails to pull (every container with --all). Key order
 * is the contract's. No secret value is ever held in these objects.
 */
import type { Cause, Reason, Stage } from '../diagnosis/catalog.js';
import type { ReportVerdict } from '../report/rows.js';
import type { ProbeResult } from '../model/types.js';

export interface PullSecretFinding {
  name: string;
  /** The secret exists in the pod's namespace. */
  found: boolean;
  /** Other namespaces holding a secret of that name (only looked up when not found). */
  foundIn: string[];
  type: string | null;
  /** Registry hosts (with a path prefix when the key has one) the secret has credentials for. */
  registries: string[];
  /** One entry matches the image's registry by the kubelet keyring's rules. */
  matchesImage: boolean;
  /** RFC 3339, when the matching credential carries its expiry (an ECR token). */
  expiresAt: string | null;
  /** What is wrong with it, in plain words; null when nothing is. */
  problem: string | null;
}

export interface NodeVerdict {
  ok: boolean;
  stage: Stage | null;
  reason: Reason | null;
  /** RFC 3339: since when the node has this verdict. */
  since: string | null;
  subnet: string | null;
  /** What `pullprobe report` says for this subnet × registry; null when the nodes could not be listed. */
  subnetVerdict: ReportVerdict | null;
}

export interface Conclusion {
  /** null: nothing fails, or the evidence conflicts or names no cause (the summary says which). */
  cause: Cause | null;
  reason: Reason | null;
  summary: string;
  fix: string | null;
}

export interface ContainerDiagnosis {
  name: string;
  image: string;
  /** The waiting reason (ErrImagePull, ImagePullBackOff, …), "running", "terminated" or "waiting" / "unknown". */
  state: string;
  kubeletMessage: string | null;
  explained: { stage: Stage | null; reason: Reason; cause: Cause } | null;
  pullSecrets: PullSecretFinding[];
  nodeVerdict: NodeVerdict | null;
  conclusion: Conclusion;
  /** Only with --probe: the image probed from where the command ran, with the pod's pull secrets. */
  probe?: ProbeResult;
}

export interface WhyReport {
  pod: string;
  namespace: string;
  node: string | null;
  containers: ContainerDiagnosis[];
}

/** The waiting reasons of a failing pull. */
export const PULL_FAILURE_STATES = ['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull'] as const;
