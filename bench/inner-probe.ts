/**
 * Runs INSIDE a lab node (via lab.exec): N sequential probes of one target in
 * one process, sharing one TokenCache, as the agent does. After each probe it
 * waits `settleMs` and counts the requests the lab servers logged since the
 * previous probe. Prints one JSON line per probe on stdout:
 *   {"i":0,"ok":true,"reason":null,"seconds":0.25,"steps":[{"stage":"dns","host":"…","seconds":…}],
 *    "requests":[{"server":"registry-token","cls":"HEAD manifest:tag","count":1}]}
 *
 *   node --import tsx bench/inner-probe.ts '<json InnerProbeArgs>'
 */
import { loadEnvironment } from '../src/node-config/environment.js';
import { probeTarget } from '../src/probe/chain.js';
import { TokenCache } from '../src/probe/token-cache.js';
import { mark, since } from './registry-log.js';

export interface InnerProbeArgs {
  target: string;
  n: number;
  caFile: string;
  dockerConfig: string | null;
  resolvConf: string;
  hosts: string;
  logDir: string;
  /** Only requests from this address count (the node's). */
  client: string;
  settleMs: number;
  timeoutMs: number;
}

export interface InnerProbeLine {
  i: number;
  ok: boolean;
  reason: string | null;
  seconds: number;
  steps: Array<{ stage: string; host: string | null; seconds: number }>;
  requests: Array<{ server: string; cls: string; count: number }>;
  /** Registry connections (client ports) that carried this probe's requests. */
  connections: number;
}

async function main(): Promise<number> {
  const raw = process.argv[2];
  if (!raw) {
    process.stderr.write('usage: inner-probe.ts JSON-ARGS\n');
    return 2;
  }
  const a = JSON.parse(raw) as InnerProbeArgs;
  const env = loadEnvironment({
    resolvConfPath: a.resolvConf,
    hostsPath: a.hosts,
    caFiles: [a.caFile],
    dockerConfigPath: a.dockerConfig,
  });
  const tokenCache = new TokenCache();
  let m = mark(a.logDir);
  for (let i = 0; i < a.n; i++) {
    const r = await probeTarget(a.target, env, { timeoutMs: a.timeoutMs, tokenCache });
    await new Promise((res) => setTimeout(res, a.settleMs));
    const seen = since(a.logDir, m, a.client);
    m = seen.next;
    const line: InnerProbeLine = {
      i,
      ok: r.ok,
      reason: r.reason,
      seconds: r.seconds,
      steps: r.steps.map((s) => ({ stage: s.stage, host: s.host ?? null, seconds: s.seconds })),
      requests: seen.counts.map((c) => ({ server: c.server, cls: c.cls, count: c.count })),
      connections: seen.connections,
    };
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`inner-probe: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
