/**
 * What the lab needs from the machine. Under CI=true a missing prerequisite
 * must FAIL the lab tests; elsewhere they skip with the reason.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';

export const LAB_BINARIES = [
  '/usr/sbin/ip',
  '/usr/sbin/nft',
  '/usr/sbin/conntrack',
  '/usr/sbin/dnsmasq',
  '/usr/bin/docker-registry',
  '/usr/bin/htpasswd',
  '/usr/bin/openssl',
  '/usr/bin/curl',
  '/usr/bin/mount',
] as const;

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Missing prerequisites as human-readable strings; empty when the lab can run. */
export function labPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.platform !== 'linux') return [`linux required (platform ${process.platform})`];
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) missing.push('root required (network namespaces, nftables)');
  for (const b of LAB_BINARIES) {
    const alt = b.replace(/^\/usr/, '');
    if (!executable(b) && !executable(alt)) missing.push(`missing binary ${b}`);
  }
  if (!existsSync('/proc/self/ns/net')) missing.push('no network namespace support (/proc/self/ns/net)');
  if (missing.length === 0) {
    const name = `pp-prereq${process.pid}`;
    const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
    if (add.status !== 0) missing.push(`cannot create a network namespace: ${add.stderr.trim()}`);
    else spawnSync('ip', ['netns', 'del', name]);
  }
  return missing;
}

/**
 * Options for a lab `test()`/`describe()`: `{}` when the lab can run or when
 * CI=true (the test then runs and fails in Lab.up with the list), otherwise
 * `{ skip: 'reason' }`.
 */
export function labTestOptions(): { skip?: string } {
  const missing = labPrerequisites();
  if (missing.length === 0 || process.env['CI'] === 'true') return {};
  return { skip: `lab prerequisites missing: ${missing.join('; ')}` };
}
