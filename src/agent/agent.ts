/**
 * The DaemonSet process: wires config → scheduler → probe chain → metrics,
 * status store, node writer and the HTTP server. Everything here is plumbing;
 * each piece is its own module with its own tests.
 */
import { readFile } from 'node:fs/promises';
import { pino, type DestinationStream, type Logger } from 'pino';
import { ConfigHolder, defaultEnv, loadConfig, type AgentConfig, type ConfigEnv, type TargetConfig } from './config.js';
import { Scheduler } from './scheduler.js';
import { AgentMetrics } from './metrics.js';
import { StatusStore } from './status-store.js';
import { createServer, type AgentServer } from './server.js';
import { resolveNodeIdentity, type NodeIdentity } from './node-identity.js';
import { EnvironmentCache, loadEnvironment, type ProbeEnvironment } from '../node-config/environment.js';
import { RoadCache, type RoadOptions } from '../node-config/road.js';
import { probeTarget } from '../probe/chain.js';
import { TokenCache } from '../probe/token-cache.js';
import { createProbeCaches } from '../probe/probe-caches.js';
import type { ProbeResult } from '../model/types.js';
import { parseTarget, type Target } from '../model/reference.js';
import { loadInClusterConfig, TokenSource, type InClusterOptions } from '../kube/in-cluster.js';
import { createKubeClient, type KubeClient, type KubeReader } from '../kube/client.js';
import { NodeWriter } from '../kube/node-writer.js';
import { PodWatch } from '../kube/pod-watch.js';
import { PodDiscovery } from './discovery.js';

export interface AgentOptions {
  configPath: string;
  env?: ConfigEnv;
  /** Process environment for identity (HOST_IP) and in-cluster detection. */
  processEnv?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Where the service-account files and KUBERNETES_SERVICE_* come from (tests). */
  inCluster?: InClusterOptions;
  /** How often the config file is re-read for changes (ConfigMap updates); 0 = only on SIGHUP. */
  reloadCheckMs?: number;
  /** Grace for in-flight probes on stop. */
  stopGraceMs?: number;
  /** Reads the config file (start, reload and the change poll); default fs.readFile. */
  readConfig?: (path: string) => Promise<string>;
}

export type StartResult = { ok: true; agent: Agent } | { ok: false; errors: string[] };

/** Secrets never logged: belt and braces on top of never passing them to the logger. */
/** Node files are checked for changes at most once a second (not on every probe). */
export const ENV_RECHECK_MS = 1000;

const REDACT = ['password', 'token', 'authorization', 'auth', '*.password', '*.token', '*.authorization', '*.auth'];

/**
 * The agent's JSON logger. Levels are written as words (`"level":"warn"`, not
 * pino's numbers), so operators can grep them.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { component: 'pullprobe' },
    redact: { paths: REDACT, censor: '[redacted]' },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

function errorText(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unprintable error';
  }
}

export class Agent {
  /** Every configured target has a result (logged once); readiness does not wait for it. */
  private firstCycleDone = false;
  private stopping: Promise<void> | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private lastConfigText: string | null = null;
  private lastEnv: ProbeEnvironment;
  private envError: string | null = null;
  /** Index summaries and TLS contexts, kept for the agent's life (tokens: `tokens`). */
  private readonly caches = createProbeCaches();
  /** The node's files, re-read only when they change (environment.ts), and the runtime's road (road.ts). */
  private readonly envCache = new EnvironmentCache({ recheckMs: ENV_RECHECK_MS });
  private readonly roadCache: RoadCache;
  private roadProblems = '';
  private criDisabled: string | null = null;
  /** Registries found on this node's pods and not configured: probed like configured registry targets. */
  private discoveredTargets: TargetConfig[] = [];
  /** Each target string parsed once when the targets change, then passed on parsed (probe, metrics). */
  private parsed = new Map<string, Target>();
  private podWatch: PodWatch | null = null;
  private discovery: PodDiscovery | null = null;

  private constructor(
    private readonly holder: ConfigHolder,
    private readonly opts: AgentOptions,
    readonly log: Logger,
    readonly metrics: AgentMetrics,
    readonly store: StatusStore,
    private readonly scheduler: Scheduler,
    private readonly server: AgentServer,
    readonly writer: NodeWriter,
    private readonly kube: KubeClient | null,
    readonly identity: NodeIdentity,
    private readonly tokens: TokenCache,
    env: ProbeEnvironment,
    readonly port: number,
  ) {
    this.lastEnv = env;
    // The provider plugins run with this process's environment (plus their config's), as the kubelet's do with its own.
    this.roadCache = new RoadCache({ env: opts.processEnv ?? process.env });
  }

  get config(): AgentConfig {
    return this.holder.current;
  }

  /** Ready = serving and every target's first probe scheduled (the first cycle is spread over the jitter window, not awaited). */
  get ready(): boolean {
    return this.scheduler.scheduled;
  }

  /** Validate everything, then start probing. Config errors come back, nothing is probed. */
  static async start(opts: AgentOptions): Promise<StartResult> {
    const cenv = opts.env ?? defaultEnv();
    const loadOpts = { env: cenv, ...(opts.readConfig ? { readFile: opts.readConfig } : {}) };
    const loaded = await loadConfig(opts.configPath, loadOpts);
    if (!loaded.ok) return { ok: false, errors: loaded.errors };
    const config = loaded.config;
    let env: ProbeEnvironment;
    try {
      env = loadEnvironment(environmentOptions(config));
    } catch (err) {
      return { ok: false, errors: [(err as Error).message] };
    }
    const log = opts.log ?? createLogger(config.logLevel);
    const holder = new ConfigHolder(opts.configPath, config, loadOpts);
    const processEnv = opts.processEnv ?? process.env;

    // Kubernetes: on in a cluster, off (said once) outside.
    const ic = loadInClusterConfig({ env: processEnv, ...opts.inCluster });
    let kube: (KubeClient & KubeReader) | null = null;
    if (ic.ok) {
      kube = createKubeClient({ server: ic.config.server, caPem: ic.config.caPem, tokens: new TokenSource(ic.config.tokenFile) });
    }
    const identity = await resolveNodeIdentity({
      client: kube,
      configuredNode: config.node,
      configuredSubnet: config.subnet ?? null,
      env: processEnv,
      log,
    });
    const writer = new NodeWriter({
      client: kube,
      ...(ic.ok ? {} : { disabledReason: ic.message }),
      node: identity.name,
      subnet: identity.subnet,
      zone: identity.zone,
      uid: identity.uid,
      initialNode: identity.node,
      outputs: config.outputs,
      expectedTargets: config.targets.map((t) => t.target),
      log,
    });

    const metrics = new AgentMetrics();
    const store = new StatusStore();
    const info = { node: identity.name, subnet: identity.subnet, zone: identity.zone };
    metrics.setNodeInfo(info);
    store.setNode(info);
    metrics.setTargets(config.targets.map((t) => parsedTarget(t)));
    store.setTargets(config.targets.map((t) => t.target));
    metrics.setConfigReload(true, Date.now() / 1000);

    const tokens = new TokenCache();
    // The scheduler calls back into the agent; bind late through a holder.
    const self: { agent?: Agent } = {};
    const scheduler = new Scheduler({
      targets: config.targets,
      concurrency: config.concurrency,
      node: identity.name,
      log,
      run: async (t, signal) => self.agent?.periodic(t, signal),
    });
    const server = createServer({
      metrics,
      store,
      log,
      probeNow: (target, timeoutMs) => {
        const agent = self.agent;
        if (!agent) throw new Error('agent not started');
        return agent.probe(agent.targetConfig(target), timeoutMs);
      },
      allowed: () => holder.current.targets,
      effectiveConfig: () => ({ ...holder.current, node: identity.name, subnet: identity.subnet, zone: identity.zone }),
      ready: () => self.agent?.ready ?? false,
      discovered: () => self.agent?.discovered ?? [],
    });
    let port: number;
    try {
      port = (await server.listen(config.listen.host, config.listen.port)).port;
    } catch (err) {
      await kube?.close();
      return {
        ok: false,
        errors: [
          `listen: cannot listen on ${config.listen.host || '*'}:${config.listen.port}: ${(err as { code?: string }).code ?? (err as Error).message}`,
        ],
      };
    }
    const agent = new Agent(holder, opts, log, metrics, store, scheduler, server, writer, kube, identity, tokens, env, port);
    self.agent = agent;
    agent.parseTargets(config.targets);
    writer.start();
    scheduler.start();
    agent.watchConfig();
    agent.startDiscovery(kube);
    log.info(
      {
        node: identity.name,
        subnet: identity.subnet,
        zone: identity.zone,
        targets: config.targets.length,
        port,
        kubernetes: kube !== null,
      },
      'agent started',
    );
    return { ok: true, agent };
  }

  /** Pod discovery (`discover.pods`): watch this node's Pods, probe their registries, tell failing pods. */
  private startDiscovery(reader: KubeReader | null): void {
    if (!this.config.discover?.pods) return;
    if (!reader || !this.kube) {
      this.log.warn({}, 'pod discovery is configured but the agent is not in a cluster: discovery off');
      return;
    }
    const kube = this.kube;
    const discovery = new PodDiscovery({
      node: this.identity.name,
      subnet: this.identity.subnet,
      log: this.log,
      probeImage: (image) =>
        this.probe(
          { target: image, kind: 'image', intervalMs: this.config.intervalMs, timeoutMs: this.config.timeoutMs, jitter: 0 },
          this.config.timeoutMs,
        ),
      createEvent: (ns, ev) => kube.createEvent(ns, ev),
      onRegistries: (counts) => {
        this.metrics.setDiscoveredImages(counts);
        this.setDiscovered([...counts.keys()]);
      },
    });
    this.discovery = discovery;
    this.podWatch = new PodWatch({
      reader,
      node: this.identity.name,
      log: this.log,
      onChange: (pods) => discovery.update(pods),
      onForbidden: () =>
        this.log.warn(
          { node: this.identity.name },
          'pod discovery off: no permission to list pods (apply the pod-discovery component); the agent runs on without it',
        ),
    });
    this.podWatch.start();
    this.log.info({ node: this.identity.name }, 'pod discovery on');
  }

  /** Configured targets plus discovered registries that are not configured already. */
  allTargets(): TargetConfig[] {
    return [...this.config.targets, ...this.discoveredTargets];
  }

  /** Discovered registries (sorted, without those configured as targets). */
  get discovered(): string[] {
    return this.discoveredTargets.map((t) => t.target);
  }

  private setDiscovered(registries: string[]): void {
    const configured = new Set(this.config.targets.map((t) => t.target));
    const cfg = this.config;
    this.discoveredTargets = registries
      .filter((r) => !configured.has(r))
      .sort()
      .map((target) => ({ target, kind: 'registry' as const, intervalMs: cfg.intervalMs, timeoutMs: cfg.timeoutMs, jitter: cfg.jitter }));
    this.applyTargets();
  }

  /** The parsed form of a configured (or discovered) target, as probes and metrics receive it. */
  parsedTarget(target: string): Target | undefined {
    return this.parsed.get(target);
  }

  /** Parse each target string once when the targets change (not per probe, not per series). */
  private parseTargets(all: readonly TargetConfig[]): void {
    const parsed = new Map<string, Target>();
    for (const t of all) {
      const p = parsedTarget(t, this.parsed);
      if (typeof p !== 'string') parsed.set(t.target, p);
    }
    this.parsed = parsed;
  }

  private applyTargets(): void {
    const all = this.allTargets();
    const names = all.map((t) => t.target);
    this.parseTargets(all);
    this.metrics.setTargets(all.map((t) => this.parsed.get(t.target) ?? t.target));
    this.store.setTargets(names);
    this.writer.setTargets(names);
    this.scheduler.updateTargets(all);
  }

  /** The configured target for a /probe request (registry= of an image target probes the registry). */
  private targetConfig(target: string): TargetConfig {
    const found = this.config.targets.find((t) => t.target === target);
    return found ?? { target, kind: 'registry', intervalMs: this.config.intervalMs, timeoutMs: this.config.timeoutMs, jitter: 0 };
  }

  /** One probe with the node's current files (resolv.conf is re-read every time). */
  async probe(t: TargetConfig, timeoutMs: number, signal?: AbortSignal, pull = false): Promise<ProbeResult> {
    let env = this.lastEnv;
    try {
      env = loadEnvironment(environmentOptions(this.config), this.envCache);
      env.road = this.roadCache.load(roadOptions(this.config));
      // containerd's config, the kubelet's credential sources, the proxy: what could not be read, once per change.
      const roadProblems = env.road.problems.join('\n');
      if (roadProblems !== this.roadProblems) {
        if (env.road.problems.length > 0) this.log.warn({ problems: env.road.problems }, 'node runtime configuration problems');
        else if (this.roadProblems) this.log.info({}, 'node runtime configuration readable again');
        this.roadProblems = roadProblems;
      }
      if (env.road.criDisabled && env.road.criDisabled !== this.criDisabled)
        this.log.error({ problem: env.road.criDisabled }, 'containerd CRI plugin disabled');
      this.criDisabled = env.road.criDisabled;
      this.lastEnv = env;
      if (this.envError) this.log.info({}, 'node files readable again');
      this.envError = null;
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== this.envError) this.log.warn({ error: msg }, 'cannot re-read node files; probing with the last good ones');
      this.envError = msg;
    }
    return probeTarget(this.parsed.get(t.target) ?? t.target, env, {
      timeoutMs,
      kind: t.kind,
      caches: this.caches,
      tokenCache: this.tokens,
      log: this.log,
      ...(pull && t.pull === true ? { pull: true } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  private async periodic(t: TargetConfig, signal: AbortSignal): Promise<void> {
    // A target's `pull: true` pulls through the CRI on the periodic probe only, never for a /probe request.
    const result = await this.probe(t, t.timeoutMs, signal, true);
    if (signal.aborted && this.stopping) return;
    if (!this.allTargets().some((c) => c.target === t.target)) {
      // A reload removed the target while it was being probed: its result would be a ghost.
      this.log.debug({ target: t.target }, 'result dropped: target no longer configured');
      return;
    }
    const before = this.store.get(t.target)?.result ?? null;
    this.metrics.record(t.target, result, Date.now() / 1000);
    const { changed } = this.store.update(t.target, result);
    this.writer.update([result]);
    if (changed) {
      const fields = {
        target: t.target,
        registry: result.registry,
        ok: result.ok,
        stage: result.stage,
        reason: result.reason,
        cause: result.cause,
        host: result.host,
        message: result.message,
        degraded: result.degraded,
      };
      if (result.ok) this.log.info(fields, before ? 'target reachable again' : 'target reachable');
      else this.log.warn(fields, 'target failing');
    }
    if (!this.firstCycleDone && this.config.targets.every((c) => this.store.get(c.target)?.result)) {
      this.firstCycleDone = true;
      this.log.info({}, 'first probe cycle complete');
    }
  }

  /**
   * SIGHUP or a changed file: keep the old config when the new one is invalid.
   * Never rejects: anything thrown while reloading is logged and counted as a
   * failed reload, so a fire-and-forget caller cannot crash the process.
   */
  async reload(): Promise<{ ok: boolean; errors?: string[] }> {
    const before = this.config;
    try {
      return await this.reloadOnce();
    } catch (err) {
      const errors = [`internal error while reloading ${this.opts.configPath}: ${errorText(err)}`];
      try {
        this.metrics.setConfigReload(false, Date.now() / 1000);
        if (this.config === before) this.log.error({ errors }, 'config reload failed; keeping the previous config');
        else this.log.error({ errors }, 'config reload failed after the new config was accepted; send SIGHUP again or restart');
      } catch {
        // nothing left to report to
      }
      return { ok: false, errors };
    }
  }

  private async reloadOnce(): Promise<{ ok: boolean; errors?: string[] }> {
    const before = this.config;
    // Remember what was read, so the file poll does not reload the same text again.
    this.lastConfigText = await this.readConfig().catch(() => this.lastConfigText);
    const r = await this.holder.reload();
    const now = Date.now() / 1000;
    if (!r.ok) {
      this.metrics.setConfigReload(false, now);
      this.log.error({ errors: r.errors }, 'config reload failed; keeping the previous config');
      return { ok: false, errors: r.errors };
    }
    this.metrics.setConfigReload(true, now);
    if (!r.changed) return { ok: true };
    const cfg = r.config;
    if (this.discovery) this.setDiscovered([...this.discovery.registries().keys()]);
    else this.applyTargets();
    const restartOnly = (['listen', 'node', 'subnet', 'concurrency', 'outputs', 'discover'] as const).filter(
      (k) => JSON.stringify(before[k]) !== JSON.stringify(cfg[k]),
    );
    if (restartOnly.length) this.log.warn({ keys: restartOnly }, 'these settings take effect on restart');
    this.log.info({ targets: cfg.targets.length }, 'config reloaded');
    return { ok: true };
  }

  /** The config file's text; a reader that throws instead of rejecting is turned into a rejection. */
  private async readConfig(): Promise<string> {
    const read = this.opts.readConfig ?? ((p: string) => readFile(p, 'utf8'));
    return read(this.opts.configPath);
  }

  private watchConfig(): void {
    const every = this.opts.reloadCheckMs ?? 30_000;
    if (every <= 0) return;
    this.readConfig().then(
      (t) => {
        this.lastConfigText = t;
      },
      () => undefined,
    );
    this.reloadTimer = setInterval(() => {
      this.readConfig()
        .then(
          async (text) => {
            if (this.lastConfigText === null) this.lastConfigText = text;
            else if (text !== this.lastConfigText) await this.reload();
          },
          () => undefined,
        )
        .catch((err: unknown) => this.log.error({ err: errorText(err) }, 'config file check failed'));
    }, every);
    this.reloadTimer.unref();
  }

  /** SIGTERM: stop scheduling, let in-flight probes finish within the grace, close the server. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.reloadTimer) clearInterval(this.reloadTimer);
      await this.podWatch?.stop();
      const s = await this.scheduler.stop(this.opts.stopGraceMs ?? 5000);
      void this.writer.stop(); // aborts its write in flight; never rejects, and not waited for
      await this.server.close();
      await this.kube?.close();
      this.log.info({ finished: s.finished, aborted: s.aborted }, 'agent stopped');
    })();
    return this.stopping;
  }
}

/** The runtime's road as the config describes it (design.md `containerd`, `credentials`, `runtime`). */
export function roadOptions(config: AgentConfig): RoadOptions {
  return {
    hostRoot: config.hostRoot ?? '',
    containerdConfig: config.containerd.config,
    containerdConfigPath: config.containerd.configPathSet ? config.containerd.configPath : null,
    providerConfig: config.credentials.providerConfig,
    providerBinDir: config.credentials.providerBinDir,
    proxy: config.runtime.proxy,
    criEndpoint: config.runtime.endpoint,
  };
}

export function environmentOptions(config: AgentConfig): Parameters<typeof loadEnvironment>[0] {
  return {
    resolvConfPath: config.dns.resolvConf,
    hostsPath: config.dns.hosts,
    hostRoot: config.hostRoot ?? '',
    caFiles: config.tls.caFiles,
    dockerConfigPath: config.credentials.dockerConfig,
    containerdConfigPath: config.containerd.configPath,
  };
}

/** A configured target parsed as its key says (reusing an earlier parse of the same string); the string itself when it does not parse. */
function parsedTarget(t: TargetConfig, known?: ReadonlyMap<string, Target>): Target | string {
  const seen = known?.get(t.target);
  if (seen?.kind === t.kind) return seen;
  const p = parseTarget(t.target, t.kind);
  return p.ok ? p.target : t.target;
}
