/**
 * The runtime stage (`--pull`, target `pull: true`): pull the image through
 * the node's container runtime over the CRI socket, as the kubelet does —
 * Version, then PullImage with the AuthConfig the kubelet would pass, then
 * ImageStatus for the image id (pull-path-facts §4).
 *
 * Outcomes: ok; `runtime_unavailable` when the socket is missing, refuses,
 * stays silent until the deadline, or is not a CRI runtime; and
 * `runtime_pull_failed` with the runtime's own text (scrubbed of the
 * credentials sent, bounded) as the message, classified with the explain
 * table into `detail.classified` — containerd's gRPC status says little
 * (Unknown for nearly everything, DeadlineExceeded for any i/o timeout), so
 * only the text tells a refused port from a missing tag.
 *
 * The stage has its own deadline (opts.timeoutMs, capped by the probe's) for
 * everything, channel set-up included: containerd's 30 s dial timeout and
 * its missing overall timeout never decide how long it waits. The gRPC
 * client (cri-client.ts) is imported only when the stage runs.
 */
import { REASONS, type Cause, type Reason } from '../../diagnosis/catalog.js';
import { explainMessage } from '../../diagnosis/explain.js';
import { remainingMs, stageTimer } from '../../net/deadline.js';
import type { CriAuth, CriClient } from '../../net/cri-client.js';
import type { Credential, ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import type { RuntimeDetail } from '../../model/step-detail.js';
import { cleanRegistryText, Secrets } from '../scrub.js';
import { CriError } from '../../shared/errors.js';
export type { RuntimeDetail } from '../../model/step-detail.js';
export type { CriAuth } from '../../net/cri-client.js';

export interface RuntimeInput {
  /** The normalized reference ("docker.io/library/busybox:latest"), as the kubelet passes it. */
  image: string;
  /** The AuthConfig the kubelet would send (criAuthFor); absent = none (the kubelet's nil). */
  auth?: CriAuth;
}

/** Opens a CRI client for an endpoint (default: cri-client.ts's, imported on first use). */
export type CriClientFactory = (endpoint: string) => CriClient | Promise<CriClient>;

export interface RuntimeOptions {
  /** "unix:///run/containerd/containerd.sock" (a bare socket path works too). */
  endpoint: string;
  /** The stage's whole budget (all three calls, connection included); capped by the probe's deadline. */
  timeoutMs: number;
  client?: CriClientFactory;
  /** The probe's secrets: the credentials sent to the runtime are added, and the runtime's text is scrubbed with them. */
  secrets?: Secrets;
}

/**
 * The AuthConfig the kubelet passes for a credential from its keyring
 * (credential-provider plugins, node docker configs, pull secrets):
 * `{username, password}`, or `{identity_token}` for an identity token. None for
 * a credential from containerd's own config.toml (`registry.configs.<host>.auth`):
 * the kubelet does not know it, containerd adds it itself when the request
 * carries none. `server_address` stays empty, as the kubelet's keyring leaves
 * it (containerd then uses the credentials for whichever host it contacts).
 */
export function criAuthFor(credential: Credential | undefined): CriAuth | undefined {
  if (credential === undefined || credential.origin?.source === 'containerd-config') return undefined;
  if (credential.identityToken === true) return { identityToken: credential.password };
  return { username: credential.username, password: credential.password };
}

function authKind(a: CriAuth | undefined): RuntimeDetail['auth'] {
  if (a === undefined) return 'none';
  return a.identityToken !== undefined && a.identityToken !== '' ? 'identity_token' : 'basic';
}

function addAuthSecrets(secrets: Secrets, a: CriAuth | undefined): void {
  if (a === undefined) return;
  secrets.add(a.password, a.auth, a.identityToken, a.registryToken);
  if (a.password !== undefined && a.password !== '')
    secrets.addCredential({ username: a.username ?? '', password: a.password, source: '' });
}

const defaultFactory: CriClientFactory = async (endpoint) => (await import('../../net/cri-client.js')).openCriClient(endpoint);

/** The OS error behind a failed connection, as grpc-js words it ("connect ENOENT /run/…"). */
function osError(details: string): string | undefined {
  return /\b(ENOENT|ECONNREFUSED|EACCES|EPERM|ENOTSOCK|ECONNRESET|EPIPE)\b/.exec(details)?.[1];
}

function socketPath(endpoint: string): string {
  return endpoint.replace(/^unix:(?:\/\/)?/, '');
}

function isCriError(err: unknown): err is CriError {
  return err instanceof CriError;
}

/** Plain words for a runtime that cannot be reached. */
function unavailableMessage(endpoint: string, e: CriError, budgetS: string): string {
  const path = socketPath(endpoint);
  switch (e.kind) {
    case 'endpoint':
      return `${endpoint}: ${e.details}`;
    case 'timeout':
    case 'aborted':
      return `the container runtime at ${endpoint} did not answer ${e.method} within ${budgetS} s`;
    case 'rpc':
      return `${endpoint} answered ${e.method} with ${e.grpcStatus ?? 'an error'}: ${cleanRegistryText(e.details)} (not a CRI v1 runtime?)`;
    case 'codec':
      return `${endpoint} sent an answer to ${e.method} that is not a CRI message (not a CRI runtime?)`;
    case 'unavailable':
      break;
  }
  switch (osError(e.details)) {
    case 'ENOENT':
      return `no CRI socket at ${path} (is the container runtime running, and the socket mounted into the agent?)`;
    case 'ECONNREFUSED':
      return `nothing is listening on the CRI socket ${path} (connection refused)`;
    case 'EACCES':
    case 'EPERM':
      return `no permission to connect to the CRI socket ${path}`;
    default:
      return e.grpcStatus === 'DEADLINE_EXCEEDED'
        ? `the CRI socket ${path} did not answer within ${budgetS} s`
        : `container runtime at ${endpoint} unavailable: ${cleanRegistryText(e.details)}`;
  }
}

/**
 * The explain table's reason for the runtime's text. containerd words a 401
 * the same whether the request carried credentials or not ("… failed with
 * status code [manifests v1]: 401 Unauthorized"); when the stage sent an
 * AuthConfig, the registry refused those credentials: auth_rejected. Not for
 * "pull access denied … insufficient_scope", which is also how Docker Hub
 * answers for a repository that does not exist.
 */
export function classify(text: string, sentCredentials: boolean): Reason | null {
  const reason = explainMessage(text).reason;
  const plain401 = /\b401 Unauthorized\b/.test(text) && !/insufficient_scope|pull access denied/i.test(text);
  return reason === 'auth_required' && sentCredentials && plain401 ? 'auth_rejected' : reason;
}

/**
 * The ProbeResult `cause` for a runtime step (design.md: "the result's cause
 * is that classified cause"): the classified text's cause, else the
 * catalog's for the step's own reason (`node`); null when the step is ok.
 */
export function runtimeCause(outcome: StageOutcome<RuntimeDetail>): Cause | null {
  if (outcome.ok || outcome.reason === undefined) return null;
  return outcome.detail.classified?.cause ?? REASONS[outcome.reason].cause;
}

export const runtimeStage = async function runtimeStage(
  ctx: ProbeContext,
  input: RuntimeInput,
  opts: RuntimeOptions,
): Promise<StageOutcome<RuntimeDetail>> {
  const start = ctx.clock.now();
  const budgetMs = Math.max(0, Math.min(opts.timeoutMs, remainingMs(ctx)));
  const endAt = start + budgetMs;
  const budgetS = (budgetMs / 1000).toFixed(1);
  const timer = stageTimer(ctx, budgetMs);
  const secrets = opts.secrets ?? new Secrets();
  addAuthSecrets(secrets, input.auth);
  const endpoint = opts.endpoint;
  const detail: RuntimeDetail = { endpoint, auth: authKind(input.auth), classified: null };
  const seconds = (): number => (ctx.clock.now() - start) / 1000;
  const call = (): { timeoutMs: number; signal: AbortSignal } => ({
    timeoutMs: Math.max(1, Math.floor(endAt - ctx.clock.now())),
    signal: timer.signal,
  });
  const fail = (reason: Reason, message: string, extra: { host?: string; hint?: string } = {}): StageOutcome<RuntimeDetail> => {
    ctx.log.debug({ stage: 'runtime', endpoint, reason, call: detail.call, grpcStatus: detail.grpcStatus }, 'runtime failed');
    return { ok: false, reason, message, seconds: seconds(), detail, ...extra };
  };
  const noteError = (method: RuntimeDetail['call'], e: CriError): void => {
    if (method !== undefined) detail.call = method;
    if (e.grpcStatus !== null) detail.grpcStatus = e.grpcStatus;
    const os = osError(e.details);
    if (e.kind === 'unavailable' && os !== undefined) detail.error = os;
    if (e.kind === 'timeout' || e.kind === 'aborted' || (e.kind === 'unavailable' && e.grpcStatus === 'DEADLINE_EXCEEDED'))
      detail.timedOut = true;
  };

  let client: CriClient | undefined;
  try {
    // Version: is there a CRI runtime on this socket at all?
    try {
      client = await (opts.client ?? defaultFactory)(endpoint);
      const v = await client.version(call());
      detail.runtimeName = v.runtimeName;
      detail.runtimeVersion = v.runtimeVersion;
      detail.runtimeApiVersion = v.runtimeApiVersion;
    } catch (err) {
      if (!isCriError(err)) throw err;
      noteError('Version', err);
      return fail('runtime_unavailable', unavailableMessage(endpoint, err, budgetS), { host: endpoint });
    }

    // PullImage, with the kubelet's AuthConfig
    try {
      const pulled = await client.pullImage(input.image, input.auth, call());
      detail.imageRef = pulled.imageRef;
    } catch (err) {
      if (!isCriError(err)) throw err;
      noteError('PullImage', err);
      return pullFailed(err);
    }

    // ImageStatus: the image as the kubelet then sees it
    try {
      const image = await client.imageStatus(input.image, call());
      if (image === null) {
        detail.call = 'ImageStatus';
        return fail('runtime_pull_failed', `the runtime reported ${input.image} pulled, but ImageStatus does not find it`);
      }
      detail.imageId = image.id;
      detail.repoDigests = image.repoDigests;
      detail.size = image.size;
    } catch (err) {
      if (!isCriError(err)) throw err;
      noteError('ImageStatus', err);
      return pullFailed(err);
    }
    return { ok: true, seconds: seconds(), detail };
  } finally {
    timer.dispose();
    client?.close();
  }

  function pullFailed(e: CriError): StageOutcome<RuntimeDetail> {
    if (e.kind === 'unavailable' || e.kind === 'endpoint') {
      return fail('runtime_unavailable', `lost the connection to the container runtime at ${endpoint} during ${e.method}`, {
        host: endpoint,
      });
    }
    if (e.kind === 'timeout' || e.kind === 'aborted') {
      return fail('runtime_pull_failed', `the container runtime did not finish ${e.method} of ${input.image} within ${budgetS} s`);
    }
    if (e.kind === 'codec') return fail('runtime_pull_failed', `unreadable ${e.method} answer from ${endpoint}`);
    const text = secrets.scrub(e.details);
    const reason = classify(text, detail.auth !== 'none');
    if (reason !== null) {
      const { stage, cause, hint } = REASONS[reason];
      if (stage !== null) {
        detail.classified = { stage, reason, cause };
        return fail('runtime_pull_failed', cleanRegistryText(text, secrets), { hint });
      }
    }
    return fail('runtime_pull_failed', cleanRegistryText(text, secrets));
  }
} satisfies StageFn<RuntimeInput, RuntimeOptions, RuntimeDetail>;
