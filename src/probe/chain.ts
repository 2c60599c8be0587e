/**
 * The probe chain: reference → dns → tcp → tls → http(/v2/) → auth →
 * manifest, in the order a container runtime walks it. Stages are their own
 * modules; endpoint-walk.ts walks one host; this file parses the target,
 * tries the endpoints containerd would try (hosts.toml mirrors first, then
 * the server), and turns the steps into one ProbeResult. The first failing
 * step decides stage/reason/cause.
 */
import { causeOf, REASONS, type Reason, type Stage } from '../diagnosis/catalog.js';
import { realClock, silentLog, type Clock, type Log, type ProbeContext, type ProbeResult, type ReferenceDetail } from '../model/types.js';
import { parseTarget, type Target } from '../model/reference.js';
import type { TokenCache } from './token-cache.js';
import { createProbeCaches, type ProbeCaches } from './probe-caches.js';
import { round, walkEndpoint, type Failure, type Walk } from './endpoint-walk.js';
import { planEndpoints } from './endpoints.js';
import {
  criDisabledOutcome,
  probeCredentials,
  resultCredentials,
  startRuntime,
  type ProbeCredentials,
  type RuntimeRun,
} from './road-steps.js';
import { toStep } from './endpoint-walk.js';
import type { Credential } from '../model/types.js';
import { proxyDisplay, proxyFor } from '../node-config/proxy-env.js';
import { DEFAULT_CRI_ENDPOINT } from '../node-config/road.js';
import type { ProbeEnvironment } from '../node-config/environment.js';
import { scrubResult, Secrets } from './scrub.js';
import { realTimers, type Timers } from '../shared/timers.js';

export { splitHostPort } from './endpoint-walk.js';

export interface ProbeOptions {
  /** Whole-probe deadline. Default 10 s. */
  timeoutMs?: number;
  /** Per-address TCP connect timeout. Default 40% of timeoutMs. */
  connectTimeoutMs?: number;
  /** DNS server port (tests only; resolv.conf has no port syntax). */
  dnsPort?: number;
  checkPlatform?: boolean;
  /** What the target string is, when the caller knows (config `image:` / `registry:`). */
  kind?: 'image' | 'registry';
  /** Also pull the image through the CRI (step `runtime`; --pull, target `pull: true`). */
  pull?: boolean;
  /** Aborts the probe early (agent shutdown, scheduler overrun). */
  signal?: AbortSignal;
  /** What is remembered between probes (tokens, index summaries, TLS contexts); its owner decides how long. Default: this call's own. */
  caches?: ProbeCaches;
  /** The token cache to use instead of `caches.tokens`. */
  tokenCache?: TokenCache;
  clock?: Clock;
  /** Stage timeouts and the deadline's safety net (real timers by default). */
  timers?: Timers;
  wallNow?: () => number;
  log?: Log;
}

/** Timeout reason for a stage whose work was cut off by the deadline. */
const TIMEOUT_REASON: Record<Stage, Reason> = {
  reference: 'invalid_reference',
  dns: 'dns_timeout',
  tcp: 'tcp_timeout',
  tls: 'tls_timeout',
  http: 'http_timeout',
  auth: 'token_error',
  manifest: 'http_timeout',
  runtime: 'runtime_unavailable',
};

function baseResult(input: string, target: Target | null): ProbeResult {
  return {
    target: input,
    image: target?.kind === 'image' ? target.ref.normalized : null,
    registry: target ? (target.kind === 'image' ? target.ref.registry : target.registry) : null,
    ok: true,
    stage: null,
    reason: null,
    cause: null,
    host: null,
    message: null,
    hint: null,
    degraded: false,
    seconds: 0,
    credentials: null,
    proxy: null,
    steps: [],
  };
}

function fail(
  result: ProbeResult,
  reason: Reason,
  message: string | undefined,
  hint: string | undefined,
  host: string | null,
  stage?: Stage,
): void {
  const info = REASONS[reason];
  result.ok = false;
  result.stage = info.stage ?? stage ?? null;
  result.reason = reason;
  result.cause = causeOf(reason);
  result.message = message ?? info.message;
  result.hint = hint ?? info.hint;
  result.host = host;
}

/**
 * Probe one target (an image reference or a bare registry host). Never
 * throws. A string is parsed here, once (its reference step); a Target the
 * caller already parsed (the agent's configuration) travels as it is and
 * `result.target` is its `input`.
 */
export async function probeTarget(target: string | Target, env: ProbeEnvironment, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const input = typeof target === 'string' ? target : target.input;
  const clock = opts.clock ?? realClock;
  const t0 = clock.now();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const controller = new AbortController();
  const ctx: ProbeContext = {
    signal: controller.signal,
    deadlineAt: t0 + timeoutMs,
    clock,
    log: opts.log ?? silentLog,
    wallNow: opts.wallNow ?? Date.now,
    ...(opts.timers ? { timers: opts.timers } : {}),
  };
  const onOuterAbort = (): void => controller.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (opts.signal?.aborted) controller.abort();
  try {
    return await probeWithin(input, typeof target === 'string' ? null : target, env, opts, ctx, controller, t0, timeoutMs);
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function probeWithin(
  input: string,
  given: Target | null,
  env: ProbeEnvironment,
  opts: ProbeOptions,
  ctx: ProbeContext,
  controller: AbortController,
  t0: number,
  timeoutMs: number,
): Promise<ProbeResult> {
  const clock = ctx.clock;
  const parsed = given !== null ? { ok: true as const, target: given } : parseTarget(input, opts.kind);
  const refSeconds = round((clock.now() - t0) / 1000);
  if (!parsed.ok) {
    const result = baseResult(input, null);
    result.steps.push({ stage: 'reference', ok: false, seconds: refSeconds, reason: 'invalid_reference', message: parsed.message });
    fail(result, 'invalid_reference', parsed.message, undefined, null);
    result.seconds = refSeconds;
    return result;
  }
  const target = parsed.target;
  const result = baseResult(input, target);
  const registry = target.kind === 'image' ? target.ref.registry : target.registry;
  const plan = await planEndpoints(target, env, ctx.log);
  const endpoints = plan.endpoints;
  // Every credential, token and configured header the probe sends; scrubbed from the result before it leaves.
  const secrets = new Secrets().add(...plan.headerValues);
  // The credentials of this pull, asked once: the kubelet's keyring, else containerd's own per host.
  const creds = await probeCredentials(env, target, endpoints[0]?.authority ?? registry, ctx).catch((err: unknown): ProbeCredentials => ({
    forHost: () => undefined,
    keyring: undefined,
    problems: [`pullprobe internal error while looking up credentials: ${err instanceof Error ? err.message : String(err)}`.slice(0, 300)],
  }));
  const problems = new Set(creds.problems);
  const credentials = new Map<number, Credential | undefined>();
  const credentialOf = (i: number): Credential | undefined => {
    if (!credentials.has(i)) {
      const c = creds.forHost(endpoints[i]?.authority ?? registry);
      secrets.addCredential(c);
      credentials.set(i, c);
    }
    return credentials.get(i);
  };
  credentialOf(0);
  const refDetail: ReferenceDetail =
    target.kind === 'image'
      ? { image: target.ref.normalized, endpoint: target.ref.endpoint }
      : { registry: target.registry, endpoint: target.endpoint };
  if (endpoints.length > 1 || endpoints[0]?.endpoint.endpoint !== refDetail.endpoint)
    refDetail.endpoints = endpoints.map((e) => `${e.endpoint.scheme}://${e.endpoint.endpoint}`);
  const notes = [...plan.notes, ...(env.road?.problems ?? []), ...problems];
  if (notes.length) refDetail.notes = notes;
  result.steps.push({ stage: 'reference', ok: true, seconds: refSeconds, detail: refDetail });

  const caches = opts.caches ?? createProbeCaches();
  const w: Walk = {
    ctx,
    env,
    steps: result.steps,
    current: { stage: 'dns' },
    opts: {
      timeoutMs,
      checkPlatform: opts.checkPlatform ?? true,
      tokenCache: opts.tokenCache ?? caches.tokens,
      indexCache: caches.indexes,
      secureContexts: caches.tlsContexts,
      ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.dnsPort !== undefined ? { dnsPort: opts.dnsPort } : {}),
      secrets,
    },
  };
  const proxyEnv = env.road?.proxy;
  if (proxyEnv) w.opts.proxyFor = (scheme, host, port) => proxyFor(proxyEnv, scheme, host, port);

  // --pull: the real pull through the CRI runs beside the walk, with the credentials the kubelet would pass.
  const road = env.road;
  const runtime: RuntimeRun | null =
    opts.pull === true && target.kind === 'image'
      ? startRuntime(ctx, target.ref.normalized, creds.keyring, road?.criEndpoint ?? DEFAULT_CRI_ENDPOINT, {
          timeoutMs,
          ...(opts.signal ? { outer: opts.signal } : {}),
          secrets,
        })
      : null;

  // Which endpoint decided the verdict (the one that worked, else the first that failed): its credential and proxy are reported.
  let decided = 0;
  // containerd tries each host in order and reports the first error when all fail.
  const walkAll = async (): Promise<{ first: Failure | null; failed: number }> => {
    let firstFailure: Failure | null = null;
    let failed = 0;
    for (const [i, planned] of endpoints.entries()) {
      const credential = credentialOf(i);
      if (credential) w.opts.credential = credential;
      else delete w.opts.credential;
      const f = await walkEndpoint(w, target, planned.endpoint);
      if (f === null) {
        decided = i;
        return { first: null, failed };
      }
      if (firstFailure === null) decided = i;
      firstFailure ??= f;
      failed++;
    }
    return { first: firstFailure, failed };
  };

  // Safety net: whatever a stage or server does, the probe ends at its deadline.
  const timers = ctx.timers ?? realTimers;
  let timer: unknown;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = timers.setTimeout(() => {
      controller.abort();
      resolve('deadline');
    }, timeoutMs + 50);
  });
  let outcome: { first: Failure | null; failed: number } | 'deadline' | { bug: string };
  try {
    outcome = await Promise.race([walkAll(), deadline]);
  } catch (err) {
    // A bug, never a network fault: reported as internal_error in the stage where it happened.
    const message = err instanceof Error ? err.message : String(err);
    ctx.log.error(
      {
        err: secrets.scrub(message),
        stack: err instanceof Error && err.stack ? secrets.scrub(err.stack) : undefined,
        target: input,
        stage: w.current.stage,
      },
      'probe stage threw: internal error',
    );
    outcome = { bug: message.slice(0, 500) };
  } finally {
    timers.clearTimeout(timer);
    controller.abort();
  }

  if (typeof outcome === 'object' && 'bug' in outcome) {
    const message = `pullprobe internal error in the ${w.current.stage} stage: ${outcome.bug}`;
    result.steps.push({
      stage: w.current.stage,
      ok: false,
      seconds: round((clock.now() - t0) / 1000),
      reason: 'internal_error',
      message,
      ...(w.current.host ? { host: w.current.host } : {}),
    });
    fail(result, 'internal_error', message, undefined, w.current.host ?? null, w.current.stage);
  } else if (outcome === 'deadline') {
    const reason = TIMEOUT_REASON[w.current.stage];
    result.steps.push({
      stage: w.current.stage,
      ok: false,
      seconds: round((clock.now() - t0) / 1000),
      reason,
      message: REASONS[reason].message,
      ...(w.current.host ? { host: w.current.host } : {}),
    });
    fail(result, reason, undefined, undefined, w.current.host ?? null);
  } else if (outcome.first && outcome.failed === endpoints.length) {
    const o = outcome.first.outcome;
    fail(result, o.reason ?? TIMEOUT_REASON[outcome.first.stage], o.message, o.hint, o.host ?? null);
  }
  const rt = runtime ? await runtime.done : road?.criDisabled ? criDisabledOutcome(road.criEndpoint, road.criDisabled) : null;
  if (rt) {
    if (!rt.ok && rt.reason === 'runtime_unavailable' && road?.criDisabled && runtime)
      rt.message = `${rt.message ?? ''}; ${road.criDisabled}`;
    result.steps.push(toStep('runtime', rt));
    // The network path decides first; a pull that fails past a good path is the runtime's own verdict.
    if (result.ok && !rt.ok && rt.reason) {
      fail(result, rt.reason, rt.message, rt.hint, rt.host ?? null, 'runtime');
      const classified = rt.detail.classified;
      if (rt.reason === 'runtime_pull_failed' && classified) result.cause = classified.cause;
    }
  }
  // No or refused credentials while a credential source failed (a plugin, a file): say which, it is likely why.
  if (result.cause === 'credentials' && problems.size > 0) result.message = `${result.message ?? ''} (${[...problems].join('; ')})`;
  const used = endpoints[decided];
  result.credentials = resultCredentials(credentials.get(decided));
  result.proxy = used?.endpoint.proxy ? proxyDisplay(used.endpoint.proxy) : null;
  // ok, but a nameserver, an address or a mirror on the way is broken.
  result.degraded = result.ok && result.steps.some((s) => s.degraded === true || !s.ok);
  result.seconds = round((clock.now() - t0) / 1000);
  return finalPass(result, secrets);
}

/**
 * The one place every finished result passes through before it leaves the
 * chain (the invalid-reference early return carries no registry text).
 * FINAL PASS: the auth helper's scrubResult (credentials the probe sent,
 * removed from every registry-supplied string) goes here.
 */
function finalPass(result: ProbeResult, secrets: Secrets): ProbeResult {
  return scrubResult(result, secrets);
}

/** Probe several targets with bounded concurrency; results keep the input order. */
export async function probeTargets(
  inputs: ReadonlyArray<string | Target>,
  env: ProbeEnvironment,
  opts: ProbeOptions = {},
  concurrency = 4,
): Promise<ProbeResult[]> {
  const results = new Array<ProbeResult>(inputs.length);
  // One set of caches for the whole run (the CLI's one per process) unless the caller owns one.
  if (opts.caches === undefined) opts = { ...opts, caches: createProbeCaches() };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const i = next++;
      results[i] = await probeTarget(inputs[i] ?? '', env, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, inputs.length)) }, worker));
  return results;
}
