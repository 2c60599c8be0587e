/**
 * Network-namespace plumbing for the lab: names, topology, process discovery
 * and a synchronous teardown (usable from signal and exit handlers).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { ADDR, NODES, NODE_NAMES, ROUTER_SERVICES_ADDRESS, type NodeName } from './addresses.js';

export const NS_PREFIX = 'pp-';
export type Role = 'router' | 'services' | NodeName;

export function nsName(run: string, role: Role): string {
  return `${NS_PREFIX}${run}-${role}`;
}

/** Run id of a lab namespace name (`pp-<run>-<role>`), or undefined. */
export function runIdOf(ns: string): string | undefined {
  const m = /^pp-([a-z0-9]+)-(router|services|node[A-Z])$/.exec(ns);
  return m?.[1];
}

/** Run a command synchronously; throws with stderr on failure. */
export function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (rc ${r.status}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function listNamespaces(): string[] {
  // /run/netns holds one file per named namespace; cheaper than `ip netns list`.
  if (!existsSync('/run/netns')) return [];
  return readdirSync('/run/netns');
}

export function listLabNamespaces(): string[] {
  return listNamespaces().filter((n) => n.startsWith(NS_PREFIX));
}

/** PIDs currently inside a named namespace. */
export function nsPids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((p) => p > 1 && p !== process.pid);
}

/** Alive = exists and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL whatever is left. */
export function killPidsSync(pids: number[], graceMs = 1000): void {
  const live = pids.filter(isAlive);
  for (const p of live) signal(p, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (Date.now() < until && live.some(isAlive)) sleepSync(20);
  for (const p of live.filter(isAlive)) signal(p, 'SIGKILL');
  const hard = Date.now() + 1000;
  while (Date.now() < hard && live.some(isAlive)) sleepSync(10);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/**
 * Delete lab namespaces: kill recorded PIDs that are still inside a lab
 * namespace, then anything left in the namespaces, then `ip netns del`.
 */
export function deleteNamespacesSync(names: string[], recordedPids: number[] = []): void {
  const inLab = recordedPids.filter((p) => {
    const r = spawnSync('ip', ['netns', 'identify', String(p)], { encoding: 'utf8' });
    return r.status === 0 && r.stdout.trim().startsWith(NS_PREFIX);
  });
  killPidsSync(inLab);
  const leftovers = names.flatMap(nsPids);
  if (leftovers.length > 0) killPidsSync(leftovers, 500);
  for (const n of names) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

/** Create the four namespaces, veth links, addresses and routes. */
export function createTopology(runId: string): void {
  const ns = (r: Role): string => nsName(runId, r);
  const R = ns('router');
  const S = ns('services');
  const all: Role[] = ['router', 'services', ...NODE_NAMES];
  run('ip', ['-batch', '-'], all.map((r) => `netns add ${ns(r)}`).join('\n') + '\n');

  const router: string[] = ['link set lo up'];
  const links: Array<[string, string, string]> = [
    ['s0', S, `${ROUTER_SERVICES_ADDRESS}/24`],
    ...NODE_NAMES.map((n): [string, string, string] => [`v${n}`.slice(0, 15), ns(n), `${NODES[n].gateway}/24`]),
  ];
  for (const [dev, peerNs, addr] of links) {
    router.push(`link add ${dev} type veth peer name eth0 netns ${peerNs}`);
    router.push(`addr add ${addr} dev ${dev}`, `link set ${dev} up`);
  }
  run('ip', ['-n', R, '-batch', '-'], router.join('\n') + '\n');
  run('ip', ['netns', 'exec', R, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.icmp_ratelimit=0']);

  for (const n of NODE_NAMES) {
    const node = NODES[n];
    run(
      'ip',
      ['-n', ns(n), '-batch', '-'],
      ['link set lo up', `addr add ${node.address}/24 dev eth0`, 'link set eth0 up', `route add default via ${node.gateway}`].join('\n') +
        '\n',
    );
  }

  const svcAddrs = [...new Set(Object.values(ADDR))].filter((a) => a.startsWith('10.231.100.'));
  run(
    'ip',
    ['-n', S, '-batch', '-'],
    [
      'link set lo up',
      ...svcAddrs.map((a) => `addr add ${a}/24 dev eth0`),
      'link set eth0 up',
      `route add 10.231.0.0/16 via ${ROUTER_SERVICES_ADDRESS}`,
      'route add blackhole 10.231.200.0/24',
    ].join('\n') + '\n',
  );
}
