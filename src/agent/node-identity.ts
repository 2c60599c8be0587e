/**
 * Who and where this node is: its name (config, NODE_NAME, else hostname),
 * its address (HOST_IP from the downward API, else the Node's InternalIP), the
 * subnet (the CIDR of the host interface carrying that address — the agent
 * runs with hostNetwork, so the node's interfaces are visible — or the
 * configured override) and the zone (topology.kubernetes.io/zone label).
 * Address math (src/shared/cidr.ts, ipaddr.js) is pure and tested on fixture interface tables.
 */
import { hostname as osHostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { isIP } from 'node:net';
import type { Log } from '../model/types.js';
import { silentLog } from '../model/types.js';
import type { KubeClient, KubeNode } from '../kube/client.js';
import { networkOf, parseAddress, prefixOfMask, sameAddress } from '../shared/cidr.js';

export { networkOf };

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

/** CIDR of the interface that carries `address`, or null when no interface has it. */
export function subnetFor(address: string, interfaces: Interfaces = networkInterfaces()): string | null {
  if (parseAddress(address) === null) return null;
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) {
      if (!sameAddress(info.address, address)) continue;
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
      const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; status?: unknown };
      log.warn({ node: name, code: e.code, status: e.status }, 'cannot read the Node object; zone unknown');
    }
  }
  const address = detectNodeAddress(env, node);
  const override = opts.configuredSubnet?.trim();
  const subnet = override ? override : address ? subnetFor(address, opts.interfaces ?? networkInterfaces()) : null;
  if (!override && subnet === null) log.warn({ node: name, address }, 'cannot determine the node subnet');
  return { name, address, subnet, zone: zoneOf(node), uid: node?.metadata.uid ?? null, node };
}
