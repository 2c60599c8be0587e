/**
 * The parts of a probe that follow the node's runtime beyond the network
 * path: which credentials the kubelet (or containerd itself) would use for a
 * host, how the result names their source, and the `runtime` step — a real
 * pull through the CRI socket, run beside the network walk with its own
 * deadline (the same length as the probe's, so `--pull` never doubles it).
 */
import type { Credential, ProbeContext, ResultCredentials, StageOutcome } from '../model/types.js';
import type { RuntimeDetail } from '../model/step-detail.js';
import type { Target } from '../model/reference.js';
import type { ProbeEnvironment } from '../node-config/environment.js';
import { credentialFor } from '../node-config/docker-config.js';
import { resolveKubeletCredential, type CredentialSources } from '../node-config/kubelet-credentials.js';
import { remainingMs } from '../net/deadline.js';
import { realTimers } from '../shared/timers.js';
import { rfc3339 } from '../shared/rfc3339.js';
import { criAuthFor, runtimeStage } from './stages/runtime.js';
import type { Secrets } from './scrub.js';

/** The share of the probe's remaining time a credential-provider plugin may take. */
export const PROVIDER_SHARE = 0.5;

export interface ProbeCredentials {
  /** The credential for the host containerd contacts (a mirror's host, or the registry's). */
  forHost(authority: string): Credential | undefined;
  /** The keyring's first credential: what the kubelet passes to the CRI (undefined: none). */
  keyring: Credential | undefined;
  /** Credentials that could not be used and why (a failing plugin, an unreadable file); never a secret. */
  problems: string[];
}

/**
 * The credentials a pull of `target` gets, asked once per probe (a plugin
 * runs once, whatever the number of mirrors): the kubelet's keyring (the
 * user's --docker-config first, as the kubelet puts pull secrets first, then
 * the node's docker config file, then credential-provider plugins) for every
 * host — the kubelet sets no ServerAddress, so containerd offers them to
 * mirrors too — and, only when the keyring matched nothing, containerd's own
 * `registry.configs.<host>.auth` for the host it contacts.
 * Without a road (tests, old callers): the --docker-config alone, as before.
 */
export async function probeCredentials(
  env: ProbeEnvironment,
  target: Target,
  authority: string,
  ctx: ProbeContext,
): Promise<ProbeCredentials> {
  const registry = target.kind === 'image' ? target.ref.registry : target.registry;
  const repository = target.kind === 'image' ? target.ref.repository : undefined;
  const road = env.road;
  if (!road) {
    const credential = env.auths ? credentialFor(env.auths, registry, repository) : undefined;
    return { forHost: () => credential, keyring: credential, problems: [] };
  }
  const containerd = road.credentials.containerd;
  const sources: CredentialSources = {
    dockerConfigs: [
      ...(env.auths && env.dockerConfigPath !== null ? [{ file: env.dockerConfigPath, auths: env.auths }] : []),
      ...road.credentials.dockerConfigs,
    ],
    // The kubelet runs plugins for the images of its pods; a bare registry target has no image to ask for.
    ...(road.credentials.providers && target.kind === 'image' ? { providers: road.credentials.providers } : {}),
  };
  // The kubelet gives a plugin a minute, then pulls without its credentials. The probe cannot wait
  // that long: a plugin gets at most half of what is left, so a hung plugin reads as what it is
  // (no credentials, the plugin named) and not as a network fault at the probe's deadline.
  const got = await resolveKubeletCredential(sources, { registry, repository: repository ?? '' }, authority, {
    signal: ctx.signal,
    deadlineMs: Math.floor(remainingMs(ctx) * PROVIDER_SHARE),
  });
  const keyring = got.credential;
  const forHost = (host: string): Credential | undefined => keyring ?? (got.keyringMatched ? undefined : containerd?.auths(host));
  return { forHost, keyring, problems: got.problems };
}

/** design.md `credentials`: the source and its file or plugin, never the secret. */
export function resultCredentials(credential: Credential | undefined): ResultCredentials | null {
  if (!credential) return null;
  const o = credential.origin;
  if (!o) return { source: 'docker-config', name: credential.source.replace(/: auths\[.*$/, ''), expiresAt: null };
  return { source: o.source, name: o.name, expiresAt: o.expiresAt === null ? null : rfc3339(o.expiresAt) };
}

export interface RuntimeRun {
  /** Settles with the runtime step's outcome; never rejects. */
  done: Promise<StageOutcome<RuntimeDetail>>;
}

/**
 * Start the CRI pull beside the network walk. It has its own abort (the walk's
 * ends when the walk does) at the same deadline as the probe, and the outer
 * signal (agent shutdown) stops it too.
 */
export function startRuntime(
  ctx: ProbeContext,
  image: string,
  credential: Credential | undefined,
  endpoint: string,
  o: { timeoutMs: number; outer?: AbortSignal; secrets: Secrets },
): RuntimeRun {
  const controller = new AbortController();
  const timers = ctx.timers ?? realTimers;
  const timer = timers.setTimeout(() => controller.abort(), Math.max(0, ctx.deadlineAt - ctx.clock.now()) + 50);
  const onOuter = (): void => controller.abort();
  o.outer?.addEventListener('abort', onOuter, { once: true });
  const rctx: ProbeContext = { ...ctx, signal: controller.signal };
  const auth = criAuthFor(credential);
  const done = runtimeStage(rctx, { image, ...(auth ? { auth } : {}) }, { endpoint, timeoutMs: o.timeoutMs, secrets: o.secrets })
    .catch((err: unknown): StageOutcome<RuntimeDetail> => ({
      ok: false,
      reason: 'internal_error',
      message: `pullprobe internal error in the runtime stage: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500),
      seconds: 0,
      detail: { endpoint, auth: 'none', classified: null },
    }))
    .finally(() => {
      timers.clearTimeout(timer);
      o.outer?.removeEventListener('abort', onOuter);
    });
  return { done };
}

/** containerd's CRI plugin does not load with the node's config.toml: what the runtime step says without --pull. */
export function criDisabledOutcome(endpoint: string, why: string): StageOutcome<RuntimeDetail> {
  return {
    ok: false,
    reason: 'runtime_unavailable',
    host: endpoint,
    message: why,
    seconds: 0,
    detail: { endpoint, auth: 'none', classified: null },
  };
}
