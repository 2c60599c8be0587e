/**
 * Fault rules: nftables on the router's forward chain, matching the SOURCE
 * subnet so the other subnet stays a healthy control. Conntrack is flushed
 * after every change so no established flow survives into (or out of) a fault.
 */
import { ADDR, REGISTRIES, REGISTRY_HOSTS, SUBNETS, type RegistryHost, type SubnetName } from './addresses.js';
import { run } from './netns.js';

export const NFT_FAULTS = [
  'reject-443',
  'drop-443',
  'unreach-443',
  'token-reject-443',
  'token-drop-443',
  'token-unreach-443',
  'dns-drop',
  'dns-drop-all',
  'tls-expired',
  'tls-wronghost',
  'tls-untrusted',
  'reject-80',
] as const;
export type NftFault = (typeof NFT_FAULTS)[number];

export interface NftFaultOptions {
  /** Source subnet the fault applies to (default 'A'); 'all' = both node subnets. */
  subnet?: SubnetName | 'all';
  /** For the *-443 registry faults: only this registry (default: every registry). */
  host?: RegistryHost;
}

const TABLE = 'pp_lab';

export function isNftFault(name: string): name is NftFault {
  return (NFT_FAULTS as readonly string[]).includes(name);
}

/** The nft rule text for one fault (pure). */
export function faultRules(name: NftFault, opts: NftFaultOptions = {}): string[] {
  const subnet = opts.subnet ?? 'A';
  const saddr = subnet === 'all' ? `{ ${SUBNETS.A}, ${SUBNETS.B} }` : SUBNETS[subnet];
  const registries = opts.host ? [REGISTRIES[opts.host].address] : REGISTRY_HOSTS.map((h) => REGISTRIES[h].address);
  const action = (kind: string): string =>
    kind === 'reject' ? 'reject with tcp reset' : kind === 'unreach' ? 'reject with icmp type host-unreachable' : 'drop';
  const rule = (match: string, verdict: string): string =>
    `add rule ip ${TABLE} forward ip saddr ${saddr} ${match} ${verdict} comment "${name}"`;
  const tls = /^tls-(expired|wronghost|untrusted)$/.exec(name);
  if (tls) {
    // Subnet A's connections to registry.lab.test:443 land on the registry with the bad certificate.
    const to = ADDR[tls[1] as 'expired' | 'wronghost' | 'untrusted'];
    return [`add rule ip ${TABLE} prerouting ip saddr ${saddr} ip daddr ${ADDR.registry} tcp dport 443 dnat to ${to} comment "${name}"`];
  }
  const m = /^(token-)?(reject|drop|unreach)-443$/.exec(name);
  if (m) {
    const daddr = m[1] ? ADDR.auth : `{ ${registries.join(', ')} }`;
    return [rule(`ip daddr ${daddr} tcp dport 443`, action(m[2] ?? 'drop'))];
  }
  // The plain-http registry's port (the only lab service on 80): refused, so only a proxy reaches it.
  if (name === 'reject-80') return [rule(`ip daddr ${ADDR.plain} tcp dport 80`, action('reject'))];
  const dns = name === 'dns-drop' ? ADDR.dnsGood : `{ ${ADDR.dnsGood}, ${ADDR.dnsGood2} }`;
  return [rule(`ip daddr ${dns} meta l4proto { tcp, udp } th dport 53`, 'drop')];
}

function nft(routerNs: string, script: string): void {
  run('ip', ['netns', 'exec', routerNs, 'nft', '-f', '-'], script);
}

function flushConntrack(routerNs: string): void {
  try {
    run('ip', ['netns', 'exec', routerNs, 'conntrack', '-F']);
  } catch {
    /* empty table or no conntrack in this netns: nothing to flush */
  }
}

export function initNft(routerNs: string): void {
  nft(
    routerNs,
    `add table ip ${TABLE}\nadd chain ip ${TABLE} forward { type filter hook forward priority 0; policy accept; }\n` +
      `add chain ip ${TABLE} prerouting { type nat hook prerouting priority -100; policy accept; }\n`,
  );
}

export function addFault(routerNs: string, name: NftFault, opts: NftFaultOptions = {}): void {
  nft(routerNs, faultRules(name, opts).join('\n') + '\n');
  flushConntrack(routerNs);
}

export function clearFaults(routerNs: string): void {
  nft(routerNs, `flush chain ip ${TABLE} forward\nflush chain ip ${TABLE} prerouting\n`);
  flushConntrack(routerNs);
}

export function listRules(routerNs: string): string {
  return run('ip', ['netns', 'exec', routerNs, 'nft', 'list', 'table', 'ip', TABLE]);
}
