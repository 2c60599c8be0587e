/**
 * Benchmark (A): one probe of a lab image, stage by stage, next to curl's
 * timings of the same manifest HEAD, and the requests the registry and the
 * token service received per probe (first probe vs steady state, one shared
 * TokenCache). Runs inside nodeA; prints figures, asserts nothing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { join } from 'node:path';
import { NODES, type Lab } from '../test/lab/support/lab.js';
import { REPO_ROOT } from '../test/lab/support/daemons.js';
import { MANIFEST_ACCEPT } from '../src/probe/stages/manifest.js';
import { loadTrust } from '../src/node-config/trust.js';
import type { InnerProbeArgs, InnerProbeLine } from './inner-probe.js';
import { heading, median, ms, num, p90, table } from './report.js';

const INNER = join(REPO_ROOT, 'bench', 'inner-probe.ts');

export interface ProbeBenchOptions {
  /** Probes (and curl runs) per registry. */
  n: number;
}

interface Case {
  title: string;
  host: string;
  image: string;
  token: boolean;
}

/** Per-phase seconds from curl's cumulative -w timings. */
interface CurlRun {
  dns: number;
  tcp: number;
  tls: number;
  request: number;
  total: number;
  code: string;
}

const CURL_W = '%{http_code} %{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\\n';

/**
 * N curl HEADs of the manifest, each a fresh process (fresh DNS/TCP/TLS, like a
 * probe). For the token registry a bearer token is fetched once first; the
 * secrets stay in 0600 files inside the lab's run dir (removed at teardown).
 */
const CURL_SCRIPT = `
set -u
umask 077
ca="$1"; url="$2"; n="$3"; accept="$4"; basic="$5"; realm="$6"; bearer="$7"
hdr=""
if [ -n "$basic" ]; then
  tok=$(curl -sS --http1.1 --cacert "$ca" -H @"$basic" "$realm" | sed -n 's/.*"token":"\\([^"]*\\)".*/\\1/p')
  printf 'Authorization: Bearer %s\\n' "$tok" > "$bearer"
  hdr="$bearer"
fi
i=0
while [ "$i" -lt "$n" ]; do
  if [ -n "$hdr" ]; then
    curl -sS -o /dev/null -I --http1.1 --cacert "$ca" -H "Accept: $accept" -H @"$hdr" -w '${CURL_W}' "$url"
  else
    curl -sS -o /dev/null -I --http1.1 --cacert "$ca" -H "Accept: $accept" -w '${CURL_W}' "$url"
  fi
  i=$((i + 1))
done
`;

async function curlRuns(lab: Lab, c: Case, n: number): Promise<CurlRun[]> {
  let basic = '';
  if (c.token) {
    basic = join(lab.dir, 'bench-basic-header');
    const cred = Buffer.from(`${lab.credentials.user}:${lab.credentials.password}`).toString('base64');
    writeFileSync(basic, `Authorization: Basic ${cred}\n`, { mode: 0o600 });
  }
  const url = `https://${c.host}/v2/lab/probe/manifests/v1`;
  const realm = 'https://auth.lab.test/token?service=token.lab.test&scope=repository:lab/probe:pull';
  const r = await lab.exec(
    'nodeA',
    [
      'sh',
      '-c',
      CURL_SCRIPT,
      'sh',
      lab.paths.caFile,
      url,
      String(n),
      MANIFEST_ACCEPT.join(', '),
      basic,
      realm,
      join(lab.dir, 'bench-bearer-header'),
    ],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0) throw new Error(`curl loop failed in nodeA (exit ${r.code}): ${r.stderr.slice(-400)}`);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [code, nl = 0, conn = 0, app = 0, start = 0, tot = 0] = l.split(' ').map((x, i) => (i === 0 ? x : Number(x))) as [
        string,
        ...number[],
      ];
      return { code, dns: nl, tcp: conn - nl, tls: app - conn, request: start - app, total: tot };
    });
}

async function innerProbes(lab: Lab, c: Case, n: number): Promise<InnerProbeLine[]> {
  const args: InnerProbeArgs = {
    target: c.image,
    n,
    caFile: lab.paths.caFile,
    dockerConfig: c.token ? lab.paths.dockerConfig.good : null,
    resolvConf: lab.paths.resolvConf.nodeA,
    hosts: lab.paths.hosts.nodeA,
    logDir: lab.paths.logs,
    client: NODES.nodeA.address,
    settleMs: 60,
    timeoutMs: 10_000,
  };
  const r = await lab.exec('nodeA', ['node', '--import', 'tsx', INNER, JSON.stringify(args)], { timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`inner-probe failed in nodeA (exit ${r.code}): ${r.stderr.slice(-600)}`);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as InnerProbeLine);
}

/** Row label of a step: the stage, plus the host when it is not the registry itself. */
function stepLabel(stage: string, host: string | null, registry: string): string {
  const h = (host ?? '').replace(/:443$/, '');
  const names: Record<string, string> = { http: 'http (GET /v2/)', auth: 'auth', manifest: 'manifest (HEAD…)' };
  const base = names[stage] ?? stage;
  return h && h !== registry ? `${base} → ${h}` : base;
}

const CURL_OF: Record<string, keyof CurlRun> = { dns: 'dns', tcp: 'tcp', tls: 'tls', 'manifest (HEAD…)': 'request', total: 'total' };

function report(c: Case, probes: InnerProbeLine[], curl: CurlRun[]): string {
  const out: string[] = [heading(`(A) probe of ${c.image} — ${c.title}, ${probes.length} probes in one process (nodeA)`)];
  const failed = probes.filter((p) => !p.ok);
  if (failed.length > 0) out.push(`!! ${failed.length} probe(s) failed: ${[...new Set(failed.map((p) => p.reason))].join(', ')}`);
  const labels: string[] = [];
  const perProbe = probes.map((p) => {
    const m = new Map<string, number>();
    for (const s of p.steps) {
      const l = stepLabel(s.stage, s.host, c.host);
      if (!labels.includes(l)) labels.push(l);
      m.set(l, (m.get(l) ?? 0) + s.seconds);
    }
    m.set('total', p.seconds);
    return m;
  });
  labels.push('total');
  const steady = perProbe.slice(1);
  const curlCodes = [...new Set(curl.map((r) => r.code))].join(',');
  const rows = labels.map((l) => {
    const vals = steady.map((m) => m.get(l)).filter((v): v is number => v !== undefined);
    const ck = CURL_OF[l];
    return [
      l,
      ms(perProbe[0]?.get(l)),
      ms(median(vals)),
      ms(p90(vals)),
      ck ? ms(median(curl.map((r) => r[ck] as number))) : '',
      ck ? ms(p90(curl.map((r) => r[ck] as number))) : '',
    ];
  });
  out.push(
    table(
      ['stage (ms)', 'first probe', `median 2..${probes.length}`, `p90 2..${probes.length}`, `curl median (${curl.length})`, 'curl p90'],
      rows,
    ),
  );
  out.push(
    `curl: HEAD ${c.host}/v2/lab/probe/manifests/v1, HTTP/1.1, same Accept list, --cacert; status ${curlCodes || 'none'}; ` +
      'curl\'s "manifest" is time_starttransfer − time_appconnect' +
      (c.token ? ' with a bearer token fetched once beforehand' : '') +
      '.',
  );

  const classes: string[] = [];
  const counts = probes.map((p) => {
    const m = new Map<string, number>();
    for (const r of p.requests) {
      const k = `${r.server}: ${r.cls}`;
      if (!classes.includes(k)) classes.push(k);
      m.set(k, (m.get(k) ?? 0) + r.count);
    }
    return m;
  });
  classes.sort();
  const mean = (k: string): number =>
    steady.length === 0 ? Number.NaN : counts.slice(1).reduce((s, m) => s + (m.get(k) ?? 0), 0) / steady.length;
  const sum = (m: Map<string, number> | undefined): number => [...(m?.values() ?? [])].reduce((a, b) => a + b, 0);
  const reqRows = classes.map((k) => [k, num(counts[0]?.get(k) ?? 0), num(mean(k)), num(counts.reduce((s, m) => s + (m.get(k) ?? 0), 0))]);
  reqRows.push([
    'all requests',
    num(sum(counts[0])),
    num(steady.length ? counts.slice(1).reduce((s, m) => s + sum(m), 0) / steady.length : Number.NaN),
    num(counts.reduce((s, m) => s + sum(m), 0)),
  ]);
  const conns = probes.map((p) => p.connections);
  reqRows.push([
    'registry connections carrying them',
    num(conns[0]),
    num(steady.length ? conns.slice(1).reduce((a, b) => a + b, 0) / steady.length : Number.NaN),
    num(conns.reduce((a, b) => a + b, 0)),
  ]);
  out.push('', 'HTTP requests received per probe (server logs; goal: 1 manifest HEAD once a token is cached)');
  out.push(table(['server: request', 'first probe', `mean 2..${probes.length}`, `total ${probes.length}`], reqRows));
  out.push(
    "(curl: 1 request on 1 connection per run. The probe's tls stage opens one more connection that sends no request, so it is not counted.)",
  );
  return out.join('\n');
}

export async function probeBench(lab: Lab, opts: ProbeBenchOptions): Promise<string> {
  const cases: Case[] = [
    { title: 'anonymous', host: 'registry.lab.test', image: lab.ref('registry.lab.test'), token: false },
    { title: 'token auth (good docker config)', host: 'token.lab.test', image: lab.ref('token.lab.test'), token: true },
  ];
  const parts: string[] = [];
  for (const c of cases) {
    const probes = await innerProbes(lab, c, opts.n);
    const curl = await curlRuns(lab, c, opts.n);
    parts.push(report(c, probes, curl));
  }
  parts.push(secureContextCost(lab.paths.caFile));
  return parts.join('\n');
}

/**
 * What one TLS secure context costs to build for the probe's trust set
 * (system roots + the lab CA). pullprobe builds it once per trust set and
 * shares it between the TLS stage and the HTTP client (trust.ts).
 */
function secureContextCost(caFile: string): string {
  const ca = loadTrust([caFile], (p) => readFileSync(p, 'utf8')).ca;
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    createSecureContext({ ca });
    times.push((performance.now() - t) / 1000);
  }
  return (
    `\nfor reference, on this machine, tls.createSecureContext for the ${ca.length}-certificate trust set (median of 7): ` +
    `${ms(median(times))} ms — built once per trust set and shared, not per connection`
  );
}
