/**
 * The issue-10 table: each measure, pullprobe's figure, the peer's figure in
 * the same run and the goal, from the figures the bench parts returned.
 * Printed, never asserted.
 */
import type { AgentFigures } from './agent-bench.js';
import { FLOOR_WALL, FLOOR_WALL_UNDICI, type AgentRun, type PeerFigures } from './peer-bench.js';
import { heading, ms, num, table } from './report.js';

const ratio = (a: number | undefined, b: number | undefined): string =>
  a !== undefined && b !== undefined && Number.isFinite(a / b) && b > 0 ? ` (${num(a / b, 1)}×)` : '';

/** A figure of the agent on this machine's node and, when it ran, on the image's runtime. */
function onRuntimes(peer: PeerFigures, show: (a: AgentRun) => string): string | undefined {
  const runs = [peer.machineAgent, peer.shippedAgent].filter((a): a is AgentRun => a !== undefined);
  return runs.length > 0 ? runs.map((a) => `${show(a)} on ${a.runtime}`).join('; ') : undefined;
}

export function summaryTable(agent: AgentFigures, peer: PeerFigures): string {
  const w = peer.wall ?? {};
  const sv = peer.shippedVersion;
  const m = peer.machineAgent;
  const bb = peer.blackboxCpuPerProbe !== undefined;
  const rows: string[][] = [
    [
      'daemon CPU per fresh probe',
      onRuntimes(
        peer,
        (a) =>
          `${ms(a.cpuPerProbe)} ms${ratio(a.cpuPerProbe, peer.blackboxCpuPerProbe)} steady (first window ${ms(a.cpuPerProbeFirst)} ms)`,
      ) ?? '—',
      bb
        ? `blackbox_exporter HEAD ${ms(peer.blackboxCpuPerProbe)} ms steady (first window ${ms(peer.blackboxCpuPerProbeFirst)} ms)`
        : 'blackbox_exporter not installed',
      '≤ 1.5× blackbox',
    ],
    [
      'registry requests per target per steady cycle',
      num(m?.requestsPerProbe),
      bb ? `blackbox ${num(peer.blackboxRequestsPerProbe)}` : '—',
      '1',
    ],
    [
      'TCP connections / TLS handshakes per probe',
      `${num(m?.connectionsPerProbe)} / ${num(m?.connectionsPerProbe)}`,
      bb ? `blackbox ${num(peer.blackboxConnectionsPerProbe)} / ${num(peer.blackboxConnectionsPerProbe)}` : '—',
      '1 / 1',
    ],
    [
      'registry CPU spent per probe',
      `${ms(m?.registryCpuPerProbe)} ms`,
      bb ? `blackbox ${ms(peer.registryCpuPerBlackboxProbe)} ms` : '—',
      '≤ blackbox',
    ],
    [
      'CLI one-shot wall (start-up included)',
      `${ms(w['pullprobe probe'])} ms (node -e 0: ${ms(w['node -e 0'])} ms)` +
        (sv ? `; ${ms(w[`pullprobe probe (node ${sv})`])} ms on ${sv} (node -e 0: ${ms(w[`node -e 0 (node ${sv})`])} ms)` : ''),
      `skopeo inspect --raw ${ms(w['skopeo inspect --raw'])} ms, skopeo inspect ${ms(w['skopeo inspect'])} ms, curl ${ms(w['curl -w (HEAD)'])} ms; ` +
        `Node's floor (the same wire steps, built-ins only / HEAD through undici): ${ms(w[FLOOR_WALL])} / ${ms(w[FLOOR_WALL_UNDICI])} ms` +
        (sv ? `, ${ms(w[`${FLOOR_WALL} (node ${sv})`])} / ${ms(w[`${FLOOR_WALL_UNDICI} (node ${sv})`])} ms on ${sv}` : ''),
      '≤ 150 ms',
    ],
    [
      'agent RSS, 20 targets @ 1 s',
      `${num(agent.rssMiB, 1)} MiB (anonymous ${num(agent.anonMiB, 1)}), VmHWM ${num(agent.hwmMiB, 1)}` +
        (onRuntimes(
          peer,
          (a) => `${num(a.rssMiB, 1)} MiB, of which node binary ${num(a.binaryMiB, 1)}, anonymous ${num(a.anonMiB, 1)}`,
        )?.replace(/^/, '; 5 targets (C): ') ?? ''),
      (bb ? `blackbox ${num(peer.blackboxRssMiB, 1)} MiB` : '—') +
        (peer.floorMemory ?? [])
          .map((m) => `; Node's floor (the runtime and the design's libraries, idle) ${num(m.rssMiB, 1)} MiB on ${m.runtime}`)
          .join(''),
      '≤ 64 MiB steady, bounded peak',
    ],
    [
      'agent idle CPU',
      `${num(peer.idleAgentMsPerS, 3)} ms/s (+ ${num(peer.postCycleAgentMs, 0)} ms once after a cycle: GC)`,
      `bare Node ${num(peer.idleNodeMsPerS, 3)} ms/s`,
      '≤ 0.5 ms/s',
    ],
    [
      'agent start → ready, 200 targets',
      peer.readySeconds == null ? 'not ready in 30 s' : `${ms(peer.readySeconds)} ms`,
      bb ? `blackbox ${peer.blackboxReadySeconds == null ? '—' : `${ms(peer.blackboxReadySeconds)} ms`}` : '—',
      '≤ 1 s',
    ],
  ];
  return [
    heading('Summary (issue 10): pullprobe next to its peers in this run'),
    table(['measure', 'pullprobe', 'peer in the same run', 'goal'], rows),
  ].join('\n');
}
