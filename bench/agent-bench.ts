/**
 * Benchmark (B): the built agent (`node dist/cli.js agent`) inside nodeA with
 * 20 targets at a 1 s interval: RSS and CPU after N cycles (from /proc), the
 * requests the registries and the token service received per target per
 * cycle (their logs), then a burst of concurrent /probe requests for one
 * target: answers per second, and how many probes reached the registry.
 * Prints figures, asserts nothing.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NODES, type ExecResult, type Lab } from '../test/lab/support/lab.js';
import { REPO_ROOT } from '../test/lab/support/daemons.js';
import type { BurstResult } from './inner-burst.js';
import { mark, since, tally, total } from './registry-log.js';
import { heading, ms, num, table } from './report.js';
import { summariseSnapshotFile, type HeapSummary } from './heap-summary.js';
import { memory } from './proc.js';
import { describeEnv, shippedEnv } from './peer-bench.js';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const BURST = join(REPO_ROOT, 'bench', 'inner-burst.ts');
const PORT = 9808;
const CLK_TCK = 100;

export interface AgentBenchOptions {
  /** Measured window after the first cycle, seconds. */
  seconds: number;
  /** /probe requests in the burst and how many in flight at once. */
  burst: number;
  concurrency: number;
  /** Take a V8 heap snapshot of the agent after ready and at the end of the window and summarise both. */
  heapSnapshots?: boolean;
}

/** Figures the summary table takes from this part. */
export interface AgentFigures {
  rssMiB?: number;
  anonMiB?: number;
  hwmMiB?: number;
  cpuPerProbe?: number;
}

let running: { pid: number; child: ChildProcess } | undefined;

/** Emergency stop (exit/signal paths): SIGKILL the agent's process group. */
export function stopAgentSync(): void {
  if (!running) return;
  try {
    process.kill(-running.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  running = undefined;
}

interface Target {
  key: 'image' | 'registry';
  value: string;
}

function targets(lab: Lab): Target[] {
  const digest = (repo: string): string => lab.images.find((i) => i.repository === repo)?.digest ?? 'sha256:missing';
  const img = (v: string): Target => ({ key: 'image', value: v });
  const reg = (v: string): Target => ({ key: 'registry', value: v });
  return [
    img('registry.lab.test/lab/probe:v1'),
    img('registry.lab.test/lab/single:v1'),
    img(`registry.lab.test/lab/probe@${digest('lab/probe')}`),
    img(`registry.lab.test/lab/single@${digest('lab/single')}`),
    img('registry.lab.test/lab/amd64only:v1'),
    img('registry.lab.test/lab/probe:v9'),
    img('registry.lab.test/lab/nothere:v1'),
    reg('registry.lab.test'),
    img('basic.lab.test/lab/probe:v1'),
    img('basic.lab.test/lab/single:v1'),
    img(`basic.lab.test/lab/probe@${digest('lab/probe')}`),
    reg('basic.lab.test'),
    img('token.lab.test/lab/probe:v1'),
    img('token.lab.test/lab/single:v1'),
    img(`token.lab.test/lab/probe@${digest('lab/probe')}`),
    img(`token.lab.test/lab/single@${digest('lab/single')}`),
    img('token.lab.test/lab/probe:v9'),
    reg('token.lab.test'),
    reg('expired.lab.test'),
    img('untrusted.lab.test/lab/probe:v1'),
  ];
}

function writeConfig(lab: Lab, list: Target[]): string {
  const file = join(lab.dir, 'bench-agent.yaml');
  writeFileSync(
    file,
    [
      `listen: "127.0.0.1:${PORT}"`,
      'interval: 1s',
      'timeout: 1s',
      'concurrency: 8',
      'node: bench-nodeA',
      'logLevel: info',
      'targets:',
      ...list.map((t) => `  - ${t.key}: "${t.value}"`),
      'dns:',
      `  resolvConf: ${lab.paths.resolvConf.nodeA}`,
      `  hosts: ${lab.paths.hosts.nodeA}`,
      'tls:',
      `  caFiles: [${lab.paths.caFile}]`,
      'credentials:',
      `  dockerConfig: ${lab.paths.dockerConfig.good}`,
      '',
    ].join('\n'),
  );
  return file;
}

interface Sample {
  at: number;
  rssKb: number;
  hwmKb: number;
  cpuSeconds: number;
  threads: number;
}

function sample(pid: number): Sample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? Number.NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return { at: performance.now() / 1000, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), cpuSeconds: ticks / CLK_TCK, threads: kb('Threads') };
}

/** The node process: `ip netns exec` and `sh -c … exec` replace themselves, but check. */
function nodePid(pid: number): number {
  const comm = (p: number): string => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  if (comm(pid) === 'node') return pid;
  let frontier = [pid];
  for (let depth = 0; depth < 4 && frontier.length > 0; depth++) {
    const kids: number[] = [];
    for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
      try {
        const s = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
        if (frontier.includes(ppid)) kids.push(Number(d));
      } catch {
        /* raced */
      }
    }
    const hit = kids.find((k) => comm(k) === 'node');
    if (hit !== undefined) return hit;
    frontier = kids;
  }
  throw new Error(`agent process (pid ${pid}) has no node process`);
}

async function curlAgent(lab: Lab, path: string): Promise<{ code: number; body: string }> {
  const r = await lab.exec('nodeA', ['curl', '-s', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:${PORT}${path}`], {
    timeoutMs: 15_000,
  });
  const i = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

/** target → failure reason from pullprobe_failure_info (value 1). */
function reasons(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const x of text.matchAll(/^pullprobe_failure_info\{([^}]*)\} 1$/gm)) {
    const t = /target="([^"]*)"/.exec(x[1] ?? '')?.[1];
    const r = /reason="([^"]*)"/.exec(x[1] ?? '')?.[1];
    if (t !== undefined && r !== undefined) m.set(t, r);
  }
  return m;
}

/** target → value of one metric family (labels matched by target="…"). */
function metric(text: string, name: string): Map<string, number> {
  const m = new Map<string, number>();
  const re = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const x of text.matchAll(re)) {
    const t = /target="([^"]*)"/.exec(x[1] ?? '')?.[1];
    if (t !== undefined) m.set(t, (m.get(t) ?? 0) + Number(x[2]));
  }
  return m;
}

const sleep = (msec: number): Promise<void> => new Promise((r) => setTimeout(r, msec));
const serverOf = (target: string): string => `registry-${target.split('/')[0]?.split('.')[0] ?? ''}`;

/** Send SIGUSR2 (the agent runs with --heapsnapshot-signal) and wait for the new, complete snapshot file. */
async function snapshot(pid: number, dir: string): Promise<string | null> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const t0 = performance.now();
  let last = -1;
  while (performance.now() - t0 < 30_000) {
    await sleep(300);
    const f = readdirSync(dir).find((n) => n.endsWith('.heapsnapshot') && !before.has(n));
    if (!f) continue;
    const size = statSync(join(dir, f)).size;
    if (size > 0 && size === last) return join(dir, f);
    last = size;
  }
  return null;
}

function heapTable(a: HeapSummary | null, b: HeapSummary | null, whenA: string, whenB: string): string {
  if (!a || !b) return 'heap snapshots: not written (agent did not answer SIGUSR2 within 30 s)';
  const names = [...new Set([...b.groups, ...a.groups].map((g) => g.name))].slice(0, 18);
  const get = (s: HeapSummary, n: string) => s.groups.find((g) => g.name === n);
  return [
    `Live V8 heap (after the snapshot's full GC): ${num(a.totalBytes / 1048576, 1)} MiB ${whenA} → ${num(b.totalBytes / 1048576, 1)} MiB ${whenB}; biggest groups by self size:`,
    table(
      ['constructor / kind', `MiB ${whenA}`, 'count', `MiB ${whenB}`, 'count', 'count growth'],
      names.map((n) => {
        const x = get(a, n);
        const y = get(b, n);
        return [
          n,
          x ? num(x.selfBytes / 1048576, 2) : '—',
          x ? String(x.count) : '—',
          y ? num(y.selfBytes / 1048576, 2) : '—',
          y ? String(y.count) : '—',
          x && y ? String(y.count - x.count) : '',
        ];
      }),
    ),
  ].join('\n');
}

export async function agentBench(lab: Lab, opts: AgentBenchOptions, figures: AgentFigures = {}): Promise<string> {
  const list = targets(lab);
  const config = writeConfig(lab, list);
  const client = NODES.nodeA.address;
  const shipped = shippedEnv();
  const heapDir = join(lab.dir, 'heap');
  if (opts.heapSnapshots) mkdirSync(heapDir, { recursive: true });
  const flags = [
    shipped.NODE_OPTIONS ?? '',
    ...(opts.heapSnapshots ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir}`] : []),
  ]
    .join(' ')
    .trim();
  const out: string[] = [
    heading(`(B) agent in nodeA: ${list.length} targets, interval 1s, timeout 1s, concurrency 8`),
    `environment: ${describeEnv({ ...shipped, NODE_OPTIONS: flags })} (from manifests/base/daemon-set.yaml)`,
  ];
  let child: ChildProcess | undefined;
  const done: Promise<ExecResult> = lab.exec('nodeA', ['node', CLI, 'agent', '--config', config], {
    timeoutMs: (opts.seconds + 120) * 1000,
    env: { ...shipped, LOG_LEVEL: 'info', NODE_NAME: 'bench-nodeA', NODE_OPTIONS: flags },
    onSpawn: (c) => {
      child = c;
    },
  });
  if (!child?.pid) throw new Error('agent did not start');
  running = { pid: child.pid, child };
  try {
    const t0 = performance.now();
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`agent exited (${child.exitCode}): ${(await done).stderr.slice(-600)}${(await done).stdout.slice(-600)}`);
      if ((await curlAgent(lab, '/readyz').catch(() => ({ code: 0 }))).code === 200) break;
      if (performance.now() - t0 > 20_000) throw new Error('agent not ready after 20 s');
      await sleep(200);
    }
    const readySeconds = (performance.now() - t0) / 1000;
    const pid = nodePid(child.pid);
    // Heap snapshots are taken only after the window's figures: writing one costs the
    // process tens of MiB of native memory that glibc keeps, which would inflate RSS.
    let heapA: HeapSummary | null = null;

    // Cycles window.
    const s0 = sample(pid);
    const runs0 = metric((await curlAgent(lab, '/metrics')).body, 'pullprobe_probes_total');
    const m0 = mark(lab.paths.logs);
    const series: number[] = [s0.rssKb];
    const until = performance.now() + opts.seconds * 1000;
    while (performance.now() < until) {
      await sleep(Math.min(5000, until - performance.now()));
      series.push(sample(pid).rssKb);
    }
    const metricsEnd = (await curlAgent(lab, '/metrics')).body;
    const runs1 = metric(metricsEnd, 'pullprobe_probes_total');
    const s1 = sample(pid);
    const mem1 = memory(pid);
    const seen = since(lab.paths.logs, m0, client).counts;
    const up = metric(metricsEnd, 'pullprobe_registry_up');
    const why = reasons(metricsEnd);

    const runs = new Map(list.map((t) => [t.value, (runs1.get(t.value) ?? 0) - (runs0.get(t.value) ?? 0)]));
    const totalRuns = [...runs.values()].reduce((a, b) => a + b, 0);
    const wall = s1.at - s0.at;
    const cycles = totalRuns / list.length;
    out.push(
      `/readyz 200 after ${readySeconds.toFixed(1)} s; measured window ${wall.toFixed(1)} s, ` +
        `${totalRuns} periodic probes = ${num(cycles, 1)} cycles of ${list.length} targets`,
    );
    out.push(
      '',
      table(
        [`agent process (pid ${pid})`, 'after ready', `after ${num(cycles, 1)} cycles`, 'growth'],
        [
          ['RSS (MiB)', num(s0.rssKb / 1024, 1), num(s1.rssKb / 1024, 1), num((s1.rssKb - s0.rssKb) / 1024, 1)],
          ['peak RSS VmHWM (MiB)', num(s0.hwmKb / 1024, 1), num(s1.hwmKb / 1024, 1), num((s1.hwmKb - s0.hwmKb) / 1024, 1)],
          ['CPU user+sys (s)', num(s0.cpuSeconds), num(s1.cpuSeconds), num(s1.cpuSeconds - s0.cpuSeconds)],
          ['CPU during window (% of one core)', '', num((100 * (s1.cpuSeconds - s0.cpuSeconds)) / wall, 1), ''],
          ['CPU per probe (ms)', '', ms((s1.cpuSeconds - s0.cpuSeconds) / Math.max(1, totalRuns)), ''],
          ['threads', num(s0.threads), num(s1.threads), ''],
        ],
      ),
    );
    out.push(`RSS every 5 s over the window (MiB): ${series.map((k) => num(k / 1024, 0)).join(' → ')}`);
    out.push(
      `RSS at the end: ${num(mem1.rssKb / 1024, 1)} MiB, of which anonymous (heap, malloc) ${num(mem1.anonKb / 1024, 1)} MiB; ` +
        'the rest is mostly the node binary’s own pages (file-backed, shared between processes)',
    );
    figures.rssMiB = mem1.rssKb / 1024;
    figures.anonMiB = mem1.anonKb / 1024;
    figures.hwmMiB = s1.hwmKb / 1024;
    figures.cpuPerProbe = (s1.cpuSeconds - s0.cpuSeconds) / Math.max(1, totalRuns);
    if (opts.heapSnapshots && existsSync(heapDir)) {
      const file = await snapshot(pid, heapDir);
      heapA = file ? summariseSnapshotFile(file, 25) : null;
    }

    // Requests per target per cycle, by server (a server's figure divides by the runs of its targets).
    const runsOn = (server: string): number =>
      list
        .filter((t) => serverOf(t.value) === server || (server === 'token-server' && serverOf(t.value) === 'registry-token'))
        .reduce((s, t) => s + (runs.get(t.value) ?? 0), 0);
    const byClass = tally(seen, (c) => `${c.server}\n${c.cls}`);
    if (!byClass.has('token-server\nGET /token')) byClass.set('token-server\nGET /token', 0);
    const reqRows = [...byClass.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, n]) => {
        const [server = '', cls = ''] = k.split('\n');
        const r = runsOn(server);
        const targetsOn = list.filter((t) => serverOf(t.value) === (server === 'token-server' ? 'registry-token' : server)).length;
        return [`${server}: ${cls}`, String(targetsOn), String(r), String(n), num(r ? n / r : Number.NaN)];
      });
    reqRows.push([
      'all servers, all requests',
      String(list.length),
      String(totalRuns),
      String(total(seen)),
      num(totalRuns ? total(seen) / totalRuns : Number.NaN),
    ]);
    out.push('', 'Requests received during the window (server logs, from nodeA), per target per cycle');
    out.push(table(['server: request', 'targets', 'probe runs', 'requests', 'per target per cycle'], reqRows));
    const last = (t: string): string => (up.get(t) === 1 ? 'ok' : (why.get(t) ?? (up.has(t) ? 'failing' : '—')));
    out.push(
      '',
      table(
        ['target', 'runs in window', 'last result'],
        list.map((t) => [
          `${t.key}: ${t.value.replace(/@sha256:(\w{12})\w+/, '@sha256:$1…')}`,
          String(runs.get(t.value) ?? 0),
          last(t.value),
        ]),
      ),
    );

    // Burst of /probe for one target.
    const burstTarget = 'registry.lab.test/lab/probe:v1';
    const headPath = 'HEAD /v2/lab/probe/manifests/v1';
    const b0 = metric((await curlAgent(lab, '/metrics')).body, 'pullprobe_probes_total').get(burstTarget) ?? 0;
    const mb = mark(lab.paths.logs);
    const url = `http://127.0.0.1:${PORT}/probe?image=${encodeURIComponent(burstTarget)}&format=json`;
    const br = await lab.exec('nodeA', ['node', '--import', 'tsx', BURST, url, String(opts.burst), String(opts.concurrency)], {
      timeoutMs: 60_000,
    });
    if (br.code !== 0) throw new Error(`inner-burst failed (exit ${br.code}): ${br.stderr.slice(-400)}`);
    const burst = JSON.parse(br.stdout.trim()) as BurstResult;
    await sleep(300);
    const b1 = metric((await curlAgent(lab, '/metrics')).body, 'pullprobe_probes_total').get(burstTarget) ?? 0;
    const during = since(lab.paths.logs, mb, client).counts;
    const heads = during.filter((c) => c.server === 'registry-registry' && c.path === headPath).reduce((s, c) => s + c.count, 0);

    // Stop: SIGTERM, then read the agent's own account of the on-demand probes.
    const s2 = sample(pid);
    if (opts.heapSnapshots && existsSync(heapDir)) {
      const file = await snapshot(pid, heapDir);
      out.push('', heapTable(heapA, file ? summariseSnapshotFile(file, 25) : null, 'at the end of the window', 'after the burst'));
    }
    const tStop = performance.now();
    child.kill('SIGTERM');
    const res = await Promise.race([done, sleep(10_000).then(() => null)]);
    const stopSeconds = (performance.now() - tStop) / 1000;
    let fresh = 0;
    let shared = 0;
    let cached = 0;
    for (const line of (res?.stdout ?? '').split('\n')) {
      if (!line.includes('"on-demand probe"')) continue;
      try {
        const j = JSON.parse(line) as { shared?: boolean; cached?: boolean };
        if (j.cached) cached++;
        else if (j.shared) shared++;
        else fresh++;
      } catch {
        /* not JSON */
      }
    }
    out.push(heading(`(B) burst: ${opts.burst} × GET /probe?image=${burstTarget}&format=json, ${opts.concurrency} in flight`));
    out.push(
      table(
        ['figure', 'value'],
        [
          [
            'answers (HTTP status: count)',
            `${burst.answers} (${Object.entries(burst.statuses)
              .map(([k, v]) => `${k}: ${v}`)
              .join(', ')}), errors ${burst.errors}`,
          ],
          ['burst wall time (ms)', ms(burst.seconds)],
          ['answers per second', num(burst.answers / burst.seconds, 0)],
          ['latency median / p90 / max (ms)', `${ms(burst.latency.median)} / ${ms(burst.latency.p90)} / ${ms(burst.latency.max)}`],
          ['agent: fresh / shared / cached answers', res ? `${fresh} / ${shared} / ${cached}` : 'agent log unavailable'],
          [`registry: ${headPath} during burst`, String(heads)],
          ['  of which periodic runs of the target', String(b1 - b0)],
          ['  → on-demand probes that reached the registry', String(Math.max(0, heads - (b1 - b0)))],
          ['all requests to all servers during burst', String(total(during))],
          ['agent RSS after burst (MiB)', num(s2.rssKb / 1024, 1)],
          ['SIGTERM → exit', res ? `exit ${res.code ?? res.signal} after ${ms(stopSeconds)} ms` : 'no exit within 10 s (killed)'],
        ],
      ),
    );
    return out.join('\n');
  } finally {
    stopAgentSync();
  }
}
