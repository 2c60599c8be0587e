/**
 * Test PKI generated at test time with the openssl CLI (never committed).
 * `openssl x509 -req` (OpenSSL 3.0) cannot back-date, so leaves are signed
 * with `openssl ca`, which takes explicit -startdate/-enddate.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertPair {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

export interface TestCA extends CertPair {
  dir: string;
  /** Issue a leaf certificate signed by this CA. */
  issue(name: string, opts: LeafOptions): CertPair;
  cleanup(): void;
}

export interface LeafOptions {
  /** DNS names and IPs for subjectAltName ("registry.lab.test", "127.0.0.1"). */
  sans: string[];
  /** openssl ca date format YYYYMMDDHHMMSSZ; default: yesterday. */
  startDate?: string;
  /** default: start + 365 days. */
  endDate?: string;
  cn?: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function opensslDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z')
    .slice(0, 15);
}

/** Create a CA in a fresh temp dir (or `dir`). */
export function createCA(cn = 'pullprobe test CA', dir?: string): TestCA {
  const root = dir ?? mkdtempSync(join(tmpdir(), 'pullprobe-ca-'));
  mkdirSync(join(root, 'newcerts'), { recursive: true });
  writeFileSync(join(root, 'index.txt'), '');
  writeFileSync(join(root, 'serial'), '1000\n');
  const keyPath = join(root, 'ca.key');
  const certPath = join(root, 'ca.crt');
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '3650',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    root,
  );
  const conf = join(root, 'ca.cnf');
  writeFileSync(
    conf,
    [
      '[ ca ]',
      'default_ca = testca',
      '[ testca ]',
      `dir = ${root}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir/newcerts',
      'serial = $dir/serial',
      `certificate = ${certPath}`,
      `private_key = ${keyPath}`,
      'default_md = sha256',
      'policy = anything',
      'unique_subject = no',
      'copy_extensions = none',
      'email_in_dn = no',
      '[ anything ]',
      'commonName = supplied',
    ].join('\n') + '\n',
  );
  const ca: TestCA = {
    dir: root,
    keyPath,
    certPath,
    cert: readFileSync(certPath, 'utf8'),
    key: readFileSync(keyPath, 'utf8'),
    issue(name, opts) {
      const k = join(root, `${name}.key`);
      const csr = join(root, `${name}.csr`);
      const crt = join(root, `${name}.crt`);
      const ext = join(root, `${name}.ext`);
      const san = opts.sans.map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',');
      writeFileSync(
        ext,
        `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', k, '-out', csr, '-subj', `/CN=${opts.cn ?? opts.sans[0] ?? name}`], root);
      const start = opts.startDate ?? opensslDate(new Date(Date.now() - 86400_000));
      const end = opts.endDate ?? opensslDate(new Date(Date.now() + 365 * 86400_000));
      openssl(
        ['ca', '-batch', '-config', conf, '-in', csr, '-out', crt, '-startdate', start, '-enddate', end, '-extfile', ext, '-notext'],
        root,
      );
      return { certPath: crt, keyPath: k, cert: readFileSync(crt, 'utf8'), key: readFileSync(k, 'utf8') };
    },
    cleanup() {
      if (!dir) rmSync(root, { recursive: true, force: true });
    },
  };
  return ca;
}
