/**
 * Lab PKI and credentials: the lab CA, leaf certificates (good, expired,
 * wrong-host, untrusted CA), the token signing certificate, the htpasswd
 * file and docker config.json variants. All generated per run.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCA, type CertPair } from '../../support/certs.js';
import { AUTH_HOST, DNS_NAMES, REGISTRY_HOSTS } from './addresses.js';

export interface LabCredentials {
  /** User with pull on `lab/*` (basic and token registries). */
  user: string;
  password: string;
  /** Token-registry user whose password is right but who may pull nothing. */
  nopullUser: string;
  nopullPassword: string;
}

export interface LabPki {
  caFile: string;
  untrustedCaFile: string;
  certs: { good: CertPair; expired: CertPair; wronghost: CertPair; untrusted: CertPair; tokenSigning: CertPair };
  htpasswdFile: string;
  credentials: LabCredentials;
  dockerConfig: { good: string; wrong: string; nopull: string; empty: string };
}

/** Fixed 2024 window: the VM clock reads 2026, so this is always expired. */
export const EXPIRED_WINDOW = { startDate: '20240101000000Z', endDate: '20240201000000Z' } as const;

export function createLabPki(dir: string): LabPki {
  const caDir = join(dir, 'ca');
  const otherDir = join(dir, 'untrusted-ca');
  const ca = createCA('pullprobe lab CA', caDir);
  const other = createCA('pullprobe lab UNTRUSTED CA', otherDir);
  const goodNames = REGISTRY_HOSTS.filter((h) => h !== 'wronghost.lab.test' && h !== 'expired.lab.test' && h !== 'untrusted.lab.test');
  const good = ca.issue('good', { sans: [...goodNames, AUTH_HOST] });
  // Expired and untrusted also name registry.lab.test, so the per-subnet DNAT faults
  // (tls-expired, tls-untrusted) show that one defect and nothing else.
  const expired = ca.issue('expired', { sans: ['expired.lab.test', 'registry.lab.test'], ...EXPIRED_WINDOW });
  const wronghost = ca.issue('wronghost', { sans: [DNS_NAMES.wronghostCertName] });
  const untrusted = other.issue('untrusted', { sans: ['untrusted.lab.test', 'registry.lab.test'] });
  const tokenSigning = ca.issue('token-signing', { sans: [AUTH_HOST], cn: 'pullprobe lab token signer' });

  const credentials: LabCredentials = {
    user: 'lab',
    password: `pw-${randomBytes(6).toString('hex')}`,
    nopullUser: 'nopull',
    nopullPassword: `pw-${randomBytes(6).toString('hex')}`,
  };
  const authDir = join(dir, 'auth');
  mkdirSync(authDir, { recursive: true });
  const htpasswdFile = join(authDir, 'htpasswd');
  const line = execFileSync('htpasswd', ['-Bbn', '-C', '5', credentials.user, credentials.password], { encoding: 'utf8' });
  writeFileSync(htpasswdFile, line.trim() + '\n', { mode: 0o600 });

  const cfg = (entries: Record<string, [string, string]>): string =>
    JSON.stringify(
      {
        auths: Object.fromEntries(
          Object.entries(entries).map(([host, [u, p]]) => [host, { auth: Buffer.from(`${u}:${p}`).toString('base64') }]),
        ),
      },
      null,
      2,
    ) + '\n';
  const write = (name: string, text: string): string => {
    const p = join(authDir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const good_ = { user: credentials.user, pw: credentials.password };
  const dockerConfig = {
    good: write(
      'config-good.json',
      cfg({
        'basic.lab.test': [good_.user, good_.pw],
        'token.lab.test': [good_.user, good_.pw],
      }),
    ),
    wrong: write(
      'config-wrong.json',
      cfg({
        'basic.lab.test': [good_.user, 'wrong-password'],
        'token.lab.test': [good_.user, 'wrong-password'],
      }),
    ),
    nopull: write(
      'config-nopull.json',
      cfg({
        'basic.lab.test': [good_.user, good_.pw],
        'token.lab.test': [credentials.nopullUser, credentials.nopullPassword],
      }),
    ),
    empty: write('config-empty.json', '{"auths":{}}\n'),
  };

  return {
    caFile: ca.certPath,
    untrustedCaFile: other.certPath,
    certs: { good, expired, wronghost, untrusted, tokenSigning },
    htpasswdFile,
    credentials,
    dockerConfig,
  };
}
