/**
 * Real HTTP proxies for the lab (Lab.up({ proxy: true })): Debian's tinyproxy
 * in the services namespace, where the registries are on the same link, so
 * a fault on the router that blocks subnet A's direct path to the
 * registries (drop-443) leaves the road through the proxy open.
 *
 *   proxy.lab.test:3128       CONNECT to 443 allowed
 *   proxy-deny.lab.test:3128  CONNECT only to 563: a CONNECT to 443 gets "403 Access violation"
 *   proxy-auth.lab.test:3128  BasicAuth with the lab user: without it "407 Proxy Authentication Required"
 *
 * tinyproxy resolves names with glibc, so it runs with a lab resolv.conf
 * bind-mounted over /etc/resolv.conf (as containerd does in the nodes).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADDR, DNS_NAMES, PROXY_PORT, SUBNETS } from './addresses.js';
import { spawnInNs, waitListening, type Daemon } from './daemons.js';
import type { LabCredentials } from './pki.js';

export type ProxyKind = 'ok' | 'deny' | 'auth';

export const PROXIES: Record<ProxyKind, { name: string; address: string; connectPort: number; auth: boolean }> = {
  ok: { name: DNS_NAMES.proxy, address: ADDR.proxy, connectPort: 443, auth: false },
  deny: { name: DNS_NAMES.proxyDeny, address: ADDR.proxyDeny, connectPort: 563, auth: false },
  auth: { name: DNS_NAMES.proxyAuth, address: ADDR.proxyAuth, connectPort: 443, auth: true },
};

/** A proxy URL (no userinfo); `dead` is a services address with nothing on the port (connection refused). */
export function proxyUrl(kind: ProxyKind | 'dead'): string {
  if (kind === 'dead') return `http://${ADDR.dnsDead}:${PROXY_PORT}`;
  return `http://${PROXIES[kind].name}:${PROXY_PORT}`;
}

/** tinyproxy.conf text (pure). */
export function tinyproxyConfig(kind: ProxyKind, creds: Pick<LabCredentials, 'user' | 'password'>): string {
  const p = PROXIES[kind];
  return [
    `Port ${PROXY_PORT}`,
    `Listen ${p.address}`,
    'Timeout 30',
    'LogLevel Info',
    'MaxClients 50',
    `ConnectPort ${p.connectPort}`,
    `Allow ${SUBNETS.A}`,
    `Allow ${SUBNETS.B}`,
    `Allow ${SUBNETS.services}`,
    'DisableViaHeader Yes',
    'User nobody',
    'Group nogroup',
    ...(p.auth ? [`BasicAuth ${creds.user} ${creds.password}`] : []),
    '',
  ].join('\n');
}

const TINYPROXY = '/usr/bin/tinyproxy';
const BIND = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"';

/** Start the three proxies; resolves when all listen. */
export async function startProxies(
  servicesNs: string,
  dir: string,
  creds: Pick<LabCredentials, 'user' | 'password'>,
  onStart: (d: Daemon) => void,
): Promise<void> {
  if (!existsSync(TINYPROXY)) throw new Error(`Lab.up({ proxy: true }) needs ${TINYPROXY} (Debian package tinyproxy)`);
  const confDir = join(dir, 'conf');
  mkdirSync(confDir, { recursive: true });
  const resolv = join(confDir, 'proxy-resolv.conf');
  const hosts = join(confDir, 'proxy-hosts');
  writeFileSync(resolv, `nameserver ${ADDR.dnsGood}\nnameserver ${ADDR.dnsGood2}\noptions timeout:1 attempts:2\n`);
  writeFileSync(hosts, '127.0.0.1 localhost\n');
  const waits: Array<Promise<void>> = [];
  for (const kind of Object.keys(PROXIES) as ProxyKind[]) {
    const conf = join(confDir, `tinyproxy-${kind}.conf`);
    writeFileSync(conf, tinyproxyConfig(kind, creds), { mode: 0o600 }); // read as root before tinyproxy drops to nobody
    const d = spawnInNs(
      servicesNs,
      `tinyproxy-${kind}`,
      ['/bin/sh', '-c', BIND, 'sh', resolv, hosts, TINYPROXY, '-d', '-c', conf],
      join(dir, 'logs'),
    );
    onStart(d);
    waits.push(waitListening(d, [[PROXIES[kind].address, PROXY_PORT, 'tcp']]));
  }
  await Promise.all(waits);
}
