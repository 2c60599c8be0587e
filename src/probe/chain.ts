/**
 * The probe chain: reference → dns → tcp → tls → http(/v2/) → auth →
 * manifest, in the order a container runtime walks it. Each stage is its own
 * module; this file only sequences them, reaches extra hosts (the token
 * service) through the same dns/tcp/tls stages, and turns the steps into one
 * ProbeResult. The first failing step decides stage/reason/cause.
 */
import { causeOf, REASONS, stageOf, type Reason, type Stage } from './catalog.js';
import { realClock, silentLog, type Clock, type Log, type ProbeContext, type ProbeResult, type StageOutcome, type StepResult } from './types.js';
import { remainingMs } from './deadline.js';
import { parseTarget, type Target } from './reference.js';
import { dnsStage } from './dns.js';
import { tcpStage } from './tcp.js';
import { tlsStage } from './tls.js';
import { createDispatcher } from './dispatcher.js';
import { httpStage } from './registry-http.js';
import { authStage } from './registry-auth.js';
import { manifestStage } from './manifest.js';
import { TokenCache } from './token-cache.js';
import { credentialFor } from './docker-config.js';
import type { ProbeEnvironment } from './environment.js';

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
  /** Aborts the probe early (agent shutdown, scheduler overrun). */
  signal?: AbortSignal;
  tokenCache?: TokenCache;
  clock?: Clock;
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

const defaultTokenCache = new TokenCache();

interface Run {
  ctx: ProbeContext;
  env: ProbeEnvironment;
  opts: ProbeOptions;
  steps: StepResult[];
  /** The stage in progress, for the deadline safety net. */
  current: { stage: Stage; host?: string };
}

function toStep(stage: Stage, o: StageOutcome<object>): StepResult {
  const step: StepResult = {
    stage: o.ok || !o.reason ? stage : stageOf(o.reason),
    ok: o.ok,
    seconds: round(o.seconds),
  };
  if (o.host !== undefined) step.host = o.host;
  if (!o.ok && o.reason) {
    step.reason = o.reason;
    step.message = o.message ?? REASONS[o.reason].message;
  }
  if (o.degraded) step.degraded = true;
  step.detail = o.detail as Record<string, unknown>;
  return step;
}

function round(s: number): number {
  return Math.round(s * 1e6) / 1e6;
}

/** Split "host:port" / "[v6]:port" into parts; default port 443. */
export function splitHostPort(endpoint: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(endpoint);
  if (v6) return { host: v6[1] ?? '', port: v6[2] ? Number(v6[2]) : 443 };
  const i = endpoint.lastIndexOf(':');
  if (i > 0 && /^\d+$/.test(endpoint.slice(i + 1))) {
    return { host: endpoint.slice(0, i), port: Number(endpoint.slice(i + 1)) };
  }
  return { host: endpoint, port: 443 };
}

interface Failure {
  outcome: StageOutcome<object>;
  stage: Stage;
}

/** dns → tcp → tls for one host; pins its working addresses in the dispatcher. */
async function reachHost(run: Run, host: string, port: number, pinned: Map<string, string[]>): Promise<Failure | null> {
  const { ctx, env, opts } = run;
  run.current = { stage: 'dns', host };
  const dns = await dnsStage(ctx, { host }, {
    resolvConf: env.resolvConf,
    ...(env.hosts ? { hosts: env.hosts } : {}),
    ...(opts.dnsPort ? { port: opts.dnsPort } : {}),
  });
  run.steps.push(toStep('dns', dns));
  if (!dns.ok) return { outcome: dns, stage: 'dns' };

  run.current = { stage: 'tcp', host: `${host}:${port}` };
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const tcp = await tcpStage(ctx, { host, addresses: dns.detail.addresses, port }, {
    connectTimeoutMs: opts.connectTimeoutMs ?? Math.max(500, Math.round(timeoutMs * 0.4)),
  });
  run.steps.push(toStep('tcp', tcp));
  if (!tcp.ok) return { outcome: tcp, stage: 'tcp' };

  run.current = { stage: 'tls', host: `${host}:${port}` };
  const first = tcp.detail.connected[0] ?? '';
  const tls = await tlsStage(ctx, { host, address: first, port }, {
    ca: env.ca,
    handshakeTimeoutMs: remainingMs(ctx),
  });
  run.steps.push(toStep('tls', tls));
  if (!tls.ok) return { outcome: tls, stage: 'tls' };
  pinned.set(host, tcp.detail.connected);
  return null;
}

async function walk(run: Run, target: Target): Promise<Failure | null> {
  const endpoint = target.kind === 'image' ? target.ref.endpoint : target.endpoint;
  const registry = target.kind === 'image' ? target.ref.registry : target.registry;
  const { host, port } = splitHostPort(endpoint);
  const pinned = new Map<string, string[]>();
  const reached = await reachHost(run, host, port, pinned);
  if (reached) return reached;

  const { ctx, env, opts } = run;
  const timeoutMs = remainingMs(ctx);
  const dispatcher = createDispatcher({ pinned, ca: env.ca, connectTimeoutMs: timeoutMs, headersTimeoutMs: timeoutMs, bodyTimeoutMs: timeoutMs });
  try {
    run.current = { stage: 'http', host: endpoint };
    const http = await httpStage(ctx, { endpoint }, { dispatcher, timeoutMs: remainingMs(ctx) });
    run.steps.push(toStep('http', http));
    if (!http.ok) return { outcome: http, stage: 'http' };

    // The token service is its own hop: reach it like the registry itself.
    const bearer = http.detail.challenges.find((c) => c.scheme === 'bearer');
    const realm = bearer?.params['realm'];
    if (realm) {
      let realmUrl: URL | null = null;
      try {
        realmUrl = new URL(realm);
      } catch {
        realmUrl = null;
      }
      if (realmUrl && !pinned.has(realmUrl.hostname)) {
        const realmHost = realmUrl.hostname.replace(/^\[|\]$/g, '');
        const realmPort = realmUrl.port ? Number(realmUrl.port) : realmUrl.protocol === 'http:' ? 80 : 443;
        const hop = await reachHost(run, realmHost, realmPort, pinned);
        if (hop) return hop;
      }
    }

    const credential = env.auths
      ? credentialFor(env.auths, registry, target.kind === 'image' ? target.ref.repository : undefined)
      : undefined;
    run.current = { stage: 'auth', host: realmUrlHost(realm) ?? endpoint };
    const auth = await authStage(ctx, {
      endpoint,
      repository: target.kind === 'image' ? target.ref.repository : null,
      challenges: http.detail.challenges,
      status: http.detail.status ?? 0,
    }, {
      dispatcher, timeoutMs: remainingMs(ctx), tokenCache: opts.tokenCache ?? defaultTokenCache,
      ...(credential ? { credential } : {}),
    });
    run.steps.push(toStep('auth', auth));
    if (!auth.ok) return { outcome: auth, stage: 'auth' };
    if (target.kind !== 'image') return null;

    run.current = { stage: 'manifest', host: endpoint };
    const manifest = await manifestStage(ctx, {
      endpoint,
      repository: target.ref.repository,
      reference: target.ref.digest ?? target.ref.tag ?? 'latest',
      ...(auth.authorization ? { authorization: auth.authorization } : {}),
      hasCredential: credential !== undefined,
    }, { dispatcher, timeoutMs: remainingMs(ctx), platform: env.platform, checkPlatform: opts.checkPlatform ?? true });
    run.steps.push(toStep('manifest', manifest));
    if (!manifest.ok) return { outcome: manifest, stage: 'manifest' };
    return null;
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

function realmUrlHost(realm: string | undefined): string | undefined {
  if (!realm) return undefined;
  try {
    return new URL(realm).host;
  } catch {
    return undefined;
  }
}

function baseResult(input: string, target: Target | null): ProbeResult {
  return {
    target: input,
    image: target?.kind === 'image' ? target.ref.normalized : null,
    registry: target ? (target.kind === 'image' ? target.ref.registry : target.registry) : null,
    ok: true, stage: null, reason: null, cause: null, host: null, message: null, hint: null,
    degraded: false, seconds: 0, steps: [],
  };
}

function fail(result: ProbeResult, reason: Reason, message: string | undefined, hint: string | undefined, host: string | null): void {
  const info = REASONS[reason];
  result.ok = false;
  result.stage = info.stage;
  result.reason = reason;
  result.cause = causeOf(reason);
  result.message = message ?? info.message;
  result.hint = hint ?? info.hint;
  result.host = host;
}

/** Probe one target (an image reference or a bare registry host). Never throws. */
export async function probeTarget(input: string, env: ProbeEnvironment, opts: ProbeOptions = {}): Promise<ProbeResult> {
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
  };

  const onOuterAbort = (): void => controller.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (opts.signal?.aborted) controller.abort();
  try {
    return await probeWithin(input, env, opts, ctx, controller);
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function probeWithin(
  input: string, env: ProbeEnvironment, opts: ProbeOptions, ctx: ProbeContext, controller: AbortController,
): Promise<ProbeResult> {
  const clock = ctx.clock;
  const t0 = ctx.deadlineAt - (opts.timeoutMs ?? 10_000);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const parsed = parseTarget(input, opts.kind);
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
  const refDetail = target.kind === 'image'
    ? { image: target.ref.normalized, endpoint: target.ref.endpoint }
    : { registry: target.registry, endpoint: target.endpoint };
  result.steps.push({ stage: 'reference', ok: true, seconds: refSeconds, detail: refDetail });

  const run: Run = { ctx, env, opts, steps: result.steps, current: { stage: 'dns' } };
  // Safety net: whatever a stage or server does, the probe ends at its deadline.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve('deadline');
    }, timeoutMs + 50);
  });
  let failure: Failure | null | 'deadline';
  try {
    failure = await Promise.race([walk(run, target), deadline]);
  } catch (err) {
    ctx.log.error({ err: (err as Error).message, target: input }, 'probe stage threw');
    failure = 'deadline';
  } finally {
    clearTimeout(timer);
    controller.abort();
  }

  if (failure === 'deadline') {
    const reason = TIMEOUT_REASON[run.current.stage];
    result.steps.push({ stage: run.current.stage, ok: false, seconds: round((clock.now() - t0) / 1000), reason, message: REASONS[reason].message, ...(run.current.host ? { host: run.current.host } : {}) });
    fail(result, reason, undefined, undefined, run.current.host ?? null);
  } else if (failure) {
    const o = failure.outcome;
    const reason = o.reason ?? TIMEOUT_REASON[failure.stage];
    fail(result, reason, o.message, o.hint, o.host ?? null);
  }
  result.degraded = result.ok && result.steps.some((s) => s.degraded === true);
  result.seconds = round((clock.now() - t0) / 1000);
  return result;
}

/** Probe several targets with bounded concurrency; results keep the input order. */
export async function probeTargets(inputs: string[], env: ProbeEnvironment, opts: ProbeOptions = {}, concurrency = 4): Promise<ProbeResult[]> {
  const results: ProbeResult[] = new Array(inputs.length);
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
