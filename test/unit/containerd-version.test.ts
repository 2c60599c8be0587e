/**
 * Which containerd runs on the node, from the Go build information of its
 * binary (go-buildinfo.ts, containerd-version.ts): Debian's containerd 1.6
 * package itself, and small ELF files laid out as Go 1.18+ writes them for
 * the builds this machine has no binary of (containerd 2.x, k3s's, a 1.7
 * module build, a pre-1.18 build, a binary without section headers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goBuildInfo } from '../../src/node-config/go-buildinfo.js';
import { containerdVersion, containerdVersionOf } from '../../src/node-config/containerd-version.js';
import type { ConfigPathChoice } from '../../src/node-config/containerd-config.js';
import { loadEnvironment } from '../../src/node-config/environment.js';
import { RoadCache } from '../../src/node-config/road.js';
import { realProcFs, type ProcFs } from '../../src/node-config/proxy-env.js';
import { planEndpoints } from '../../src/probe/endpoints.js';
import { parseTarget } from '../../src/model/reference.js';
import { silentLog } from '../../src/model/types.js';

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/**
 * A little-endian ELF64 file whose one writable segment holds Go's build
 * information: magic, pointer size, flags (2: inline strings), then the Go
 * version and the module text between 16-byte sentinels. `sections: false`
 * leaves out the section headers (a reader must then search the segment).
 */
function goElf(o: { goVersion?: string; modinfo?: string; flags?: number; sections?: boolean }): Buffer {
  const sentinel = Buffer.alloc(16, 0xaa);
  const mod = Buffer.concat([sentinel, Buffer.from(o.modinfo ?? ''), sentinel]);
  const go = Buffer.from(o.goVersion ?? 'go1.23.4');
  const header = Buffer.alloc(32);
  header.write('\xff Go buildinf:', 0, 'latin1');
  header[14] = 8;
  header[15] = o.flags ?? 2;
  const info = Buffer.concat([header, uvarint(go.length), go, uvarint(mod.length), mod]);
  const pad = Buffer.alloc(48); // other data first: the magic is found on a 16-byte boundary, not at the start
  const dataOff = 128;
  const data = Buffer.concat([pad, info]);
  const names = Buffer.from('\0.shstrtab\0.go.buildinfo\0');
  const namesOff = dataOff + data.length;
  const shOff = Math.ceil((namesOff + names.length) / 8) * 8;
  const sections = o.sections ?? true;
  const shnum = sections ? 3 : 0;
  const file = Buffer.alloc(shOff + shnum * 64);
  file.writeUInt32BE(0x7f454c46, 0);
  file[4] = 2; // ELFCLASS64
  file[5] = 1; // little-endian
  file[6] = 1;
  file.writeUInt16LE(2, 16);
  file.writeUInt16LE(62, 18);
  file.writeUInt32LE(1, 20);
  file.writeBigUInt64LE(64n, 0x20); // e_phoff
  file.writeBigUInt64LE(sections ? BigInt(shOff) : 0n, 0x28);
  file.writeUInt16LE(64, 0x34);
  file.writeUInt16LE(56, 0x36);
  file.writeUInt16LE(1, 0x38);
  file.writeUInt16LE(64, 0x3a);
  file.writeUInt16LE(shnum, 0x3c);
  file.writeUInt16LE(sections ? 1 : 0, 0x3e);
  // PT_LOAD, PF_R|PF_W
  file.writeUInt32LE(1, 64);
  file.writeUInt32LE(6, 68);
  file.writeBigUInt64LE(BigInt(dataOff), 72);
  file.writeBigUInt64LE(BigInt(data.length), 96);
  file.writeBigUInt64LE(BigInt(data.length), 104);
  data.copy(file, dataOff);
  names.copy(file, namesOff);
  if (sections) {
    const sh = (i: number, name: number, type: number, offset: number, size: number): void => {
      const b = shOff + i * 64;
      file.writeUInt32LE(name, b);
      file.writeUInt32LE(type, b + 4);
      file.writeBigUInt64LE(BigInt(offset), b + 24);
      file.writeBigUInt64LE(BigInt(size), b + 32);
    };
    sh(1, 1, 3, namesOff, names.length);
    sh(2, 11, 1, dataOff + pad.length, info.length);
  }
  return file;
}

const read = (b: Buffer) => goBuildInfo((offset, length) => b.subarray(offset, offset + length));
const readFile = (path: string) => read(readFileSync(path));

const V2 =
  'path\tgithub.com/containerd/containerd/v2/cmd/containerd\nmod\tgithub.com/containerd/containerd/v2\tv2.0.4\th1:abc=\nbuild\tGOOS=linux\n';

describe('Go build information', () => {
  test("Debian's containerd 1.6 package: a GOPATH build, known by its main package's path", () => {
    const info = readFile('/usr/bin/containerd');
    assert.ok(info, '/usr/bin/containerd is a Go binary');
    assert.match(info.goVersion ?? '', /^go1\.\d+/);
    assert.equal(info.path, 'github.com/containerd/containerd/cmd/containerd');
    assert.deepEqual(containerdVersionOf(info), { major: 1, version: '' });
  });

  test('containerd 2.x built as a module: major 2 and its version, with or without section headers', () => {
    for (const sections of [true, false]) {
      const info = read(goElf({ modinfo: V2, sections }));
      assert.ok(info, `sections: ${sections}`);
      assert.equal(info.goVersion, 'go1.23.4');
      assert.equal(info.main, 'github.com/containerd/containerd/v2');
      assert.deepEqual(containerdVersionOf(info), { major: 2, version: 'v2.0.4' });
    }
  });

  test("k3s's binary: containerd is a dependency, replaced by k3s's fork; the module path still says 2.x", () => {
    const modinfo =
      'path\tgithub.com/k3s-io/k3s\nmod\tgithub.com/k3s-io/k3s\t(devel)\t\n' +
      'dep\tgithub.com/containerd/containerd/v2\tv2.0.5\th1:x=\n=>\tgithub.com/k3s-io/containerd/v2\tv2.0.5-k3s1\th1:y=\n' +
      'dep\tgithub.com/containerd/log\tv0.1.0\th1:z=\n';
    const info = read(goElf({ modinfo }));
    assert.ok(info);
    assert.deepEqual(containerdVersionOf(info), { major: 2, version: 'v2.0.5-k3s1' });
  });

  test('containerd 1.7 built as a module: major 1', () => {
    const info = read(
      goElf({ modinfo: 'path\tgithub.com/containerd/containerd/cmd/containerd\nmod\tgithub.com/containerd/containerd\tv1.7.22\th1:a=\n' }),
    );
    assert.ok(info);
    assert.deepEqual(containerdVersionOf(info), { major: 1, version: 'v1.7.22' });
  });

  test('built with Go before 1.18 (pointers, not text): containerd 1.x, as 2.x needs a newer Go', () => {
    const info = read(goElf({ flags: 0 }));
    assert.ok(info);
    assert.equal(info.goVersion, null);
    assert.deepEqual(containerdVersionOf(info), { major: 1, version: '' });
  });

  test('another Go program says nothing about containerd; a binary that is not Go has no build information', () => {
    const info = read(goElf({ modinfo: 'path\tgithub.com/docker/distribution/cmd/registry\n' }));
    assert.ok(info);
    assert.equal(containerdVersionOf(info), null);
    assert.equal(readFile(process.execPath), null);
    assert.equal(read(Buffer.from('#!/bin/sh\necho containerd\n')), null);
  });

  test('a truncated or damaged file never throws', () => {
    const whole = goElf({ modinfo: V2 });
    for (let cut = 0; cut < whole.length; cut += 5) assert.doesNotThrow(() => read(whole.subarray(0, cut)), `cut at ${cut}`);
    for (let at = 0; at < 64; at++) {
      const bad = Buffer.from(whole);
      bad[at] = 0xff;
      assert.doesNotThrow(() => read(bad), `byte ${at} damaged`);
    }
  });
});

describe("the running containerd's version (/proc/<pid>/exe)", () => {
  let proc: string;
  before(() => {
    proc = mkdtempSync(join(tmpdir(), 'pullprobe-proc-'));
  });
  after(() => rmSync(proc, { recursive: true, force: true }));

  /** A /proc with an init process and containerd as `pid`, its exe a link to `exe` (absent: no exe). */
  function procWith(pid: number, exe?: string): string {
    const root = join(proc, `p${pid}`);
    for (const [p, comm] of [
      [1, 'systemd'],
      [pid, 'containerd'],
    ] as const) {
      mkdirSync(join(root, String(p)), { recursive: true });
      writeFileSync(join(root, String(p), 'comm'), `${comm}\n`);
    }
    if (exe) symlinkSync(exe, join(root, String(pid), 'exe'));
    return root;
  }

  test('containerd 2.x found through its process', () => {
    const bin = join(proc, 'containerd-2');
    writeFileSync(bin, goElf({ modinfo: V2 }));
    const r = containerdVersion(812, procWith(812, bin));
    assert.ok(r.ok, r.ok ? '' : r.problem);
    assert.equal(r.version.major, 2);
    assert.equal(r.version.version, 'v2.0.4');
    assert.match(r.version.from, /\/812\/exe$/);
  });

  test("the real 1.6 binary through a process's exe link", () => {
    const r = containerdVersion(813, procWith(813, '/usr/bin/containerd'));
    assert.ok(r.ok, r.ok ? '' : r.problem);
    assert.equal(r.version.major, 1);
  });

  describe('where containerd looks for registry hosts, by its version', () => {
    /** A node: that config.toml, and a hosts.toml sending reg.corp to a mirror in the default certs.d. */
    function node(): string {
      const root = mkdtempSync(join(proc, 'node-'));
      mkdirSync(join(root, 'etc/containerd/certs.d/reg.corp'), { recursive: true });
      writeFileSync(
        join(root, 'etc/containerd/config.toml'),
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ""\n',
      );
      writeFileSync(
        join(root, 'etc/containerd/certs.d/reg.corp/hosts.toml'),
        'server = "https://reg.corp"\n[host."https://mirror.corp"]\n  capabilities = ["pull", "resolve"]\n',
      );
      writeFileSync(join(root, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      writeFileSync(join(root, 'hosts'), '');
      return root;
    }
    async function plan(
      root: string,
      procRoot: string,
      procFs?: ProcFs,
    ): Promise<{ choice: ConfigPathChoice; endpoints: string[]; notes: string[] }> {
      const env = loadEnvironment({
        resolvConfPath: join(root, 'resolv.conf'),
        hostsPath: join(root, 'hosts'),
        caFiles: [],
        containerdConfigPath: [],
        platform: { os: 'linux', architecture: 'amd64' },
      });
      env.road = new RoadCache({ procRoot, env: {}, ...(procFs ? { procFs } : {}) }).load({ hostRoot: root, proxy: 'none' });
      const parsed = parseTarget('reg.corp/team/app:v1');
      assert.ok(parsed.ok);
      const p = await planEndpoints(parsed.target, env, silentLog);
      return { choice: env.road.configPath, endpoints: p.endpoints.map((e) => e.endpoint.endpoint), notes: p.notes };
    }

    test('containerd 2.x (its binary says so): the default certs.d, so the mirror first', async () => {
      const bin = join(proc, 'containerd-2-road');
      writeFileSync(bin, goElf({ modinfo: V2 }));
      const r = await plan(node(), procWith(900, bin));
      assert.equal(r.choice.from, 'legacy');
      assert.ok(r.choice.versionDecides, 'the file leaves it to the version');
      assert.deepEqual(r.endpoints, ['mirror.corp', 'reg.corp']);
      assert.deepEqual(r.notes, []);
    });

    test('containerd 1.6 (the real binary): certs.d is not read, the registry itself', async () => {
      const r = await plan(node(), procWith(901, '/usr/bin/containerd'));
      assert.deepEqual(r.endpoints, ['reg.corp']);
      assert.deepEqual(r.notes, []);
    });

    test('a hosts.toml without a [host] table (config_path set): 2.x reads its server, 1.6 falls back to cert files', async () => {
      const hostless = (): string => {
        const root = node();
        writeFileSync(
          join(root, 'etc/containerd/config.toml'),
          'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n',
        );
        writeFileSync(join(root, 'etc/containerd/certs.d/reg.corp/hosts.toml'), 'server = "https://mirror.corp"\n');
        return root;
      };
      const bin = join(proc, 'containerd-2-hostless');
      writeFileSync(bin, goElf({ modinfo: V2 }));
      const two = await plan(hostless(), procWith(903, bin));
      assert.equal(two.choice.from, 'config-file');
      assert.deepEqual(two.endpoints, ['mirror.corp']);
      const one = await plan(hostless(), procWith(904, '/usr/bin/containerd'));
      assert.deepEqual(one.endpoints, ['reg.corp']);
      assert.match(one.notes.join('\n'), /no \[host\] table/);
    });

    test('nothing depends on the version: /proc is never read (a CLI run pays nothing)', async () => {
      // config_path set, every hosts.toml with its [host] table; and a 1.x file without config_path
      // for a registry with no host directory (1.x and 2.x both go to the registry itself).
      const withPath = node();
      writeFileSync(
        join(withPath, 'etc/containerd/config.toml'),
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n',
      );
      const noHostDir = node();
      rmSync(join(noHostDir, 'etc/containerd/certs.d/reg.corp'), { recursive: true });
      const reads: string[] = [];
      const procFs: ProcFs = {
        readFile: (path) => {
          reads.push(path);
          return realProcFs.readFile(path);
        },
        readdir: (path) => {
          reads.push(path);
          return realProcFs.readdir(path);
        },
      };
      const procRoot = procWith(905, '/usr/bin/containerd');
      assert.deepEqual((await plan(withPath, procRoot, procFs)).endpoints, ['mirror.corp', 'reg.corp']);
      const plain = await plan(noHostDir, procRoot, procFs);
      assert.deepEqual(plain.endpoints, ['reg.corp']);
      assert.deepEqual(plain.notes, []);
      assert.deepEqual(reads, []);
    });

    test('version unknown: probed as 1.x, and the note names the hosts.toml a 2.x would use', async () => {
      const root = node();
      const r = await plan(root, procWith(902));
      assert.deepEqual(r.endpoints, ['reg.corp']);
      assert.match(r.notes[0] ?? '', /unknown \(cannot read .*\/902\/exe \(ENOENT/);
      assert.equal(r.notes.length, 1);
      assert.match(r.notes[0] ?? '', new RegExp(`${join(root, 'etc/containerd/certs.d/reg.corp/hosts.toml')}: containerd 2.x uses it`));
      assert.match(r.notes[0] ?? '', /probed as containerd 1\.x reaches it/);
    });
  });

  test('an exe that cannot be read, or no containerd at all: unknown, saying why', () => {
    const r = containerdVersion(814, procWith(814));
    assert.ok(!r.ok);
    assert.match(r.problem, /cannot read .*\/814\/exe \(ENOENT; it needs root and hostPID\)/);
    const none = containerdVersion(null, '/proc');
    assert.ok(!none.ok);
    assert.match(none.problem, /no containerd process visible/);
  });
});
