/**
 * DNS stage: resolve the registry host the way glibc would on this node
 * (IP literal, then /etc/hosts, then the resolv.conf search list against the
 * nameservers), but ask every nameserver in parallel so a broken one shows
 * up as `degraded` even when glibc's answer is fine.
 *
 * Verdict model (glibc res_search / res_send): per candidate name, walk the
 * rounds (attempts) and within a round the nameservers in file order; the
 * first definitive reply (an answer, NXDOMAIN, or NOERROR without data)
 * decides; SERVFAIL, REFUSED, timeouts and ICMP errors pass to the next
 * server. `rotate` only spreads load and does not change the verdict.
 */
import { isIP } from 'node:net';
import { reasonInfo, type Reason } from '../../diagnosis/catalog.js';
import { remainingMs, stageTimer } from '../../net/deadline.js';
import { queryDnsTypes, type queryDns, type DnsQueryResult, type DnsQueryType, type DnsTransport } from '../../net/dns-query.js';
import { lookupHosts, type HostsTable } from '../../node-config/hosts-file.js';
import { usedNameservers, type Nameserver, type ResolvConf } from '../../node-config/resolv-conf.js';
import type { ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import type { DnsCandidateOutcome, DnsDetail, DnsNameserverResult } from '../../model/step-detail.js';
export type { DnsNameserverResult, DnsCandidateOutcome, DnsCandidateResult, DnsDetail } from '../../model/step-detail.js';

/** What the DNS stage resolves: a host name, or an IP literal (answered without a query). */
export interface DnsInput {
  host: string;
}

export interface DnsOptions {
  resolvConf: ResolvConf;
  hosts?: HostsTable;
  /** Overrides every nameserver's port (tests run servers on a random port). */
  port?: number;
  /** Asks one type at a time instead of queryDnsTypes' one socket for every family (tests script replies). */
  query?: typeof queryDns;
  transport?: DnsTransport;
  families?: DnsQueryType[];
}

type Failure = 'servfail' | 'refused' | 'timeout' | 'unreachable';
type Attempt =
  | { kind: 'answer'; addresses: string[] }
  | { kind: 'nxdomain' }
  | { kind: 'no_answer' }
  | { kind: 'fail'; failure: Failure; rcode: string | null; code?: string };

interface ServerRun {
  attempts: Attempt[];
  result: DnsNameserverResult;
}

const FAILURE_REASON: Record<Failure, Reason> = {
  servfail: 'dns_servfail',
  refused: 'dns_refused',
  timeout: 'dns_timeout',
  unreachable: 'dns_unreachable',
};

function serverLabel(ns: Nameserver, port: number): string {
  if (port === 53) return ns.address;
  return isIP(ns.address.split('%')[0] ?? '') === 6 ? `[${ns.address}]:${port}` : `${ns.address}:${port}`;
}

/** Combine the A and AAAA replies of one attempt as glibc's getaddrinfo does. */
function combine(results: DnsQueryResult[]): Attempt {
  const addresses = results.flatMap((r) => r.answers);
  if (addresses.length > 0) return { kind: 'answer', addresses: [...new Set(addresses)] };
  const failed = results.find((r) => r.error !== undefined || (r.rcode !== 'NOERROR' && r.rcode !== 'NXDOMAIN'));
  if (failed !== undefined) {
    if (failed.error === 'timeout') return { kind: 'fail', failure: 'timeout', rcode: null };
    if (failed.error !== undefined) {
      const base = { kind: 'fail', failure: 'unreachable', rcode: null } as const;
      return failed.errorCode === undefined ? base : { ...base, code: failed.errorCode };
    }
    return { kind: 'fail', failure: failed.rcode === 'REFUSED' ? 'refused' : 'servfail', rcode: failed.rcode };
  }
  return results[0]?.rcode === 'NXDOMAIN' ? { kind: 'nxdomain' } : { kind: 'no_answer' };
}

/** Shared by the servers asked for one candidate name. */
interface Round {
  /** Aborts once glibc's replay has a verdict: later retries would not change it. */
  stop: AbortSignal;
  onAttempt(): void;
}

async function askServer(
  ctx: ProbeContext,
  ns: Nameserver,
  port: number,
  name: string,
  conf: ResolvConf,
  opts: DnsOptions,
  attempts: Attempt[],
  round: Round,
): Promise<ServerRun> {
  const query = opts.query;
  const families = opts.families ?? ['A', 'AAAA'];
  const timeoutMs = Math.max(1, conf.timeoutSeconds) * 1000;
  const started = ctx.clock.now();
  for (let i = 0; i < Math.max(1, conf.attempts); i++) {
    if (i > 0 && round.stop.aborted) break;
    if (remainingMs(ctx) <= 0) {
      attempts.push({ kind: 'fail', failure: 'timeout', rcode: null });
      break;
    }
    const timer = stageTimer(ctx, timeoutMs);
    let results: DnsQueryResult[];
    try {
      const ask = {
        server: ns.address,
        port,
        name,
        timeoutMs,
        clock: ctx.clock,
        timers: ctx.timers,
        signal: i > 0 ? AbortSignal.any([timer.signal, round.stop]) : timer.signal,
        ...(opts.transport ? { transport: opts.transport } : {}),
      };
      // Every family on one socket per nameserver, as glibc asks A and AAAA.
      results =
        query === undefined
          ? await queryDnsTypes({ ...ask, types: families })
          : await Promise.all(families.map((type) => query({ ...ask, type })));
    } finally {
      timer.dispose();
    }
    const attempt = combine(results);
    attempts.push(attempt);
    round.onAttempt();
    if (attempt.kind !== 'fail' || attempt.failure !== 'timeout') break;
  }
  const final: Attempt = attempts[attempts.length - 1] ?? { kind: 'fail', failure: 'timeout', rcode: null };
  const result: DnsNameserverResult = {
    server: serverLabel(ns, port),
    rcode: final.kind === 'fail' ? final.rcode : final.kind === 'nxdomain' ? 'NXDOMAIN' : 'NOERROR',
    seconds: (ctx.clock.now() - started) / 1000,
  };
  if (final.kind === 'fail' && (final.failure === 'timeout' || final.failure === 'unreachable')) {
    result.error = final.failure;
    if (final.code !== undefined) result.code = final.code;
  }
  if (final.kind === 'answer') result.addresses = orderAddresses(final.addresses);
  return { attempts, result };
}

function orderAddresses(list: string[]): string[] {
  const unique = [...new Set(list)];
  return [...unique.filter((a) => isIP(a) === 4), ...unique.filter((a) => isIP(a) !== 4)];
}

/** glibc res_send: rounds of attempts, servers in order, first definitive reply wins. */
function decide(runs: Attempt[][], attempts: number): Exclude<Attempt, { kind: 'fail' }> | undefined {
  for (let round = 0; round < Math.max(1, attempts); round++) {
    for (const run of runs) {
      const a = run[round] ?? run[run.length - 1];
      if (a !== undefined && a.kind !== 'fail') return a;
    }
  }
  return undefined;
}

interface CandidateRun {
  name: string;
  outcome: DnsCandidateOutcome;
  addresses: string[];
  runs: ServerRun[];
  degraded: boolean;
}

async function tryCandidate(
  ctx: ProbeContext,
  name: string,
  servers: Nameserver[],
  port: number | undefined,
  conf: ResolvConf,
  opts: DnsOptions,
): Promise<CandidateRun> {
  // Every server is asked in parallel (so each one's health is known), but
  // once the rounds all servers have finished already decide the verdict,
  // pending retries are dropped: waiting on a dead server's second attempt
  // would spend the probe's budget without changing the answer.
  const all: Attempt[][] = servers.map(() => []);
  const stop = new AbortController();
  const settled = (a: Attempt[]): boolean => {
    const last = a[a.length - 1];
    return a.length >= Math.max(1, conf.attempts) || (last !== undefined && !(last.kind === 'fail' && last.failure === 'timeout'));
  };
  const onAttempt = (): void => {
    const rounds = Math.min(...all.map((a) => (settled(a) ? Infinity : a.length)));
    if (rounds === Infinity || rounds === 0) return;
    if (decide(all, Math.min(rounds, conf.attempts)) !== undefined) stop.abort();
  };
  const runs = await Promise.all(
    servers.map((ns, i) => askServer(ctx, ns, port ?? ns.port, name, conf, opts, all[i] ?? [], { stop: stop.signal, onAttempt })),
  );
  const finals = runs.map((r) => r.attempts[r.attempts.length - 1]);
  const kinds = new Set(finals.filter((a) => a !== undefined && a.kind !== 'fail').map((a) => a.kind));
  const degraded = kinds.size > 1 || finals.some((a) => a === undefined || a.kind === 'fail');
  const decision = decide(all, conf.attempts);
  if (decision === undefined) {
    const first = finals[0];
    const failure: Failure = first?.kind === 'fail' ? first.failure : 'timeout';
    return { name, outcome: failure, addresses: [], runs, degraded };
  }
  if (decision.kind === 'answer') {
    return { name, outcome: 'ok', addresses: orderAddresses(decision.addresses), runs, degraded };
  }
  return { name, outcome: decision.kind, addresses: [], runs, degraded };
}

/**
 * Walk the candidates in glibc's order (res_search). Returns the candidate
 * whose result is the verdict, and every candidate run.
 */
async function search(
  ctx: ProbeContext,
  host: string,
  conf: ResolvConf,
  opts: DnsOptions,
): Promise<{ verdict: CandidateRun; tried: CandidateRun[] }> {
  const servers = usedNameservers(conf);
  const tried: CandidateRun[] = [];
  const run = async (name: string): Promise<CandidateRun> => {
    const r = await tryCandidate(ctx, name, servers, opts.port, conf, opts);
    tried.push(r);
    return r;
  };
  const trailingDot = host.endsWith('.');
  const bare = trailingDot ? host.slice(0, -1) : host;
  const dots = (bare.match(/\./g) ?? []).length;
  let saved: CandidateRun | undefined;
  let nodata: CandidateRun | undefined;
  let servfail: CandidateRun | undefined;
  let searched = false;
  let rootOnList = false;

  // A trailing dot: the name as given is the only candidate.
  if (trailingDot) {
    const r = await run(bare);
    return { verdict: r, tried };
  }
  if (dots >= conf.ndots) {
    const r = await run(bare);
    if (r.outcome === 'ok') return { verdict: r, tried };
    saved = r;
  }
  for (const domain of conf.search) {
    searched = true;
    const d = domain.replace(/^\./, '').replace(/\.$/, '');
    if (d === '') rootOnList = true;
    const r = await run(d === '' ? bare : `${bare}.${d}`);
    if (r.outcome === 'ok') return { verdict: r, tried };
    // Every server ICMP-unreachable: glibc gives up at once (errno ECONNREFUSED).
    if (r.runs.every((s) => s.result.error === 'unreachable')) {
      return { verdict: r, tried };
    }
    if (r.outcome === 'no_answer') nodata = r;
    else if (r.outcome === 'servfail') servfail = r;
    else if (r.outcome !== 'nxdomain') break;
  }
  if ((dots > 0 || !searched || !conf.noTldQuery) && saved === undefined && !rootOnList) {
    const r = await run(bare);
    if (r.outcome === 'ok') return { verdict: r, tried };
  }
  const last = tried[tried.length - 1];
  const verdict = saved ?? nodata ?? servfail ?? last;
  if (verdict === undefined) throw new Error('dns search tried no candidate');
  return { verdict, tried };
}

function outcomeReason(outcome: DnsCandidateOutcome): Reason | undefined {
  if (outcome === 'ok') return undefined;
  if (outcome === 'nxdomain') return 'dns_nxdomain';
  if (outcome === 'no_answer') return 'dns_no_answer';
  return FAILURE_REASON[outcome];
}

function familyOf(address: string): DnsQueryType {
  return isIP(address.split('%')[0] ?? '') === 6 ? 'AAAA' : 'A';
}

/**
 * The DNS stage: every outcome carries the resolv.conf used and the node-file
 * problems (which degrade an ok verdict), and a failure's fix names that file.
 */
export const dnsStage = async function dnsStage(ctx: ProbeContext, input: DnsInput, opts: DnsOptions): Promise<StageOutcome<DnsDetail>> {
  const out = await resolveHost(ctx, input, opts);
  const { file, problems } = opts.resolvConf;
  if (file !== undefined && out.detail.source === 'dns') out.detail.resolvConf = file;
  if (problems !== undefined && problems.length > 0) {
    out.detail.problems = [...problems];
    if (out.ok) out.degraded = true;
  }
  if (!out.ok && out.reason !== undefined && file !== undefined && file !== DEFAULT_RESOLV_CONF_PATH) {
    out.hint = reasonInfo(out.reason).hint.replaceAll(DEFAULT_RESOLV_CONF_PATH, file);
    if (!out.hint.includes(file)) out.hint += ` (this node's resolver settings are read from ${file})`;
  }
  return out;
} satisfies StageFn<DnsInput, DnsOptions, DnsDetail>;

const DEFAULT_RESOLV_CONF_PATH = '/etc/resolv.conf';

async function resolveHost(ctx: ProbeContext, input: DnsInput, opts: DnsOptions): Promise<StageOutcome<DnsDetail>> {
  const started = ctx.clock.now();
  const seconds = (): number => (ctx.clock.now() - started) / 1000;
  const host = input.host;
  const literal = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(literal.split('%')[0] ?? '') !== 0) {
    return {
      ok: true,
      host,
      seconds: seconds(),
      detail: { addresses: [literal], source: 'literal', name: literal, nameservers: [] },
    };
  }
  const families = opts.families ?? ['A', 'AAAA'];
  if (opts.hosts) {
    const fromHosts = lookupHosts(opts.hosts, host).filter((a) => families.includes(familyOf(a)));
    if (fromHosts.length > 0) {
      return {
        ok: true,
        host,
        seconds: seconds(),
        detail: { addresses: fromHosts, source: 'hosts', name: host, nameservers: [] },
      };
    }
  }

  const { verdict, tried } = await search(ctx, host, opts.resolvConf, opts);
  const detail: DnsDetail = {
    addresses: verdict.addresses,
    source: 'dns',
    name: verdict.name,
    nameservers: verdict.runs.map((r) => r.result),
  };
  if (tried.length > 1) {
    detail.tried = tried.map((t) => ({ name: t.name, outcome: t.outcome, nameservers: t.runs.map((r) => r.result) }));
  }
  if (opts.resolvConf.warnings.length > 0) detail.warnings = [...opts.resolvConf.warnings];

  const reason = outcomeReason(verdict.outcome);
  if (reason === undefined) {
    const degraded = tried.some((t) => t.degraded);
    return { ok: true, host, degraded, seconds: seconds(), detail };
  }
  const first = verdict.runs[0]?.result.server;
  const message = `lookup ${verdict.name}${first ? ` on ${first}` : ''}: ${reasonInfo(reason).message}`;
  return { ok: false, reason, message, host, seconds: seconds(), detail };
}
