/**
 * Prometheus metrics (design.md "Metrics"). `AgentMetrics` holds the cached
 * gauges and counters fed by the periodic probes, on its own registry;
 * `probeRegistry()` builds the fresh per-request registry that /probe
 * answers with (blackbox style).
 *
 * Labels come only from closed sets (stage, reason, cause) or from the
 * configuration (target strings, registry hosts, resolv.conf nameservers).
 * Several steps of one stage in a result (the registry's DNS and the token
 * service's DNS) are summed into one stage duration, as blackbox sums
 * redirects into one phase.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { causeOf, type Cause, type Reason, type Stage } from '../diagnosis/catalog.js';
import { parseTarget, type Target } from '../model/reference.js';
import type { ProbeResult, StepResult } from '../model/types.js';
import { rateLimitValues } from './rate-limit-values.js';
import { credentialExpiries } from './credential-expiry.js';

const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * prom-client samples event-loop delay with perf_hooks.monitorEventLoopDelay at
 * this resolution. Its default, 10 ms, wakes an idle agent 100 times a second
 * (6.7 ms of CPU per second measured, against 0.03 for bare Node); at 1 s the
 * nodejs_eventloop_lag_* series still show a blocked loop (a delay is how late
 * the 1 s sample fires), for one wake-up a second.
 */
export const EVENT_LOOP_PRECISION_MS = 1000;

export type CollectDefaults = (config: { register: Registry; eventLoopMonitoringPrecision: number }) => void;

const CACHED = '(cached from the last periodic probe)';

/** rcodes meaning the nameserver answered (the name may still not exist). */
const ANSWERED_RCODES = new Set(['NOERROR', 'NXDOMAIN']);

export interface NodeInfo {
  node: string;
  subnet: string | null;
  zone: string | null;
}

export interface AgentMetricsOptions {
  /** process_* and nodejs_* metrics on this registry; default true. */
  defaultMetrics?: boolean;
  /** Registry host of a target before its first result (for precreate); default: parsed from the target string. */
  registryOf?: (target: string) => string | null;
  /** Registers the default metrics (tests); default prom-client's collectDefaultMetrics. */
  collectDefaults?: CollectDefaults;
}

interface FailureLabels {
  stage: Stage;
  reason: Reason;
  cause: Cause;
}

interface TargetState {
  registry: string;
  stages: Set<Stage>;
  failure: FailureLabels | null;
  failureReasons: Set<Reason>;
  tlsHosts: Set<string>;
  nameservers: Set<string>;
  /** Credential sources with a known expiry last reported for this target. */
  credentialSources: Set<string>;
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly targets = new Map<string, TargetState>();
  private readonly registryOf: (target: string) => string | null;
  private nodeInfoLabels: Record<string, string> | null = null;
  /** The configured targets once setTargets was called; results for others are ignored. */
  private configured: Set<string> | null = null;

  private readonly up: Gauge<'registry' | 'target'>;
  private readonly stageDuration: Gauge<'registry' | 'target' | 'stage'>;
  private readonly failureInfo: Gauge<'registry' | 'target' | 'stage' | 'reason' | 'cause'>;
  private readonly degraded: Gauge<'registry' | 'target'>;
  private readonly lastProbe: Gauge<'registry' | 'target'>;
  private readonly lastSuccess: Gauge<'registry' | 'target'>;
  private readonly certExpiry: Gauge<'registry' | 'host'>;
  private readonly credentialExpiry: Gauge<'registry' | 'source'>;
  private readonly nameserverUp: Gauge<'nameserver'>;
  private readonly rateLimitRemaining: Gauge<'registry' | 'target'>;
  private readonly rateLimitLimit: Gauge<'registry' | 'target'>;
  private readonly probes: Counter<'registry' | 'target'>;
  private readonly failures: Counter<'registry' | 'target' | 'reason'>;
  private readonly nodeInfo: Gauge<'node' | 'subnet' | 'zone'>;
  private readonly reloadSuccess: Gauge;
  private readonly reloadTimestamp: Gauge;
  private readonly discoveredImages: Gauge<'registry'>;

  constructor(opts: AgentMetricsOptions = {}) {
    this.registryOf = opts.registryOf ?? registryOfTarget;
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) {
      (opts.collectDefaults ?? collectDefaultMetrics)({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
      // prom-client names these gauges *_total, which `promtool check metrics`
      // rejects; the per-type gauges (nodejs_active_handles{type}, …) stay.
      for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
    }
    const rt = ['registry', 'target'] as const;
    this.up = new Gauge({
      name: 'pullprobe_registry_up',
      help: `1 if the whole pull path to the target worked, else 0 ${CACHED}.`,
      labelNames: rt,
      registers,
    });
    this.stageDuration = new Gauge({
      name: 'pullprobe_stage_duration_seconds',
      help: `Seconds spent in each stage of the pull path ${CACHED}.`,
      labelNames: [...rt, 'stage'],
      registers,
    });
    this.failureInfo = new Gauge({
      name: 'pullprobe_failure_info',
      help: `1 while the target fails, naming the first failing stage, its reason and cause; absent when ok ${CACHED}.`,
      labelNames: [...rt, 'stage', 'reason', 'cause'],
      registers,
    });
    this.degraded = new Gauge({
      name: 'pullprobe_degraded',
      help: `1 if the target works but part of its path is broken (a nameserver, an address, a mirror) ${CACHED}.`,
      labelNames: rt,
      registers,
    });
    this.lastProbe = new Gauge({
      name: 'pullprobe_last_probe_timestamp_seconds',
      help: `Unix time the last periodic probe of the target finished ${CACHED}.`,
      labelNames: rt,
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'pullprobe_last_success_timestamp_seconds',
      help: `Unix time of the last successful periodic probe of the target ${CACHED}.`,
      labelNames: rt,
      registers,
    });
    this.certExpiry = new Gauge({
      name: 'pullprobe_tls_cert_expiry_timestamp_seconds',
      help: `Unix time the earliest certificate in the host's chain expires ${CACHED}.`,
      labelNames: ['registry', 'host'],
      registers,
    });
    this.credentialExpiry = new Gauge({
      name: 'pullprobe_credential_expiry_timestamp_seconds',
      help: `Unix time the credentials used for the registry stop working, where knowable (credential provider cacheDuration, an ECR token's expiry, the registry token's expires_in as source "token") ${CACHED}.`,
      labelNames: ['registry', 'source'],
      registers,
    });
    this.nameserverUp = new Gauge({
      name: 'pullprobe_dns_nameserver_up',
      help: `1 if the resolv.conf nameserver answered (NOERROR or NXDOMAIN), else 0 ${CACHED}.`,
      labelNames: ['nameserver'],
      registers,
    });
    const fromHeaders =
      "from the registry's RateLimit headers, e.g. Docker Hub's ratelimit-remaining: 20;w=21600; absent when the registry sends none";
    this.rateLimitRemaining = new Gauge({
      name: 'pullprobe_ratelimit_remaining',
      help: `Pulls left in the registry's rate-limit window, ${fromHeaders} ${CACHED}.`,
      labelNames: rt,
      registers,
    });
    this.rateLimitLimit = new Gauge({
      name: 'pullprobe_ratelimit_limit',
      help: `Pulls allowed per rate-limit window, ${fromHeaders} ${CACHED}.`,
      labelNames: rt,
      registers,
    });
    this.probes = new Counter({
      name: 'pullprobe_probes_total',
      help: 'Periodic probes of the target.',
      labelNames: rt,
      registers,
    });
    this.failures = new Counter({
      name: 'pullprobe_probe_failures_total',
      help: 'Failed periodic probes of the target, by reason.',
      labelNames: [...rt, 'reason'],
      registers,
    });
    this.nodeInfo = new Gauge({
      name: 'pullprobe_node_info',
      help: 'Always 1; the node this agent runs on, its subnet and zone (join on instance).',
      labelNames: ['node', 'subnet', 'zone'],
      registers,
    });
    this.reloadSuccess = new Gauge({
      name: 'pullprobe_config_reload_success',
      help: '1 if the last configuration (re)load succeeded, else 0.',
      registers,
    });
    this.reloadTimestamp = new Gauge({
      name: 'pullprobe_config_last_reload_timestamp_seconds',
      help: 'Unix time of the last successful configuration (re)load.',
      registers,
    });
    this.discoveredImages = new Gauge({
      name: 'pullprobe_discovered_images',
      help: 'Distinct images of the pods on this node, by registry (pod discovery on).',
      labelNames: ['registry'],
      registers,
    });
  }

  /** Pod discovery's current count of images per registry; registries no longer used drop out. */
  setDiscoveredImages(counts: ReadonlyMap<string, number>): void {
    this.discoveredImages.reset();
    for (const [registry, n] of counts) this.discoveredImages.set({ registry }, n);
  }

  /** Exposition text of the whole registry. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  setNodeInfo(info: NodeInfo): void {
    if (this.nodeInfoLabels) this.nodeInfo.remove(this.nodeInfoLabels);
    this.nodeInfoLabels = { node: info.node, subnet: info.subnet ?? '', zone: info.zone ?? '' };
    this.nodeInfo.set(this.nodeInfoLabels, 1);
  }

  setConfigReload(ok: boolean, wallNowSeconds: number): void {
    this.reloadSuccess.set(ok ? 1 : 0);
    if (ok) this.reloadTimestamp.set(wallNowSeconds);
  }

  /**
   * Pre-create the probe counter for configured targets so rate() works from
   * the first scrape. `pullprobe_registry_up` is deliberately left absent
   * until the first result: a pre-created 0 would read as "down".
   */
  precreate(targets: ReadonlyArray<string | Target>): void {
    for (const t of targets) {
      const target = typeof t === 'string' ? t : t.input;
      const state = this.state(target, (typeof t === 'string' ? this.registryOf(t) : registryOfParsed(t)) ?? '');
      this.probes.inc({ registry: state.registry, target }, 0);
    }
  }

  /**
   * The configured targets, at start and on every reload: series of targets
   * no longer listed are dropped, the listed ones pre-created, and from now on
   * a result for an unlisted target (a probe still in flight when a reload
   * removed it) is ignored instead of bringing its series back.
   */
  setTargets(targets: ReadonlyArray<string | Target>): void {
    this.configured = new Set(targets.map((t) => (typeof t === 'string' ? t : t.input)));
    for (const target of [...this.targets.keys()]) {
      if (!this.configured.has(target)) this.forgetTarget(target);
    }
    this.precreate(targets);
  }

  /** Fold one periodic result into the cached series; false when the target is not configured (dropped). */
  record(target: string, result: ProbeResult, wallNowSeconds: number): boolean {
    if (this.configured && !this.configured.has(target)) return false;
    const registry = result.registry ?? this.targets.get(target)?.registry ?? this.registryOf(target) ?? '';
    const state = this.state(target, registry);
    const rt = { registry, target };

    this.up.set(rt, result.ok ? 1 : 0);
    this.degraded.set(rt, result.degraded ? 1 : 0);
    this.lastProbe.set(rt, wallNowSeconds);
    if (result.ok) this.lastSuccess.set(rt, wallNowSeconds);
    this.probes.inc(rt);

    const durations = stageSeconds(result.steps);
    for (const stage of state.stages) {
      if (!durations.has(stage)) this.stageDuration.remove({ ...rt, stage });
    }
    for (const [stage, seconds] of durations) this.stageDuration.set({ ...rt, stage }, seconds);
    state.stages = new Set(durations.keys());

    const failure = failureLabels(result);
    if (state.failure && !sameFailure(state.failure, failure)) {
      this.failureInfo.remove({ ...rt, ...state.failure });
    }
    state.failure = failure;
    if (failure) {
      this.failureInfo.set({ ...rt, ...failure }, 1);
      this.failures.inc({ ...rt, reason: failure.reason });
      state.failureReasons.add(failure.reason);
    }

    const rl = rateLimitValues(result.steps);
    for (const [gauge, value] of [
      [this.rateLimitRemaining, rl.remaining],
      [this.rateLimitLimit, rl.limit],
    ] as const) {
      if (value === undefined) gauge.remove(rt);
      else gauge.set(rt, value);
    }

    this.recordTls(state, result.steps);
    this.recordNameservers(state, result.steps);
    this.recordCredentialExpiry(state, credentialExpiries(result, wallNowSeconds));
    return true;
  }

  /** Drop every series of a target no longer configured. */
  forgetTarget(target: string): void {
    const state = this.targets.get(target);
    if (!state) return;
    const rt = { registry: state.registry, target };
    for (const g of [this.up, this.degraded, this.lastProbe, this.lastSuccess, this.rateLimitRemaining, this.rateLimitLimit]) g.remove(rt);
    this.probes.remove(rt);
    for (const stage of state.stages) this.stageDuration.remove({ ...rt, stage });
    if (state.failure) this.failureInfo.remove({ ...rt, ...state.failure });
    for (const reason of state.failureReasons) this.failures.remove({ ...rt, reason });
    this.targets.delete(target);
    this.releaseTls(state.registry, state.tlsHosts);
    this.releaseNameservers(state.nameservers);
    this.releaseCredentialExpiry(state.registry, state.credentialSources);
  }

  private recordCredentialExpiry(state: TargetState, expiries: Map<string, number>): void {
    const dropped = new Set([...state.credentialSources].filter((s) => !expiries.has(s)));
    state.credentialSources = new Set(expiries.keys());
    for (const [source, at] of expiries) this.credentialExpiry.set({ registry: state.registry, source }, at);
    this.releaseCredentialExpiry(state.registry, dropped);
  }

  /** Remove expiry series that no target of the registry still reports. */
  private releaseCredentialExpiry(registry: string, sources: Set<string>): void {
    for (const source of sources) {
      const used = [...this.targets.values()].some((s) => s.registry === registry && s.credentialSources.has(source));
      if (!used) this.credentialExpiry.remove({ registry, source });
    }
  }

  private state(target: string, registry: string): TargetState {
    const existing = this.targets.get(target);
    if (existing && existing.registry === registry) return existing;
    if (existing) this.forgetTarget(target);
    const fresh: TargetState = {
      registry,
      stages: new Set(),
      failure: null,
      failureReasons: new Set(),
      tlsHosts: new Set(),
      nameservers: new Set(),
      credentialSources: new Set(),
    };
    this.targets.set(target, fresh);
    return fresh;
  }

  private recordTls(state: TargetState, steps: readonly StepResult[]): void {
    const expiries = tlsExpiries(steps);
    const dropped = new Set([...state.tlsHosts].filter((h) => !expiries.has(h)));
    state.tlsHosts = new Set(expiries.keys());
    for (const [host, expiry] of expiries) this.certExpiry.set({ registry: state.registry, host }, expiry);
    this.releaseTls(state.registry, dropped);
  }

  /** Remove cert series that no target still reports. */
  private releaseTls(registry: string, hosts: Set<string>): void {
    for (const host of hosts) {
      const used = [...this.targets.values()].some((s) => s.registry === registry && s.tlsHosts.has(host));
      if (!used) this.certExpiry.remove({ registry, host });
    }
  }

  private recordNameservers(state: TargetState, steps: readonly StepResult[]): void {
    const seen = nameserverStates(steps);
    if (seen.size === 0) return; // no dns step ran (bad reference): keep what we knew
    const dropped = new Set([...state.nameservers].filter((n) => !seen.has(n)));
    state.nameservers = new Set(seen.keys());
    for (const [nameserver, up] of seen) this.nameserverUp.set({ nameserver }, up ? 1 : 0);
    this.releaseNameservers(dropped);
  }

  private releaseNameservers(nameservers: Set<string>): void {
    for (const nameserver of nameservers) {
      const used = [...this.targets.values()].some((s) => s.nameservers.has(nameserver));
      if (!used) this.nameserverUp.remove({ nameserver });
    }
  }
}

/** Fresh registry for one on-demand probe (GET /probe), blackbox style. */
export function probeRegistry(result: ProbeResult): Registry {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: 'probe_success',
    help: 'Whether the probe succeeded (1) or not (0).',
    registers,
  }).set(result.ok ? 1 : 0);
  new Gauge({
    name: 'probe_duration_seconds',
    help: 'Seconds the probe took.',
    registers,
  }).set(result.seconds);
  const stage = new Gauge({
    name: 'pullprobe_probe_stage_duration_seconds',
    help: 'Seconds spent in each stage of this probe.',
    labelNames: ['stage'],
    registers,
  });
  for (const [s, seconds] of stageSeconds(result.steps)) stage.set({ stage: s }, seconds);
  const failureInfo = new Gauge({
    name: 'pullprobe_probe_failure_info',
    help: 'Present (1) when this probe failed: first failing stage, reason and cause.',
    labelNames: ['stage', 'reason', 'cause'],
    registers,
  });
  const failure = failureLabels(result);
  if (failure) failureInfo.set({ ...failure }, 1);
  new Gauge({
    name: 'pullprobe_probe_degraded',
    help: 'Whether this probe succeeded with part of the path broken.',
    registers,
  }).set(result.degraded ? 1 : 0);
  const cert = new Gauge({
    name: 'pullprobe_probe_tls_cert_expiry_timestamp_seconds',
    help: "Unix time the earliest certificate in the host's chain expires.",
    labelNames: ['host'],
    registers,
  });
  for (const [host, expiry] of tlsExpiries(result.steps)) cert.set({ host }, expiry);
  const ns = new Gauge({
    name: 'pullprobe_probe_dns_nameserver_up',
    help: 'Whether each resolv.conf nameserver answered during this probe.',
    labelNames: ['nameserver'],
    registers,
  });
  for (const [nameserver, up] of nameserverStates(result.steps)) ns.set({ nameserver }, up ? 1 : 0);
  return registry;
}

/** The registry host a target string names ("docker.io" for "nginx"), or null if it does not parse. */
export function registryOfTarget(target: string): string | null {
  const p = parseTarget(target);
  return p.ok ? registryOfParsed(p.target) : null;
}

/** The registry host of a parsed target (the registry's namespace host for an image). */
export function registryOfParsed(target: Target): string {
  return target.kind === 'registry' ? target.registry : target.ref.registry;
}

function failureLabels(result: ProbeResult): FailureLabels | null {
  if (result.ok || !result.stage || !result.reason) return null;
  return { stage: result.stage, reason: result.reason, cause: result.cause ?? causeOf(result.reason) };
}

function sameFailure(a: FailureLabels, b: FailureLabels | null): boolean {
  return b !== null && a.stage === b.stage && a.reason === b.reason && a.cause === b.cause;
}

/** Seconds per stage, summed over steps of the same stage, in step order. */
export function stageSeconds(steps: readonly StepResult[]): Map<Stage, number> {
  const out = new Map<Stage, number>();
  for (const step of steps) out.set(step.stage, (out.get(step.stage) ?? 0) + step.seconds);
  return out;
}

/** Earliest certificate expiry (Unix seconds) per TLS host, from the tls steps' earliestExpirySeconds. */
export function tlsExpiries(steps: readonly StepResult[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const step of steps) {
    if (step.stage !== 'tls' || !step.host || step.detail === undefined || !('earliestExpirySeconds' in step.detail)) continue;
    const expiry = step.detail.earliestExpirySeconds;
    if (!Number.isFinite(expiry)) continue; // present means a number (exactOptionalPropertyTypes)
    const prev = out.get(step.host);
    out.set(step.host, prev === undefined ? expiry : Math.min(prev, expiry));
  }
  return out;
}

/**
 * Whether each nameserver answered, from the dns steps' nameservers
 * ([{server, rcode}]). A server is up only if it answered in every dns step.
 */
export function nameserverStates(steps: readonly StepResult[]): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const step of steps) {
    if (step.stage !== 'dns' || step.detail === undefined || !('nameservers' in step.detail)) continue;
    for (const { server, rcode } of step.detail.nameservers) {
      if (server === '') continue;
      const up = rcode !== null && ANSWERED_RCODES.has(rcode);
      out.set(server, (out.get(server) ?? true) && up);
    }
  }
  return out;
}
