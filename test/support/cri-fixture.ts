/**
 * A real containerd (1.6, CRI plugin on, native snapshotter) and real
 * registries (Debian's docker-registry, distribution 2.8) on loopback, for
 * the CRI client and runtime stage tests. Everything lives under one temp
 * dir: containerd's root, state and socket, its certs.d, the registries'
 * storage and htpasswd. `stop()` ends every process this fixture started
 * (by pid) and removes the dir.
 *
 * hosts.toml (lab-notes gotcha 2): top-level `server` plus an EMPTY `[host]`
 * table, which containerd 1.6.20 accepts and tries once.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCriClient } from '../../src/net/cri-client.js';
import { labImages, type Blob } from '../lab/support/oci-image.js';

export interface Registry {
  /** "127.0.0.1:PORT" */
  host: string;
  port: number;
  /** "user:password" when the registry wants basic auth. */
  basic?: string;
}

/** A free loopback TCP port (closed again; the caller binds it next). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => {
        if (a !== null && typeof a === 'object') resolve(a.port);
        else reject(new Error('no port'));
      });
    });
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, proc: ChildProcess, log: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`${what} exited during start-up: ${readFileSync(log, 'utf8').slice(-2000)}`);
    }
    if (Date.now() > until) throw new Error(`${what} not up after ${ms} ms: ${readFileSync(log, 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Resp {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

function call(reg: Registry, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Resp> {
  const auth: Record<string, string> = reg.basic ? { authorization: `Basic ${Buffer.from(reg.basic).toString('base64')}` } : {};
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: reg.port,
        method,
        path,
        headers: { ...auth, ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        timeout: 10_000,
      },
      (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers }));
        r.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Push lab/single:v1 (one linux/amd64 manifest, one tiny layer) over plain http. Returns its manifest digest. */
export async function pushSingleImage(reg: Registry): Promise<string> {
  const img = labImages().find((i) => i.repository === 'lab/single');
  if (!img) throw new Error('lab/single image missing from oci-image.ts');
  const expect = (r: Resp, ok: number, what: string): void => {
    if (r.status !== ok) throw new Error(`${what}: HTTP ${r.status}`);
  };
  const pushBlob = async (b: Blob): Promise<void> => {
    const start = await call(reg, 'POST', `/v2/${img.repository}/blobs/uploads/`);
    expect(start, 202, 'start upload');
    const loc = new URL(String(start.headers['location']), `http://${reg.host}`);
    loc.searchParams.set('digest', b.digest);
    expect(await call(reg, 'PUT', loc.pathname + loc.search, { 'content-type': 'application/octet-stream' }, b.data), 201, 'upload');
  };
  for (const b of img.blobs) await pushBlob(b);
  expect(
    await call(reg, 'PUT', `/v2/${img.repository}/manifests/${img.tag}`, { 'content-type': img.top.mediaType }, img.top.data),
    201,
    'manifest',
  );
  return img.digest;
}

export class CriFixture {
  readonly dir = mkdtempSync(join(tmpdir(), 'pullprobe-cri-'));
  readonly socket = join(this.dir, 'containerd', 'containerd.sock');
  readonly certsD = join(this.dir, 'certs.d');
  readonly #procs: ChildProcess[] = [];

  /** Start docker-registry on 127.0.0.1:<free port>, optionally with htpasswd basic auth ("user:password"). */
  async startRegistry(name: string, basic?: string): Promise<Registry> {
    const port = await freePort();
    const base = join(this.dir, `registry-${name}`);
    mkdirSync(base, { recursive: true });
    let auth = '';
    if (basic !== undefined) {
      const [user = '', password = ''] = basic.split(':');
      const line = execFileSync('htpasswd', ['-Bbn', '-C', '5', user, password], { encoding: 'utf8' });
      writeFileSync(join(base, 'htpasswd'), line.trim() + '\n', { mode: 0o600 });
      auth = `auth:\n  htpasswd:\n    realm: basic-realm\n    path: ${join(base, 'htpasswd')}\n`;
    }
    const conf = join(base, 'config.yml');
    writeFileSync(
      conf,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(base, 'data')}\n` +
        `http:\n  addr: 127.0.0.1:${port}\n  secret: pp-cri-test\n${auth}`,
    );
    const reg: Registry = basic === undefined ? { host: `127.0.0.1:${port}`, port } : { host: `127.0.0.1:${port}`, port, basic };
    const log = join(base, 'log');
    const proc = this.#spawn(['/usr/bin/docker-registry', 'serve', conf], log);
    await waitFor('docker-registry', async () => (await call(reg, 'GET', '/v2/').catch(() => ({ status: 0 }))).status !== 0, proc, log);
    this.hostsFor(reg.host, `http://${reg.host}`);
    return reg;
  }

  /** certs.d/<host>/hosts.toml sending pulls of <host> to `server` (gotcha 2 shape). */
  hostsFor(host: string, server: string): void {
    const d = join(this.certsD, host);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'hosts.toml'), `server = "${server}"\n\n[host]\n`);
  }

  /** Start containerd with its CRI plugin on this fixture's socket. */
  async startContainerd(): Promise<void> {
    const base = join(this.dir, 'containerd');
    mkdirSync(this.certsD, { recursive: true });
    mkdirSync(base, { recursive: true });
    const config = join(base, 'config.toml');
    writeFileSync(
      config,
      `version = 2
root = "${join(base, 'root')}"
state = "${join(base, 'state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.overlayfs"]

[grpc]
  address = "${this.socket}"
[ttrpc]
  address = "${this.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${join(base, 'opt')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "127.0.0.1:1/none/pause:none"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${this.certsD}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${join(base, 'cni-bin')}"
    conf_dir = "${join(base, 'cni-conf')}"
`,
    );
    const log = join(base, 'log');
    const proc = this.#spawn(['/usr/bin/containerd', '--config', config], log, {
      HTTPS_PROXY: '',
      HTTP_PROXY: '',
      https_proxy: '',
      http_proxy: '',
      NO_PROXY: '',
      no_proxy: '',
    });
    await waitFor('containerd', () => existsSync(this.socket), proc, log);
    // The socket is up before the CRI plugin has initialised ("server is not initialized yet"): wait for a Version answer.
    await waitFor(
      'containerd CRI',
      async () => {
        const c = openCriClient(this.socket);
        try {
          await c.version({ timeoutMs: 1000 });
          return true;
        } catch {
          return false;
        } finally {
          c.close();
        }
      },
      proc,
      log,
    );
  }

  /** Pids of the processes this fixture started that are still running. */
  get pids(): number[] {
    return this.#procs.filter((p) => p.exitCode === null && p.signalCode === null && p.pid !== undefined).map((p) => p.pid as number);
  }

  #spawn(argv: string[], log: string, env: Record<string, string> = {}): ChildProcess {
    const fd = openSync(log, 'a');
    const [cmd = '', ...args] = argv;
    const proc = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    closeSync(fd);
    proc.on('error', () => {});
    this.#procs.push(proc);
    return proc;
  }

  /** Stop every process (TERM, then KILL after 5 s) and remove the temp dir. */
  async stop(): Promise<void> {
    await Promise.all(
      this.#procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) {
              resolve();
              return;
            }
            const kill = setTimeout(() => p.kill('SIGKILL'), 5000);
            p.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
