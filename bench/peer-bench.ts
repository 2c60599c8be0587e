/**
 * Benchmark (C): pullprobe beside its peers in one process tree, against the
 * same lab registry (registry.lab.test, docker-registry 2.8, TLS), all
 * clients inside nodeA:
 *   - the agent and Debian's prometheus-blackbox-exporter (an http HEAD
 *     module with the manifest Accept list) probing the same manifests at the
 *     same rate: daemon CPU per probe, registry requests and connections per
 *     probe (registry access log), registry CPU per probe;
 *   - the agent idle (no probe due) next to a bare Node process: CPU per second;
 *   - start → ready: the agent with 200 targets, blackbox;
 *   - one-shot wall time: `pullprobe probe` vs `skopeo inspect --raw`,
 *     `skopeo inspect`, `curl -w` and `node -e 0`;
 *   - the runtime's floors, on each Node.js the agent ran on: the probe's wire
 *     steps with built-ins only and with the HEAD through undici
 *     (floor-probe.cjs, one-shot wall), and a process holding only the
 *     design's libraries (floor-agent.cjs, resident memory).
 * Prints figures and returns them for the summary table; asserts nothing.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parse } from 'yaml';
import { NODES, type ExecResult, type Lab } from '../test/lab/support/lab.js';
import { REPO_ROOT } from '../test/lab/support/daemons.js';
import { MANIFEST_ACCEPT } from '../src/probe/stages/manifest.js';
import { since, mark, total, type RequestCount } from './registry-log.js';
import { cpuSeconds, descendants, findPid, memory } from './proc.js';
import { heading, median, ms, num, table } from './report.js';
import type { InnerWallResult } from './inner-wall.js';
import type { ShippedNode } from './shipped-node.js';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const FLOOR_PROBE = join(REPO_ROOT, 'bench', 'floor-probe.cjs');
const FLOOR_AGENT = join(REPO_ROOT, 'bench', 'floor-agent.cjs');
/** One-shot rows: the wire steps of a probe with Node's built-ins only (floor-probe.cjs)… */
export const FLOOR_WALL = 'node floor: the wire steps, built-ins only';
/** …and with the HEAD through undici, the design's HTTP library (floor-probe.cjs --undici). */
export const FLOOR_WALL_UNDICI = 'node floor: the wire steps, HEAD through undici';
const inner = (f: string): string => join(REPO_ROOT, 'bench', f);
export const BLACKBOX = '/usr/bin/prometheus-blackbox-exporter';
const SKOPEO = '/usr/bin/skopeo';
const AGENT_PORT = 9809;
const BLACKBOX_PORT = 9115;
const REGISTRY = 'registry.lab.test';

export interface PeerFigures {
  blackboxCpuPerProbe?: number;
  blackboxCpuPerProbeFirst?: number;
  blackboxRequestsPerProbe?: number;
  blackboxConnectionsPerProbe?: number;
  registryCpuPerBlackboxProbe?: number;
  blackboxRssMiB?: number;
  idleAgentMsPerS?: number;
  idleNodeMsPerS?: number;
  /** Agent CPU in the POST_CYCLE_MS after its first cycle (memory-reducer GCs, keep-alive closes). */
  postCycleAgentMs?: number;
  readySeconds?: number | null;
  blackboxReadySeconds?: number | null;
  wall?: Record<string, number>;
  /** The agent at 1 s on this machine's node, and on the image's runtime (when fetched). */
  machineAgent?: AgentRun;
  shippedAgent?: AgentRun;
  /** The image's runtime version when one-shot rows ran on it too. */
  shippedVersion?: string;
  /** Resident memory of floor-agent.cjs (the runtime and the design's libraries, idle), per runtime label. */
  floorMemory?: Array<{ runtime: string; rssMiB: number; binaryMiB: number; anonMiB: number }>;
}

export interface AgentRun {
  runtime: string;
  /** In the steady window (after warmupSeconds). */
  cpuPerProbe: number;
  /** In the first window after ready. */
  cpuPerProbeFirst: number;
  requestsPerProbe: number;
  connectionsPerProbe: number;
  registryCpuPerProbe: number;
  rssMiB: number;
  /** Resident pages of the node executable (code and data). */
  binaryMiB: number;
  anonMiB: number;
}

export interface PeerBenchOptions {
  seconds: number;
  /**
   * The daemons run this long after ready before the window the figures come from (the first
   * window is printed too). Node's JIT optimises a function after hundreds of calls, and a probe's
   * functions run once a probe: the agent's first minutes cost more CPU per probe than its steady
   * state, which is what a node pays. blackbox (Go) gets the same second window.
   */
  warmupSeconds: number;
  /** The image's Node.js (shipped-node.ts): the agent and the one-shot probe run on it too. */
  shipped?: ShippedNode;
}

/**
 * The environment the DaemonSet (manifests/base) gives the agent, its literal
 * values only (NODE_OPTIONS' heap caps, and any other), so the bench
 * measures the agent as it ships; values taken from the pod (NODE_NAME,
 * HOST_IP) are left out.
 */
export function shippedEnv(): Record<string, string> {
  const ds = parse(readFileSync(join(REPO_ROOT, 'manifests', 'base', 'daemon-set.yaml'), 'utf8')) as {
    spec?: { template?: { spec?: { containers?: Array<{ env?: Array<{ name: string; value?: string }> }> } } };
  };
  const env = ds.spec?.template?.spec?.containers?.[0]?.env ?? [];
  return Object.fromEntries(env.flatMap((e) => (typeof e.value === 'string' ? [[e.name, e.value]] : [])));
}

/** Shown beside the figures: the shipped environment, one NAME=value per entry. */
export function describeEnv(env: Record<string, string>): string {
  const names = Object.keys(env);
  return names.length > 0 ? names.map((n) => `${n}=${env[n] ?? ''}`).join(' ') : '(none)';
}

/** The agent's tail after a cycle: undici's 4 s keep-alive and V8's memory reducer (first GC ~8 s after the burst, then 0.5 s apart). */
const POST_CYCLE_MS = 12_000;

const sleep = (msec: number): Promise<void> => new Promise((r) => setTimeout(r, msec));

/** Anonymous image targets that exist on the registry (tags and digests), and their manifest URLs. */
function images(lab: Lab, n: number): Array<{ ref: string; url: string }> {
  const out: Array<{ ref: string; url: string }> = [];
  for (const i of lab.images) {
    out.push({ ref: `${REGISTRY}/${i.repository}:${i.tag}`, url: `https://${REGISTRY}/v2/${i.repository}/manifests/${i.tag}` });
    out.push({ ref: `${REGISTRY}/${i.repository}@${i.digest}`, url: `https://${REGISTRY}/v2/${i.repository}/manifests/${i.digest}` });
  }
  return out.slice(0, n);
}

function agentConfig(lab: Lab, name: string, targets: string[], extra: string[] = []): string {
  const file = join(lab.dir, name);
  writeFileSync(
    file,
    [
      `listen: "127.0.0.1:${AGENT_PORT}"`,
      'concurrency: 8',
      'node: bench-nodeA',
      'logLevel: warn',
      ...extra,
      'targets:',
      ...targets.map((t) => `  - image: "${t}"`),
      'dns:',
      `  resolvConf: ${lab.paths.resolvConf.nodeA}`,
      `  hosts: ${lab.paths.hosts.nodeA}`,
      'tls:',
      `  caFiles: [${lab.paths.caFile}]`,
      '',
    ].join('\n'),
  );
  return file;
}

interface Daemon {
  pid: number;
  exited: () => boolean;
  done: Promise<ExecResult>;
  stop: () => Promise<void>;
}

/** A long-running command in nodeA; its pid is the real process (exec'd through ip netns exec). */
function daemon(lab: Lab, argv: string[], env: Record<string, string> = {}): Daemon {
  let child: ChildProcess | undefined;
  const done = lab.exec('nodeA', argv, {
    timeoutMs: 600_000,
    env,
    onSpawn: (c) => {
      child = c;
    },
  });
  if (!child?.pid) throw new Error(`${argv[0] ?? '?'} did not start`);
  const c = child;
  const pid = c.pid as number;
  const stop = async (): Promise<void> => {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      c.kill('SIGTERM');
    }
    await Promise.race([done, sleep(5000)]);
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  return { pid, done, stop, exited: () => c.exitCode !== null || c.signalCode !== null };
}

/** The process of `pid` or its first descendant whose command line starts with `exe`. */
function realPid(pid: number, exe: string): number {
  return findPid([pid, ...descendants(pid)], exe) ?? pid;
}

async function httpStatus(lab: Lab, url: string): Promise<{ code: number; body: string }> {
  const r = await lab.exec('nodeA', ['curl', '-s', '-o', '-', '-w', '\n%{http_code}', url], { timeoutMs: 15_000 });
  const i = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

async function waitFor(
  lab: Lab,
  url: string,
  what: string,
  ms = 20_000,
  ok = (c: { code: number; body: string }) => c.code === 200,
  d?: Daemon,
) {
  const t0 = performance.now();
  for (;;) {
    if (d?.exited()) {
      const r = await d.done;
      throw new Error(`${what} exited (${r.code ?? r.signal}): ${(r.stderr + r.stdout).slice(-400)}`);
    }
    const r = await httpStatus(lab, url).catch(() => ({ code: 0, body: '' }));
    if (ok(r)) return r;
    if (performance.now() - t0 > ms) throw new Error(`${what} not ready after ${ms} ms (last HTTP ${r.code})`);
    await sleep(100);
  }
}

function probesTotal(metricsText: string): number {
  let n = 0;
  for (const m of metricsText.matchAll(/^pullprobe_probes_total\{[^}]*\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}

/** Requests and connections from nodeA to registry.lab.test in a log window. */
function registryTraffic(lab: Lab, from: ReturnType<typeof mark>): { requests: number; connections: number; counts: RequestCount[] } {
  const seen = since(lab.paths.logs, from, NODES.nodeA.address);
  const counts = seen.counts.filter((c) => c.server === 'registry-registry');
  return { requests: total(counts), connections: seen.connections, counts };
}

function blackboxConfig(lab: Lab): string {
  const file = join(lab.dir, 'bench-blackbox.yml');
  writeFileSync(
    file,
    [
      'modules:',
      '  head:',
      '    prober: http',
      '    timeout: 5s',
      '    http:',
      '      method: HEAD',
      '      valid_status_codes: [200]',
      '      preferred_ip_protocol: ip4',
      '      headers:',
      `        Accept: "${MANIFEST_ACCEPT.join(', ')}"`,
      '      tls_config:',
      `        ca_file: ${lab.paths.caFile}`,
      '',
    ].join('\n'),
  );
  return file;
}

export async function peerBench(lab: Lab, opts: PeerBenchOptions): Promise<{ text: string; figures: PeerFigures }> {
  const f: PeerFigures = {};
  const out: string[] = [];
  const shipped = shippedEnv();
  const env = { ...shipped, NODE_NAME: 'bench-nodeA' };
  const registryPid = findPid(lab.pids(), 'docker-registry', 'registry-registry.yml');
  const list = images(lab, 5);
  const haveBlackbox = existsSync(BLACKBOX);
  out.push(
    heading(
      `(C) pullprobe beside its peers: ${list.length} manifests on ${REGISTRY}, each probed once a second, ${opts.seconds} s windows: ` +
        `the first after ready, and the steady one ${opts.warmupSeconds} s after ready (the figures)`,
    ),
  );
  out.push(`agent environment (from manifests/base/daemon-set.yaml): ${describeEnv(shipped)}`);
  if (!haveBlackbox) {
    out.push(
      `!! ${BLACKBOX} is not installed (Debian package prometheus-blackbox-exporter): the blackbox columns are empty. ` +
        'apt-get install prometheus-blackbox-exporter to compare.',
    );
  }

  const rows: string[][] = [];
  // 1. The agent at 1 s: on this machine's node, then on the image's runtime when there is one.
  const runtimes: Array<{ bin: string; label: string; shipped: boolean }> = [
    { bin: 'node', label: `node ${process.version}`, shipped: false },
  ];
  if (opts.shipped?.ok) runtimes.push({ bin: opts.shipped.path, label: `node ${opts.shipped.version}, the image's`, shipped: true });
  else if (opts.shipped) out.push(`!! the image's Node.js could not be fetched (${opts.shipped.problem}): this machine's node only.`);
  for (const rt of runtimes) {
    const cfg = agentConfig(
      lab,
      'bench-peer-agent.yaml',
      list.map((i) => i.ref),
      ['interval: 1s', 'timeout: 1s', 'jitter: 0.5'],
    );
    const d = daemon(lab, [rt.bin, CLI, 'agent', '--config', cfg], env);
    try {
      await waitFor(lab, `http://127.0.0.1:${AGENT_PORT}/readyz`, 'agent', 20_000, undefined, d);
      const ready = Date.now();
      await sleep(3000);
      const pid = realPid(d.pid, rt.bin);
      const probesNow = async (): Promise<number> => probesTotal((await httpStatus(lab, `http://127.0.0.1:${AGENT_PORT}/metrics`)).body);
      const fp0 = await probesNow();
      const fc0 = cpuSeconds(pid);
      await sleep(opts.seconds * 1000);
      const first = (cpuSeconds(pid) - fc0) / ((await probesNow()) - fp0);
      await sleep(Math.max(0, ready + opts.warmupSeconds * 1000 - Date.now()));
      const p0 = await probesNow();
      const m0 = mark(lab.paths.logs);
      const c0 = cpuSeconds(pid);
      const r0 = registryPid ? cpuSeconds(registryPid) : Number.NaN;
      await sleep(opts.seconds * 1000);
      const c1 = cpuSeconds(pid);
      const r1 = registryPid ? cpuSeconds(registryPid) : Number.NaN;
      const p1 = await probesNow();
      const probes = p1 - p0;
      const t = registryTraffic(lab, m0);
      const mem = memory(pid);
      const fig: AgentRun = {
        runtime: rt.label,
        cpuPerProbe: (c1 - c0) / probes,
        cpuPerProbeFirst: first,
        requestsPerProbe: t.requests / probes,
        connectionsPerProbe: t.connections / probes,
        registryCpuPerProbe: (r1 - r0) / probes,
        rssMiB: mem.rssKb / 1024,
        binaryMiB: mem.binaryKb / 1024,
        anonMiB: mem.anonKb / 1024,
      };
      if (rt.shipped) f.shippedAgent = fig;
      else f.machineAgent = fig;
      rows.push([
        `pullprobe agent (${rt.label})`,
        String(probes),
        ms(fig.cpuPerProbeFirst),
        ms(fig.cpuPerProbe),
        num(fig.requestsPerProbe),
        num(fig.connectionsPerProbe),
        ms(fig.registryCpuPerProbe),
        `${num(fig.rssMiB, 1)} (${num(fig.binaryMiB, 1)} / ${num(fig.anonMiB, 1)})`,
      ]);
      out.push(`agent (${rt.label}) requests by kind: ${t.counts.map((c) => `${c.cls} ${c.count}`).join(', ')}`);
    } finally {
      await d.stop();
    }
  }
  // 2. blackbox_exporter at the same rate.
  if (haveBlackbox) {
    const cfg = blackboxConfig(lab);
    const d = daemon(lab, [BLACKBOX, `--config.file=${cfg}`, `--web.listen-address=127.0.0.1:${BLACKBOX_PORT}`]);
    try {
      await waitFor(lab, `http://127.0.0.1:${BLACKBOX_PORT}/metrics`, 'blackbox_exporter', 20_000, undefined, d);
      const pid = realPid(d.pid, BLACKBOX);
      const args = {
        base: `http://127.0.0.1:${BLACKBOX_PORT}`,
        module: 'head',
        urls: list.map((i) => i.url),
        intervalMs: 1000,
        seconds: opts.seconds,
      };
      const driveWindow = async (): Promise<{ probes: number; success: number }> => {
        const dr = await lab.exec('nodeA', ['node', '--import', 'tsx', inner('inner-drive.ts'), JSON.stringify(args)], {
          timeoutMs: (opts.seconds + 30) * 1000,
        });
        if (dr.code !== 0) throw new Error(`inner-drive failed (exit ${dr.code}): ${dr.stderr.slice(-400)}`);
        return JSON.parse(dr.stdout.trim()) as { probes: number; success: number };
      };
      // The first window, then the steady one (Go has no JIT to warm: the two should agree).
      const fc0 = cpuSeconds(pid);
      const firstDrive = await driveWindow();
      f.blackboxCpuPerProbeFirst = (cpuSeconds(pid) - fc0) / firstDrive.probes;
      const m0 = mark(lab.paths.logs);
      const c0 = cpuSeconds(pid);
      const r0 = registryPid ? cpuSeconds(registryPid) : Number.NaN;
      const drive = await driveWindow();
      const c1 = cpuSeconds(pid);
      const r1 = registryPid ? cpuSeconds(registryPid) : Number.NaN;
      const t = registryTraffic(lab, m0);
      f.blackboxCpuPerProbe = (c1 - c0) / drive.probes;
      f.blackboxRequestsPerProbe = t.requests / drive.probes;
      f.blackboxConnectionsPerProbe = t.connections / drive.probes;
      f.registryCpuPerBlackboxProbe = (r1 - r0) / drive.probes;
      const mem = memory(pid);
      f.blackboxRssMiB = mem.rssKb / 1024;
      rows.push([
        `blackbox_exporter (${drive.success}/${drive.probes} ok)`,
        String(drive.probes),
        ms(f.blackboxCpuPerProbeFirst),
        ms(f.blackboxCpuPerProbe),
        num(f.blackboxRequestsPerProbe),
        num(f.blackboxConnectionsPerProbe),
        ms(f.registryCpuPerBlackboxProbe),
        `${num(f.blackboxRssMiB, 1)} (${num(mem.binaryKb / 1024, 1)} / ${num(mem.anonKb / 1024, 1)})`,
      ]);
    } finally {
      await d.stop();
    }
  }
  out.push(
    '',
    table(
      [
        'daemon',
        'probes',
        'daemon CPU/probe, first window (ms)',
        'daemon CPU/probe, steady (ms)',
        'registry requests/probe',
        'TCP conns (= TLS handshakes)/probe',
        'registry CPU/probe (ms)',
        'RSS (MiB) (node binary / anonymous)',
      ],
      rows,
    ),
  );
  out.push(
    '(connections: distinct client ports in the registry log; every connection is TLS, so one handshake each. The blackbox driver talks to blackbox on loopback only.)',
  );

  // 3. Idle: no probe due (interval 1h, jitter 0: the first cycle runs at start and is waited for).
  {
    const cfg = agentConfig(
      lab,
      'bench-idle-agent.yaml',
      list.map((i) => i.ref),
      ['interval: 1h', 'timeout: 5s', 'jitter: 0'],
    );
    const d = daemon(lab, ['node', CLI, 'agent', '--config', cfg], env);
    const bare = daemon(lab, ['node', '-e', 'setInterval(() => {}, 1 << 30)']);
    // The memory floor on each runtime, in the agent's environment, measured at the end of the idle window.
    const floors = runtimes.map((rt) => ({ rt, d: daemon(lab, [rt.bin, FLOOR_AGENT], env) }));
    try {
      await waitFor(
        lab,
        `http://127.0.0.1:${AGENT_PORT}/metrics`,
        'idle agent first cycle',
        30_000,
        (r) => probesTotal(r.body) >= list.length,
        d,
      );
      // V8's memory reducer runs its full GCs ~8 s after the allocation rate drops (after a
      // cycle): 30-80 ms of CPU once per cycle, not a steady wake-up. Counted apart, so that
      // the idle figure is what an agent between cycles costs.
      const pid = realPid(d.pid, 'node');
      const bpid = realPid(bare.pid, 'node');
      const t0 = cpuSeconds(pid);
      await sleep(POST_CYCLE_MS);
      f.postCycleAgentMs = (cpuSeconds(pid) - t0) * 1000;
      const a0 = cpuSeconds(pid);
      const b0 = cpuSeconds(bpid);
      const secs = Math.max(10, opts.seconds);
      await sleep(secs * 1000);
      f.idleAgentMsPerS = ((cpuSeconds(pid) - a0) * 1000) / secs;
      f.idleNodeMsPerS = ((cpuSeconds(bpid) - b0) * 1000) / secs;
      const mem = memory(pid);
      f.floorMemory = [];
      for (const fl of floors) {
        if (fl.d.exited()) {
          const r = await fl.d.done;
          out.push(`!! floor-agent.cjs on ${fl.rt.label} exited (${r.code ?? r.signal}): ${(r.stderr + r.stdout).slice(-300)}`);
          continue;
        }
        const fm = memory(realPid(fl.d.pid, fl.rt.bin));
        f.floorMemory.push({ runtime: fl.rt.label, rssMiB: fm.rssKb / 1024, binaryMiB: fm.binaryKb / 1024, anonMiB: fm.anonKb / 1024 });
      }
      out.push(
        '',
        `after the first cycle (${POST_CYCLE_MS / 1000} s: keep-alive sockets closing, V8's memory-reducer GCs): agent ${num(f.postCycleAgentMs, 0)} ms CPU in all`,
        `idle (${secs} s after that, no probe due): agent ${num(f.idleAgentMsPerS, 3)} ms CPU/s (RSS ${num(mem.rssKb / 1024, 1)} MiB), ` +
          `bare node ${num(f.idleNodeMsPerS, 3)} ms CPU/s`,
        ...f.floorMemory.map(
          (m) =>
            `memory floor on ${m.runtime} (floor-agent.cjs: the runtime, undici, prom-client, pino, one TLS context, idle): ` +
            `RSS ${num(m.rssMiB, 1)} MiB (node binary ${num(m.binaryMiB, 1)} / anonymous ${num(m.anonMiB, 1)})`,
        ),
      );
    } finally {
      await d.stop();
      await bare.stop();
      for (const fl of floors) await fl.d.stop();
    }
  }

  // 4. Start → ready: the agent with 200 targets (interval 60 s, jitter 0.1), blackbox.
  {
    const many = Array.from({ length: 200 }, (_, i) => `${REGISTRY}/lab/bench-${i}:v1`);
    const cfg = agentConfig(lab, 'bench-200-agent.yaml', many, ['interval: 60s', 'timeout: 5s']);
    const runReady = async (argv: string[], url: string, e: Record<string, string> = {}): Promise<number | null> => {
      const r = await lab.exec(
        'nodeA',
        ['node', '--import', 'tsx', inner('inner-ready.ts'), JSON.stringify({ argv, url, timeoutMs: 30_000, env: e })],
        {
          timeoutMs: 60_000,
        },
      );
      if (r.code !== 0) throw new Error(`inner-ready failed: ${r.stderr.slice(-300)}`);
      return (JSON.parse(r.stdout.trim()) as { seconds: number | null }).seconds;
    };
    f.readySeconds = await runReady(['node', CLI, 'agent', '--config', cfg], `http://127.0.0.1:${AGENT_PORT}/readyz`, env);
    if (haveBlackbox) {
      f.blackboxReadySeconds = await runReady(
        [BLACKBOX, `--config.file=${blackboxConfig(lab)}`, `--web.listen-address=127.0.0.1:${BLACKBOX_PORT}`],
        `http://127.0.0.1:${BLACKBOX_PORT}/metrics`,
      );
    }
    out.push(
      `start → ready: agent with 200 targets ${f.readySeconds == null ? 'not ready within 30 s' : `${ms(f.readySeconds)} ms`} (spawn to /readyz 200); ` +
        `blackbox_exporter ${f.blackboxReadySeconds == null ? '—' : `${ms(f.blackboxReadySeconds)} ms`} (spawn to /metrics 200)`,
    );
  }

  // 5. One-shot wall time.
  {
    const certDir = join(lab.dir, 'bench-skopeo-certs');
    mkdirSync(certDir, { recursive: true });
    copyFileSync(lab.paths.caFile, join(certDir, 'ca.crt'));
    const image = `${REGISTRY}/lab/probe:v1`;
    const manifestPath = '/v2/lab/probe/manifests/v1';
    const accept = MANIFEST_ACCEPT.join(', ');
    const floorArgs = [lab.paths.resolvConf.nodeA, lab.paths.caFile, REGISTRY, manifestPath, accept];
    const commands: Record<string, string[]> = {
      'pullprobe probe': [
        'node',
        CLI,
        'probe',
        '--ca-file',
        lab.paths.caFile,
        '--resolv-conf',
        lab.paths.resolvConf.nodeA,
        '--hosts',
        lab.paths.hosts.nodeA,
        image,
      ],
      'curl -w (HEAD)': [
        'curl',
        '-sS',
        '-o',
        '/dev/null',
        '-I',
        '--cacert',
        lab.paths.caFile,
        '-H',
        `Accept: ${accept}`,
        '-w',
        '%{http_code}',
        `https://${REGISTRY}${manifestPath}`,
      ],
      'node -e 0': ['node', '-e', '0'],
      [FLOOR_WALL]: ['node', FLOOR_PROBE, ...floorArgs],
      [FLOOR_WALL_UNDICI]: ['node', FLOOR_PROBE, '--undici', ...floorArgs],
    };
    if (opts.shipped?.ok) {
      const n = opts.shipped.path;
      commands[`pullprobe probe (node ${opts.shipped.version})`] = [n, ...(commands['pullprobe probe'] ?? []).slice(1)];
      commands[`node -e 0 (node ${opts.shipped.version})`] = [n, '-e', '0'];
      for (const floor of [FLOOR_WALL, FLOOR_WALL_UNDICI])
        commands[`${floor} (node ${opts.shipped.version})`] = [n, ...(commands[floor] ?? []).slice(1)];
      f.shippedVersion = opts.shipped.version;
    }
    if (existsSync(SKOPEO)) {
      commands['skopeo inspect --raw'] = [SKOPEO, 'inspect', '--raw', '--cert-dir', certDir, `docker://${image}`];
      commands['skopeo inspect'] = [SKOPEO, 'inspect', '--cert-dir', certDir, `docker://${image}`];
    } else out.push(`!! ${SKOPEO} is not installed (Debian package skopeo): no skopeo rows.`);
    const r = await lab.exec('nodeA', ['node', '--import', 'tsx', inner('inner-wall.ts'), JSON.stringify({ n: 7, commands })], {
      timeoutMs: 180_000,
    });
    if (r.code !== 0) throw new Error(`inner-wall failed: ${r.stderr.slice(-300)}`);
    const res = JSON.parse(r.stdout.trim()) as InnerWallResult;
    f.wall = {};
    const wallRows = Object.entries(res).map(([name, v]) => {
      const m = median(v.seconds);
      (f.wall as Record<string, number>)[name] = m;
      const bad = v.codes.filter((c) => c !== 0).length;
      return [
        name,
        ms(m),
        ms(Math.min(...v.seconds)),
        ms(Math.max(...v.seconds)),
        bad ? `${bad} failed: ${v.stderr.replace(/\s+/g, ' ').slice(0, 80)}` : 'ok',
      ];
    });
    out.push('', `One-shot wall time in nodeA (start-up included), ${image}, 7 runs each`);
    out.push(table(['command', 'median (ms)', 'min', 'max', 'exit'], wallRows));
  }
  return { text: out.join('\n'), figures: f };
}
