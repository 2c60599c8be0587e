/**
 * Who and where this node is: its name (config, NODE_NAME, else hostname),
 * its address (HOST_IP from the downward API, else the Node's InternalIP), the
 * subnet (the CIDR of the host interface carrying that address — the agent
 * runs with hostNetwork, so the node's interfaces are visible — or the
 * configured override) and the zone (topology.kubernetes.io/zone label).
 * Address math is pure and tested on fixture interface tables.
 */
import { hostname as osHostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { isIP } from 'node:net';
import type { Log } from '../model/types.js';
import { silentLog } from '../model/types.js';
import type { KubeClient, KubeNode } from '../kube/client.js';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';
const LEGACY_ZONE_LABEL = 'failure-domain.beta.kubernetes.io/zone';

type Env = Record<string, string | undefined>;
type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** Configured name, else env NODE_NAME, else the hostname lowercased (as the kubelet does). */
export function nodeName(env: Env = process.env, hostname: () => string = osHostname, configured?: string): string {
  const c = configured?.trim();
  if (c) return c;
  const n = env.NODE_NAME?.trim();
  if (n) return n;
  return hostname().trim().toLowerCase();
}

/** env HOST_IP (downward API status.hostIP), else the node's first InternalIP. */
export function detectNodeAddress(env: Env = process.env, node?: KubeNode | null): string | null {
  const h = env.HOST_IP?.trim();
  if (h && isIP(h) !== 0) return h;
  const internal = node?.status?.addresses?.find((a) => a.type === 'InternalIP' && isIP(a.address) !== 0);
  return internal?.address ?? null;
}

export function zoneOf(node: KubeNode | null | undefined): string | null {
  const labels = node?.metadata.labels ?? {};
  return labels[ZONE_LABEL] ?? labels[LEGACY_ZONE_LABEL] ?? null;
}

interface Parsed {
  family: 4 | 6;
  value: bigint;
}

function parseIp(s: string): Parsed | null {
  const addr = s.replace(/%.*$/, '');
  const fam = isIP(addr);
  if (fam === 4) return { family: 4, value: v4ToBig(addr) };
  if (fam !== 6) return null;
  let text = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const n = v4ToBig(v4[1]);
    text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  return { family: 6, value };
}

function v4ToBig(s: string): bigint {
  return s.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
}

function formatIp(p: Parsed): string {
  if (p.family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => ((p.value >> sh) & 0xffn).toString()).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((p.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, leftmost on ties.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** "10.231.1.10/24" → "10.231.1.0/24"; "fd00:1::5/64" → "fd00:1::/64"; null when malformed. */
export function networkOf(cidr: string): string | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!m?.[1] || !m[2]) return null;
  const ip = parseIp(m[1]);
  const prefix = Number(m[2]);
  if (!ip) return null;
  const bits = ip.family === 4 ? 32 : 128;
  if (prefix > bits) return null;
  const host = (1n << BigInt(bits - prefix)) - 1n;
  const value = ip.value & ~host & ((1n << BigInt(bits)) - 1n);
  return `${formatIp({ family: ip.family, value })}/${prefix}`;
}

function prefixOfMask(mask: string): number | null {
  const p = parseIp(mask);
  if (!p) return null;
  if (p.value === 0n) return 0;
  return p.value.toString(2).replace(/0+$/, '').length;
}

/** CIDR of the interface that carries `address`, or null when no interface has it. */
export function subnetFor(address: string, interfaces: Interfaces = networkInterfaces()): string | null {
  const want = parseIp(address);
  if (!want) return null;
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      const have = parseIp(info.address);
      if (!have || have.family !== want.family || have.value !== want.value) continue;
      if (info.cidr) return networkOf(info.cidr);
      const prefix = prefixOfMask(info.netmask);
      return prefix === null ? null : networkOf(`${info.address}/${prefix}`);
    }
  }
  return null;
}

export interface NodeIdentity {
  name: string;
  address: string | null;
  subnet: string | null;
  zone: string | null;
  uid: string | null;
  /** The Node as read at start (null outside a cluster or when the read failed). */
  node: KubeNode | null;
}

export interface IdentityOptions {
  configuredNode?: string;
  /** Config `subnet` override ("" or null: detect). */
  configuredSubnet?: string | null;
  env?: Env;
  hostname?: () => string;
  interfaces?: Interfaces;
  client?: KubeClient | null;
  log?: Log;
}

/** Never throws: a failed node read leaves zone/uid null and is logged. */
export async function resolveNodeIdentity(opts: IdentityOptions = {}): Promise<NodeIdentity> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? silentLog;
  const name = nodeName(env, opts.hostname ?? osHostname, opts.configuredNode);
  let node: KubeNode | null = null;
  if (opts.client) {
    try {
      node = await opts.client.getNode(name);
    } catch (err) {
      const e = err as { code?: unknown; status?: unknown };
      log.warn({ node: name, code: e?.code, status: e?.status }, 'cannot read the Node object; zone unknown');
    }
  }
  const address = detectNodeAddress(env, node);
  const override = opts.configuredSubnet?.trim();
  const subnet = override ? override : address ? subnetFor(address, opts.interfaces ?? networkInterfaces()) : null;
  if (!override && subnet === null) log.warn({ node: name, address }, 'cannot determine the node subnet');
  return { name, address, subnet, zone: zoneOf(node), uid: node?.metadata.uid ?? null, node };
}
