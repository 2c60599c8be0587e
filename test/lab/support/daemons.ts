/**
 * Lab daemons: config files and processes (dnsmasq ×5, docker-registry ×7 (six in TLS, one in plain http),
 * the token service), started inside the services namespace with
 * `ip netns exec`, each in its own process group, logs under <dir>/logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADDR,
  AUTH_HOST,
  PLAIN_REGISTRY,
  DNS_NAMES,
  REGISTRIES,
  REGISTRY_HOSTS,
  TOKEN_ISSUER,
  TOKEN_REALM,
  TOKEN_SERVICE,
  type RegistryHost,
} from './addresses.js';
import { isAlive } from './netns.js';
import type { LabPki } from './pki.js';
import type { TokenServerConfig } from './token-server.js';

export interface Daemon {
  name: string;
  pid: number;
  child: ChildProcess;
  log: string;
}

export const REPO_ROOT = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const SUPPORT = new URL('./', import.meta.url).pathname;

/** Start argv inside a namespace; stdout+stderr to a log file. */
export function spawnInNs(ns: string, name: string, argv: string[], logDir: string, env: NodeJS.ProcessEnv = {}): Daemon {
  const log = join(logDir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  child.on('error', () => {
    /* reported via readiness */
  });
  return { name, pid: child.pid, child, log };
}

function hexAddr(ip: string, port: number): string {
  const b = ip.split('.').map(Number).reverse();
  return (
    b
      .map((x) => x.toString(16).padStart(2, '0'))
      .join('')
      .toUpperCase() +
    ':' +
    port.toString(16).toUpperCase().padStart(4, '0')
  );
}

/** Is pid's network namespace listening on ip:port? (reads /proc/<pid>/net, no spawn) */
export function isListening(pid: number, ip: string, port: number, proto: 'tcp' | 'udp'): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
  } catch {
    return false;
  }
  const want = hexAddr(ip, port);
  const state = proto === 'tcp' ? '0A' : '07';
  return text.split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === want && f[3] === state;
  });
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

export async function waitListening(d: Daemon, checks: Array<[string, number, 'tcp' | 'udp']>, timeoutMs = 8000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive(d.pid)) throw new Error(`${d.name} exited during startup:\n${tail(d.log)}`);
    if (checks.every(([ip, port, proto]) => isListening(d.pid, ip, port, proto))) return;
    if (Date.now() > until) throw new Error(`${d.name} not listening after ${timeoutMs} ms:\n${tail(d.log)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function dnsmasqArgv(conf: string): string[] {
  return ['/usr/sbin/dnsmasq', '--keep-in-foreground', `--conf-file=${conf}`, '--pid-file', '--user=root', '--group=root'];
}

export function writeDnsmasqConfigs(dir: string): { good: string; servfail: string; upstream: string; nx: string; refused: string } {
  const base = ['no-resolv', 'no-hosts', 'bind-interfaces', 'log-queries', 'log-facility=-'];
  const hostRecords = [
    ...REGISTRY_HOSTS.map((h) => `host-record=${h},${REGISTRIES[h].address}`),
    `host-record=${AUTH_HOST},${ADDR.auth}`,
    `host-record=${PLAIN_REGISTRY},${ADDR.plain}`,
    `host-record=${DNS_NAMES.wronghostCertName},${ADDR.wronghost}`,
    `host-record=${DNS_NAMES.proxy},${ADDR.proxy}`,
    `host-record=${DNS_NAMES.proxyDeny},${ADDR.proxyDeny}`,
    `host-record=${DNS_NAMES.proxyAuth},${ADDR.proxyAuth}`,
  ];
  const good = [
    ...base,
    `listen-address=${ADDR.dnsGood},${ADDR.dnsGood2}`,
    'cache-size=0',
    'local=/lab.test/',
    ...hostRecords,
    `server=/${DNS_NAMES.servfail}/${ADDR.dnsServfail}`,
    `server=/${DNS_NAMES.refused}/${ADDR.dnsBlackholed}`,
    `server=/${DNS_NAMES.timeout}/${ADDR.dnsDead}`,
  ];
  // DNSSEC against a bogus root anchor: every upstream answer is BOGUS → SERVFAIL.
  const servfail = [
    ...base,
    `listen-address=${ADDR.dnsServfail}`,
    `server=${ADDR.dnsUpstream}`,
    'dnssec',
    'trust-anchor=.,12345,8,2,0000000000000000000000000000000000000000000000000000000000000000',
    'dnssec-check-unsigned',
  ];
  // A and AAAA answers, so both validate as BOGUS (a NODATA AAAA would come back REFUSED).
  const upstream = [...base, `listen-address=${ADDR.dnsUpstream}`, `address=/#/${ADDR.registry}`, 'address=/#/fd00:231::10'];
  // Per-node resolver faults: a node whose resolv.conf names one of these gets NXDOMAIN / REFUSED for every lab name.
  const nx = [...base, `listen-address=${ADDR.dnsNx}`, 'cache-size=0', 'local=/lab.test/'];
  const refused = [...base, `listen-address=${ADDR.dnsRefused}`, 'cache-size=0', `server=/lab.test/${ADDR.dnsBlackholed}`];
  const w = (n: string, lines: string[]): string => {
    const p = join(dir, `dnsmasq-${n}.conf`);
    writeFileSync(p, lines.join('\n') + '\n');
    return p;
  };
  return {
    good: w('good', good),
    servfail: w('servfail', servfail),
    upstream: w('upstream', upstream),
    nx: w('nx', nx),
    refused: w('refused', refused),
  };
}

/** docker-registry's config: shared storage, access log on, listening on `addr` in TLS when `tls` is given. */
function registryYaml(addr: string, storage: string, tls: { certPath: string; keyPath: string } | null, auth = ''): string {
  const tlsLines = tls ? `  tls:\n    certificate: ${tls.certPath}\n    key: ${tls.keyPath}\n` : '';
  return `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${storage}
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: ${addr}
  secret: pp-lab-shared-secret
${tlsLines}  headers:
    X-Content-Type-Options: [nosniff]
${auth}`;
}

export function writeRegistryConfig(dir: string, host: RegistryHost, pki: LabPki, storage: string): string {
  const r = REGISTRIES[host];
  let auth = '';
  if (r.auth === 'htpasswd') auth = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${pki.htpasswdFile}\n`;
  if (r.auth === 'token') {
    auth =
      `auth:\n  token:\n    realm: ${TOKEN_REALM}\n    service: ${TOKEN_SERVICE}\n    issuer: ${TOKEN_ISSUER}\n` +
      `    rootcertbundle: ${pki.certs.tokenSigning.certPath}\n`;
  }
  const p = join(dir, `registry-${host.split('.')[0]}.yml`);
  writeFileSync(p, registryYaml(`${r.address}:443`, storage, pki.certs[r.cert], auth));
  return p;
}

/** The plain-http registry's config: port 80, no TLS, no auth (it serves what registry.lab.test stores). */
export function writePlainRegistryConfig(dir: string, storage: string): string {
  const p = join(dir, 'registry-plain.yml');
  writeFileSync(p, registryYaml(`${ADDR.plain}:80`, storage, null));
  return p;
}

export interface StartedDaemons {
  daemons: Daemon[];
  tokenModeFile: string;
}

/** Start every daemon in the services namespace and wait until all listen. */
export async function startDaemons(servicesNs: string, dir: string, pki: LabPki, onStart: (d: Daemon) => void): Promise<StartedDaemons> {
  const logDir = join(dir, 'logs');
  const confDir = join(dir, 'conf');
  const storage = join(dir, 'storage');
  for (const d of [logDir, confDir, storage]) mkdirSync(d, { recursive: true });
  const started: Array<Promise<void>> = [];
  const daemons: Daemon[] = [];
  const launch = (name: string, argv: string[], checks: Array<[string, number, 'tcp' | 'udp']>, env?: NodeJS.ProcessEnv): void => {
    const d = spawnInNs(servicesNs, name, argv, logDir, env);
    daemons.push(d);
    onStart(d);
    started.push(waitListening(d, checks));
  };

  // Token service first: node + tsx is the slowest to start.
  const tokenModeFile = join(dir, 'token-mode');
  writeFileSync(tokenModeFile, 'normal\n');
  const tokenCfg: TokenServerConfig = {
    host: ADDR.auth,
    port: 443,
    tlsCertFile: pki.certs.good.certPath,
    tlsKeyFile: pki.certs.good.keyPath,
    signingCertFile: pki.certs.tokenSigning.certPath,
    signingKeyFile: pki.certs.tokenSigning.keyPath,
    issuer: TOKEN_ISSUER,
    service: TOKEN_SERVICE,
    headerMode: 'both',
    modeFile: tokenModeFile,
    users: {
      [pki.credentials.user]: { password: pki.credentials.password, pull: ['lab/*'] },
      [pki.credentials.nopullUser]: { password: pki.credentials.nopullPassword, pull: [] },
    },
  };
  const tokenConf = join(confDir, 'token-server.json');
  writeFileSync(tokenConf, JSON.stringify(tokenCfg, null, 2), { mode: 0o600 });
  launch('token-server', [process.execPath, '--import', 'tsx', join(SUPPORT, 'token-server.ts'), tokenConf], [[ADDR.auth, 443, 'tcp']]);

  const dns = writeDnsmasqConfigs(confDir);
  launch('dnsmasq-good', dnsmasqArgv(dns.good), [
    [ADDR.dnsGood, 53, 'udp'],
    [ADDR.dnsGood2, 53, 'udp'],
    [ADDR.dnsGood, 53, 'tcp'],
  ]);
  launch('dnsmasq-servfail', dnsmasqArgv(dns.servfail), [[ADDR.dnsServfail, 53, 'udp']]);
  launch('dnsmasq-upstream', dnsmasqArgv(dns.upstream), [[ADDR.dnsUpstream, 53, 'udp']]);
  launch('dnsmasq-nx', dnsmasqArgv(dns.nx), [[ADDR.dnsNx, 53, 'udp']]);
  launch('dnsmasq-refused', dnsmasqArgv(dns.refused), [[ADDR.dnsRefused, 53, 'udp']]);

  for (const host of REGISTRY_HOSTS) {
    const conf = writeRegistryConfig(confDir, host, pki, storage);
    launch(`registry-${host.split('.')[0]}`, ['/usr/bin/docker-registry', 'serve', conf], [[REGISTRIES[host].address, 443, 'tcp']]);
  }
  launch('registry-plain', ['/usr/bin/docker-registry', 'serve', writePlainRegistryConfig(confDir, storage)], [[ADDR.plain, 80, 'tcp']]);
  const results = await Promise.allSettled(started);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return { daemons, tokenModeFile };
}

/** Push the lab images through registry.lab.test (all registries share its storage). */
export async function pushImages(servicesNs: string, dir: string, pki: LabPki, onStart: (d: Daemon) => void): Promise<void> {
  const d = spawnInNs(
    servicesNs,
    'push-image',
    [process.execPath, '--import', 'tsx', join(SUPPORT, 'push-image.ts'), 'registry.lab.test', ADDR.registry, pki.caFile],
    join(dir, 'logs'),
  );
  onStart(d);
  const code = await new Promise<number | null>((res) => {
    if (d.child.exitCode !== null) res(d.child.exitCode);
    else d.child.once('exit', (c) => res(c));
  });
  if (code !== 0) throw new Error(`push-image failed (rc ${code}):\n${tail(d.log)}`);
}
