/**
 * The lab's fixed address plan (10.231.0.0/16, only between the lab's own
 * namespaces; nothing here is routed out of the host).
 *
 *   nodeA 10.231.1.10 ──┐
 *   nodeB 10.231.2.10 ──┼── router (.1 on each subnet, forwards, nft faults)
 *   services 10.231.100.0/24 ──┘
 */
export const SUBNETS = {
  A: '10.231.1.0/24',
  B: '10.231.2.0/24',
  services: '10.231.100.0/24',
} as const;
export type SubnetName = 'A' | 'B';

export const NODES = {
  nodeA: { subnet: 'A', address: '10.231.1.10', gateway: '10.231.1.1' },
  nodeB: { subnet: 'B', address: '10.231.2.10', gateway: '10.231.2.1' },
} as const;
export type NodeName = keyof typeof NODES;
export const NODE_NAMES = Object.keys(NODES) as NodeName[];

export const ROUTER_SERVICES_ADDRESS = '10.231.100.1';

/** Services namespace addresses (all /24 on the services link). */
export const ADDR = {
  dnsGood: '10.231.100.53',
  dnsGood2: '10.231.100.54',
  dnsServfail: '10.231.100.55',
  /** Plain upstream for the SERVFAIL instance (answers everything with registry's address). */
  dnsUpstream: '10.231.100.56',
  /** Knows no lab.test names: NXDOMAIN for all of them (resolv preset `nxdomain`). */
  dnsNx: '10.231.100.57',
  /** Forwards lab.test to a blackholed upstream: REFUSED (resolv preset `refused`). */
  dnsRefused: '10.231.100.58',
  /** Local address with nothing on port 53: ICMP port-unreachable (timeout.lab.test upstream). */
  dnsDead: '10.231.100.99',
  /** Blackholed in the services ns: dnsmasq answers REFUSED (refused.lab.test upstream). */
  dnsBlackholed: '10.231.200.1',
  registry: '10.231.100.10',
  basic: '10.231.100.11',
  token: '10.231.100.12',
  expired: '10.231.100.13',
  wronghost: '10.231.100.14',
  untrusted: '10.231.100.15',
  auth: '10.231.100.20',
  /** A registry in plain http on port 80 (PLAIN_REGISTRY), no TLS, no auth; same storage as the others. */
  plain: '10.231.100.16',
  /** tinyproxy (Lab.up({ proxy: true })): CONNECT to 443 allowed. */
  proxy: '10.231.100.30',
  /** tinyproxy that refuses CONNECT to 443 (403 "Access violation"). */
  proxyDeny: '10.231.100.31',
  /** tinyproxy with BasicAuth (407 without the lab credentials). */
  proxyAuth: '10.231.100.32',
} as const;

/** Port every lab proxy listens on. */
export const PROXY_PORT = 3128;

/** The plain-http registry's name (ADDR.plain, port 80): containerd reaches it through certs.d's `server = "http://…"`. */
export const PLAIN_REGISTRY = 'plain.lab.test';

/** Registry hosts: name → address and auth mode. */
export const REGISTRIES = {
  'registry.lab.test': { address: ADDR.registry, auth: 'none', cert: 'good' },
  'basic.lab.test': { address: ADDR.basic, auth: 'htpasswd', cert: 'good' },
  'token.lab.test': { address: ADDR.token, auth: 'token', cert: 'good' },
  'expired.lab.test': { address: ADDR.expired, auth: 'none', cert: 'expired' },
  'wronghost.lab.test': { address: ADDR.wronghost, auth: 'none', cert: 'wronghost' },
  'untrusted.lab.test': { address: ADDR.untrusted, auth: 'none', cert: 'untrusted' },
} as const;
export type RegistryHost = keyof typeof REGISTRIES;
export const REGISTRY_HOSTS = Object.keys(REGISTRIES) as RegistryHost[];

export const AUTH_HOST = 'auth.lab.test';
export const TOKEN_SERVICE = 'token.lab.test';
export const TOKEN_ISSUER = 'pp-lab-token-issuer';
export const TOKEN_REALM = `https://${AUTH_HOST}/token`;

/** Extra DNS names (dnsmasq on the good resolvers). */
export const DNS_NAMES = {
  /** Under `local=/lab.test/`: NXDOMAIN. */
  nxdomain: 'nxdomain.lab.test',
  /** Forwarded to the DNSSEC-bogus instance: SERVFAIL. */
  servfail: 'servfail.lab.test',
  /** Forwarded to a blackholed upstream: REFUSED. */
  refused: 'refused.lab.test',
  /** Forwarded to a port-unreachable upstream: never answered (client timeout). */
  timeout: 'timeout.lab.test',
  /** The lab proxies (see ADDR.proxy*). */
  proxy: 'proxy.lab.test',
  proxyDeny: 'proxy-deny.lab.test',
  proxyAuth: 'proxy-auth.lab.test',
  /** Exists with an A record only for the host-record, no AAAA. */
  wronghostCertName: 'other.lab.test',
} as const;
