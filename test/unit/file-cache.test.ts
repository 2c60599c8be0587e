/**
 * The environment loaded once and refreshed on change (issue 10): with an
 * injected filesystem that counts reads, N loads without a change read each
 * file once and give the same ProbeEnvironment; a new mtime, size or inode
 * (or a file appearing) gives a fresh one; the CA set is the same array
 * while the CA files are unchanged; certs.d lookups through the cache re-read
 * nothing and make no new error object for what is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { EnvironmentCache, loadEnvironment } from '../../src/node-config/environment.js';
import { FileCache, RACY_MS, type CacheFs, type FileStat } from '../../src/node-config/file-cache.js';
import { resolveRegistryHosts } from '../../src/node-config/hosts-toml.js';
import { createCA } from '../support/certs.js';
import { pemCertificates } from '../../src/node-config/trust.js';
import { lookupHosts, type HostsTable } from '../../src/node-config/hosts-file.js';

interface Node {
  text?: string;
  link?: string;
  dir?: boolean;
  ino: number;
  mtimeMs: number;
}

const NOW = 1_000_000_000;

/** An in-memory filesystem: absolute links, directories implied by their files; counts reads and stats. */
class FakeFs implements CacheFs {
  readonly nodes = new Map<string, Node>();
  readonly reads = new Map<string, number>();
  stats = 0;
  #ino = 100;

  put(path: string, text: string, mtimeMs = NOW - 60_000): void {
    this.nodes.set(path, { text, ino: this.#ino++, mtimeMs });
  }
  /** Same inode, new content and time (an in-place write). */
  edit(path: string, text: string, mtimeMs: number): void {
    const n = this.nodes.get(path);
    assert.ok(n);
    this.nodes.set(path, { ...n, text, mtimeMs });
  }
  symlink(path: string, target: string): void {
    this.nodes.set(path, { link: target, ino: this.#ino++, mtimeMs: NOW - 60_000 });
  }
  mkdir(path: string): void {
    this.nodes.set(path, { dir: true, ino: this.#ino++, mtimeMs: NOW - 60_000 });
  }
  readCount(path: string): number {
    return this.reads.get(path) ?? 0;
  }

  #statOf(n: Node): FileStat {
    return {
      ino: n.ino,
      size: n.text?.length ?? 0,
      mtimeMs: n.mtimeMs,
      isDirectory: () => n.dir === true,
      isSymbolicLink: () => n.link !== undefined,
    };
  }
  #follow(path: string): Node | undefined {
    let n = this.nodes.get(path);
    for (let i = 0; n?.link !== undefined && i < 40; i++) n = this.nodes.get(n.link);
    return n;
  }
  stat(path: string): FileStat | undefined {
    this.stats++;
    const n = this.#follow(path);
    return n ? this.#statOf(n) : undefined;
  }
  lstat(path: string): FileStat | undefined {
    this.stats++;
    const n = this.nodes.get(path);
    return n ? this.#statOf(n) : undefined;
  }
  readFile(path: string): string {
    this.reads.set(path, this.readCount(path) + 1);
    const n = this.#follow(path);
    if (n?.text === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: n?.dir ? 'EISDIR' : 'ENOENT' });
    return n.text;
  }
  readlink(path: string): string {
    const n = this.nodes.get(path);
    if (n?.link === undefined) throw Object.assign(new Error(`EINVAL ${path}`), { code: 'EINVAL' });
    return n.link;
  }
  readdir(path: string): Array<{ name: string; isDirectory(): boolean }> {
    this.reads.set(path, this.readCount(path) + 1);
    const out: Array<{ name: string; isDirectory(): boolean }> = [];
    for (const [p, n] of this.nodes) {
      if (p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes('/'))
        out.push({ name: p.slice(path.length + 1), isDirectory: () => n.dir === true });
    }
    return out;
  }
}

const pemOf = (text: string): string => pemCertificates(text)[0] ?? '';
const BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const ROOTS = tls.rootCertificates.slice(0, 3).join('\n');

function node(): FakeFs {
  const fs = new FakeFs();
  fs.put('/etc/resolv.conf', 'nameserver 10.0.0.2\n');
  fs.put('/etc/hosts', '127.0.0.1 localhost\n');
  fs.put(BUNDLE, ROOTS);
  fs.put('/var/lib/kubelet/config.json', '{"auths":{}}');
  return fs;
}

const OPTS = { hostname: 'node-1', dockerConfigPath: '/var/lib/kubelet/config.json' } as const;
const cacheOn = (fs: FakeFs): EnvironmentCache => new EnvironmentCache({ fs, now: () => NOW, processEnv: {} });

test('N loads with no change: each file read once, the same ProbeEnvironment back', () => {
  const fs = node();
  const cache = cacheOn(fs);
  const first = cache.load(OPTS);
  for (let i = 0; i < 50; i++) assert.equal(cache.load(OPTS), first);
  for (const f of ['/etc/resolv.conf', '/etc/hosts', BUNDLE, '/var/lib/kubelet/config.json']) assert.equal(fs.readCount(f), 1, f);
  assert.deepEqual(
    first.resolvConf.nameservers.map((n) => n.address),
    ['10.0.0.2'],
  );
  assert.ok(first.ca.includes(tls.rootCertificates[0] ?? ''));
});

test("recheckMs (the agent): within the window no file is stat'ed; after it a change is seen", () => {
  const fs = node();
  let now = NOW;
  const cache = new EnvironmentCache({ fs, now: () => now, processEnv: {}, recheckMs: 1000 });
  const first = cache.load(OPTS);
  const stats = fs.stats;
  fs.edit('/etc/resolv.conf', 'nameserver 10.0.0.3\n', NOW - 30_000);
  now += 999;
  assert.equal(cache.load(OPTS), first, 'inside the window: the remembered environment');
  assert.equal(fs.stats, stats, 'and not one stat');
  now += 1;
  const second = cache.load(OPTS);
  assert.notEqual(second, first);
  assert.deepEqual(
    second.resolvConf.nameservers.map((n) => n.address),
    ['10.0.0.3'],
  );
  now += 10;
  assert.notEqual(cache.load({ ...OPTS, hostname: 'node-2' }), second, 'other options load again at once');
  now -= 60_000; // a clock stepped back checks again rather than trusting the window
  const statsBefore = fs.stats;
  cache.load({ ...OPTS, hostname: 'node-2' });
  assert.ok(fs.stats > statsBefore);
});

test('a new mtime, size or inode is a change: that file is read again, the others are not, and the CA set stays the same array', () => {
  const fs = node();
  const cache = cacheOn(fs);
  const first = cache.load(OPTS);
  fs.edit('/etc/resolv.conf', 'nameserver 10.0.0.3\n', NOW - 30_000); // same size, new mtime
  const second = cache.load(OPTS);
  assert.notEqual(second, first);
  assert.deepEqual(
    second.resolvConf.nameservers.map((n) => n.address),
    ['10.0.0.3'],
  );
  assert.equal(fs.readCount('/etc/resolv.conf'), 2);
  assert.equal(fs.readCount('/etc/hosts'), 1, 'unchanged files come from memory');
  assert.equal(fs.readCount(BUNDLE), 1);
  assert.equal(second.ca, first.ca, 'unchanged CA files: the same array (one SecureContext)');

  fs.edit('/etc/hosts', '127.0.0.1 localhost registry.lab\n', NOW - 60_000); // same inode and mtime, new size
  const third = cache.load(OPTS);
  assert.notEqual(third, second);
  assert.deepEqual(lookupHosts(third.hosts as HostsTable, 'registry.lab'), ['127.0.0.1']);

  fs.put(BUNDLE, `${ROOTS}\n${tls.rootCertificates[5] ?? ''}`); // replaced: a new inode
  const fourth = cache.load(OPTS);
  assert.notEqual(fourth.ca, first.ca, 'changed CA bundle: a new set');
  assert.ok(fourth.ca.includes(tls.rootCertificates[5] ?? ''));
  assert.equal(cache.load(OPTS), fourth);
  assert.equal(fs.readCount(BUNDLE), 2);
});

test('only the stamp decides: same size, same mtime and same inode is not re-read (the stamp is what is compared)', () => {
  const fs = node();
  const cache = cacheOn(fs);
  cache.load(OPTS);
  const n = fs.nodes.get('/etc/resolv.conf');
  assert.ok(n);
  fs.nodes.set('/etc/resolv.conf', { ...n, text: 'nameserver 10.0.0.9\n' });
  assert.deepEqual(
    cache.load(OPTS).resolvConf.nameservers.map((x) => x.address),
    ['10.0.0.2'],
  );
  assert.equal(fs.readCount('/etc/resolv.conf'), 1);
});

test('a file that was missing and appears is a change; a link re-pointed under the host root is a change', () => {
  const fs = node();
  fs.nodes.delete('/etc/hosts');
  const cache = cacheOn(fs);
  const first = cache.load(OPTS);
  assert.equal(first.hosts, undefined);
  assert.equal(cache.load(OPTS), first);
  fs.put('/etc/hosts', '10.1.1.1 registry.lab\n');
  assert.deepEqual(lookupHosts(cache.load(OPTS).hosts as HostsTable, 'registry.lab'), ['10.1.1.1']);

  const root = new FakeFs();
  root.put('/host/run/a.conf', 'nameserver 10.0.0.4\n');
  root.put('/host/run/b.conf', 'nameserver 10.0.0.5\n');
  root.symlink('/host/etc/resolv.conf', '/run/a.conf');
  const hc = cacheOn(root);
  const opts = { hostRoot: '/host', resolvConfPath: '/host/etc/resolv.conf', hostsPath: null, hostname: 'n' };
  assert.equal(hc.load(opts).resolvConfPath, '/host/run/a.conf');
  assert.equal(hc.load(opts).resolvConfPath, '/host/run/a.conf');
  root.symlink('/host/etc/resolv.conf', '/run/b.conf');
  const moved = hc.load(opts);
  assert.equal(moved.resolvConfPath, '/host/run/b.conf');
  assert.deepEqual(
    moved.resolvConf.nameservers.map((x) => x.address),
    ['10.0.0.5'],
  );
});

test('other options (a config reload) load again; a strict failure is not remembered', () => {
  const fs = node();
  const cache = cacheOn(fs);
  const first = cache.load(OPTS);
  const other = cache.load({ ...OPTS, hostsPath: null });
  assert.notEqual(other, first);
  assert.equal(other.hosts, undefined);
  assert.throws(() => cache.load({ ...OPTS, caFiles: ['/etc/corp.pem'], strict: ['caFiles'] }), /corp\.pem/);
  fs.put('/etc/corp.pem', tls.rootCertificates[7] ?? '');
  const withCa = cache.load({ ...OPTS, caFiles: ['/etc/corp.pem'], strict: ['caFiles'] });
  assert.ok(withCa.ca.includes(tls.rootCertificates[7] ?? ''));
});

test('a file changed less than RACY_MS before it was read is read again until it is old enough', () => {
  const fs = node();
  let now = NOW;
  fs.edit('/etc/resolv.conf', 'nameserver 10.0.0.2\n', NOW - 10);
  const cache = new EnvironmentCache({ fs, now: () => now, processEnv: {} });
  const first = cache.load(OPTS);
  fs.nodes.set('/etc/resolv.conf', { ...(fs.nodes.get('/etc/resolv.conf') as Node), text: 'nameserver 10.0.0.7\n' }); // same tick, same size
  const second = cache.load(OPTS);
  assert.notEqual(second, first);
  assert.deepEqual(
    second.resolvConf.nameservers.map((x) => x.address),
    ['10.0.0.7'],
  );
  now = NOW + RACY_MS;
  const third = cache.load(OPTS);
  assert.equal(cache.load(OPTS), third, 'old enough: trusted again');
  assert.equal(fs.readCount('/etc/hosts'), 1);
});

test('certs.d through the cache: a hosts.toml is read once until it changes; a missing one costs no new error object', async () => {
  const fs = new FakeFs();
  fs.mkdir('/etc/containerd/certs.d');
  fs.mkdir('/etc/containerd/certs.d/mirror.lab');
  fs.put('/etc/containerd/certs.d/mirror.lab/hosts.toml', 'server = "https://mirror.lab"\n[host."https://m2.lab"]\n');
  fs.mkdir('/etc/containerd/certs.d/certs.lab');
  fs.put('/etc/containerd/certs.d/certs.lab/ca.crt', ROOTS);
  const files = new FileCache({ fs, now: () => NOW });
  const hfs = files.hostsFs();
  for (let i = 0; i < 5; i++) {
    const h = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'mirror.lab', hfs);
    assert.deepEqual(
      h.endpoints.map((e) => e.url),
      ['https://m2.lab/v2', 'https://mirror.lab/v2'],
    );
    const c = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'certs.lab', hfs);
    assert.equal(c.mode, 'cert-files');
    assert.deepEqual(c.endpoints[0]?.caFiles, ['/etc/containerd/certs.d/certs.lab/ca.crt']);
    assert.equal((await resolveRegistryHosts(['/etc/containerd/certs.d'], 'none.lab', hfs)).mode, 'default');
  }
  assert.equal(fs.readCount('/etc/containerd/certs.d/mirror.lab/hosts.toml'), 1);
  assert.equal(fs.readCount('/etc/containerd/certs.d/certs.lab'), 1, 'the directory listing is remembered');
  assert.equal(fs.readCount('/etc/containerd/certs.d/certs.lab/hosts.toml'), 0, 'a missing hosts.toml is never opened');
  const e1 = await hfs.readFile('/etc/containerd/certs.d/certs.lab/hosts.toml').catch((e: unknown) => e);
  const e2 = await hfs.readFile('/etc/containerd/certs.d/certs.lab/hosts.toml').catch((e: unknown) => e);
  assert.equal((e1 as { code?: string }).code, 'ENOENT');
  assert.equal(e1, e2, 'the same error object while the file stays missing');

  fs.put('/etc/containerd/certs.d/mirror.lab/hosts.toml', 'server = "https://mirror.lab"\n[host."https://m9.lab"]\n');
  fs.put('/etc/containerd/certs.d/certs.lab/hosts.toml', 'server = "https://certs.lab"\n[host."https://m3.lab"]\n');
  fs.edit('/etc/containerd/certs.d/certs.lab', '', NOW - 1000 - RACY_MS); // the directory's mtime moves when an entry is added
  assert.deepEqual(
    (await resolveRegistryHosts(['/etc/containerd/certs.d'], 'mirror.lab', hfs)).endpoints.map((e) => e.url),
    ['https://m9.lab/v2', 'https://mirror.lab/v2'],
  );
  const now = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'certs.lab', hfs);
  assert.equal(now.mode, 'hosts-toml');
  assert.deepEqual(
    now.endpoints.map((e) => e.url),
    ['https://m3.lab/v2', 'https://certs.lab/v2'],
  );
});

test("a hosts.toml endpoint's CA files: the same array while unchanged, a new one when a file changes, TrustError naming the file", (t) => {
  const corp = createCA('corp CA');
  const other = createCA('other CA');
  t.after(() => {
    corp.cleanup();
    other.cleanup();
  });
  const fs = node();
  fs.put('/etc/containerd/certs.d/r.lab/ca.crt', corp.cert);
  fs.put('/etc/containerd/certs.d/r.lab/empty.crt', 'no certificate here');
  const env = cacheOn(fs).load(OPTS);
  const files = env.nodeFiles;
  assert.ok(files);
  const a = files.endpointCa(['/etc/containerd/certs.d/r.lab/ca.crt']);
  assert.equal(files.endpointCa(['/etc/containerd/certs.d/r.lab/ca.crt']), a);
  assert.equal(a.length, env.ca.length + 1);
  assert.equal(files.endpointCa([]), env.ca);
  fs.put('/etc/containerd/certs.d/r.lab/ca.crt', other.cert);
  const b = files.endpointCa(['/etc/containerd/certs.d/r.lab/ca.crt']);
  assert.notEqual(b, a);
  assert.ok(b.includes(pemOf(other.cert)));
  assert.ok(!b.includes(pemOf(corp.cert)));
  assert.equal(fs.readCount('/etc/containerd/certs.d/r.lab/ca.crt'), 2);
  assert.throws(() => files.endpointCa(['/etc/containerd/certs.d/r.lab/empty.crt']), /empty\.crt.*no PEM certificate/);
  assert.throws(() => files.endpointCa(['/etc/containerd/certs.d/r.lab/gone.crt']), /gone\.crt.*cannot read CA file \(ENOENT\)/);
});

test('loadEnvironment with a cache argument is the cache; without, one load of its own', () => {
  const fs = node();
  const cache = cacheOn(fs);
  const a = loadEnvironment(OPTS, cache);
  assert.equal(loadEnvironment(OPTS, cache), a);
  assert.equal(cache.load(OPTS), a);
});
