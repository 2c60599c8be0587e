import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HostsTomlError,
  endpointsFor,
  hostDirCandidates,
  parseHostsToml,
  resolveRegistryHosts,
  type HostsFs,
} from '../../src/node-config/hosts-toml.js';

const FIX = fileURLToPath(new URL('../fixtures/certs.d/', import.meta.url));
const MAIN = join(FIX, 'main');
const DEFAULT_ONLY = join(FIX, 'default-only');
const F = '/etc/containerd/certs.d/reg.io/hosts.toml';

function configError(fn: () => unknown): HostsTomlError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HostsTomlError);
    assert.equal(err.code, 'PULLPROBE_HOSTS_TOML');
    return err;
  }
  assert.fail('expected HostsTomlError');
}

describe('parseHostsToml', () => {
  it('adds https:// and /v2, keeps host tables in file order (header subtables do not reorder)', () => {
    const c = parseHostsToml(
      [
        'server = "reg.io"',
        '[host."http://b.test"]',
        '[host."a.test/v2/"]',
        '[host."http://b.test".header]',
        'x = "1"',
        '[host."c.test/"]',
      ].join('\n'),
      F,
    );
    assert.equal(c.server, 'https://reg.io/v2');
    assert.deepEqual(
      c.hosts.map((h) => h.url),
      ['http://b.test/v2', 'https://a.test/v2', 'https://c.test/v2'],
    );
    assert.deepEqual(c.hosts[0]?.headers, { x: ['1'] });
    assert.equal(c.containerdRejects, false);
  });

  it('parses every host key: capabilities (case-insensitive, [] = all), ca string/list, client forms, headers, dial_timeout', () => {
    const c = parseHostsToml(
      [
        'server = "https://reg.io:5000/api"',
        'override_path = true',
        'skip_verify = true',
        'ca = "/abs/root.pem"',
        '[host."https://m1"]',
        '  capabilities = ["PULL", "Resolve"]',
        '  ca = ["rel/a.pem", "/abs/b.pem"]',
        '  client = [["c.cert", "c.key"], "combined.pem"]',
        '  dial_timeout = "1m30s"',
        '  header = { a = "x", b = ["y", "z"] }',
        '[host."https://m2"]',
        '  capabilities = []',
        '  client = "only.pem"',
      ].join('\n'),
      F,
    );
    assert.equal(c.server, 'https://reg.io:5000/api');
    assert.deepEqual(c.serverCa, ['/abs/root.pem']);
    assert.equal(c.serverSkipVerify, true);
    assert.equal(c.root.overridePath, true);
    const [m1, m2] = c.hosts;
    assert.ok(m1 && m2, 'two [host] sections');
    assert.deepEqual(m1.capabilities, ['pull', 'resolve']);
    assert.deepEqual(m1.ca, ['/etc/containerd/certs.d/reg.io/rel/a.pem', '/abs/b.pem']);
    assert.deepEqual(m1.client, [
      ['/etc/containerd/certs.d/reg.io/c.cert', '/etc/containerd/certs.d/reg.io/c.key'],
      ['/etc/containerd/certs.d/reg.io/combined.pem', ''],
    ]);
    assert.deepEqual(m1.headers, { a: ['x'], b: ['y', 'z'] });
    assert.equal(m1.dialTimeout, '1m30s');
    assert.equal(m1.skipVerify, false);
    assert.deepEqual(m2.capabilities, ['pull', 'resolve', 'push']);
    assert.deepEqual(m2.client, [['/etc/containerd/certs.d/reg.io/only.pem', '']]);
    assert.equal(m2.dialTimeout, undefined);
  });

  it('unknown capability: throws naming the file and the key', () => {
    const err = configError(() => parseHostsToml('[host."https://m"]\ncapabilities = ["pull", "pul"]\n', F));
    assert.equal(err.file, F);
    assert.equal(err.key, 'host."https://m".capabilities');
  });

  it('wrong types name their keys', () => {
    assert.equal(configError(() => parseHostsToml('server = 5\n[host]\n', F)).key, 'server');
    assert.equal(configError(() => parseHostsToml('skip_verify = "yes"\n[host]\n', F)).key, 'skip_verify');
    assert.equal(configError(() => parseHostsToml('[host."m"]\nca = 1\n', F)).key, 'host."m".ca');
    assert.equal(configError(() => parseHostsToml('[host."m"]\nclient = [["a"]]\n', F)).key, 'host."m".client');
    assert.equal(configError(() => parseHostsToml('[host."m".header]\nx = 1\n', F)).key, 'host."m".header.x');
    assert.equal(configError(() => parseHostsToml('[host."m"]\ndial_timeout = "30"\n', F)).key, 'host."m".dial_timeout');
    for (const bad of ['', '-', '.s', '1', '1x', '1.5', 's', '0x', '9223372036854775808ns', '2562048h', '1s ']) {
      assert.equal(
        configError(() => parseHostsToml(`[host."m"]\ndial_timeout = ${JSON.stringify(bad)}\n`, F)).key,
        'host."m".dial_timeout',
        bad,
      );
    }
    assert.equal(configError(() => parseHostsToml('host = "m"\n', F)).key, 'host');
  });

  it('TOML syntax errors (and duplicate tables) never quote the file text', () => {
    const err = configError(() => parseHostsToml('[host."m".header]\nAuthorization = "Basic c2VjcmV0" oops\n', F));
    assert.equal(err.key, null);
    assert.ok(!err.message.includes('c2VjcmV0'));
    configError(() => parseHostsToml('[host."m"]\n[host."m"]\n', F));
  });

  it('top-level keys with no [host] table: flagged as rejected by containerd 1.6, not thrown', () => {
    const c = parseHostsToml('server = "https://reg.io"\nca = "ca.pem"\n', F);
    assert.equal(c.containerdRejects, true);
    assert.ok(c.rejectReason);
    assert.equal(c.server, 'https://reg.io/v2');
    assert.equal(parseHostsToml('server = "https://reg.io"\nca = "ca.pem"\n[host]\n', F).containerdRejects, false);
  });

  it('warns about keys containerd ignores', () => {
    const c = parseHostsToml('insecure_skip_verify = true\n[host."m"]\nca_file = "x"\n', F);
    assert.equal(c.warnings.length, 2);
    assert.equal(c.root.skipVerify, false);
  });
});

describe('hostDirCandidates', () => {
  it('port → host_port_, host:port, _default; no port → host, _default', () => {
    assert.deepEqual(hostDirCandidates('myregistry.io:5000'), ['myregistry.io_5000_', 'myregistry.io:5000', '_default']);
    assert.deepEqual(hostDirCandidates('reg.io'), ['reg.io', '_default']);
    assert.deepEqual(hostDirCandidates('docker.io'), ['docker.io', '_default']);
  });
});

describe('resolveRegistryHosts', () => {
  const tmp: string[] = [];
  after(async () => {
    for (const d of tmp) await rm(d, { recursive: true, force: true });
  });

  it('no config dir: the registry itself; docker.io → registry-1.docker.io', async () => {
    const r = await resolveRegistryHosts([join(FIX, 'does-not-exist')], 'docker.io');
    assert.equal(r.mode, 'default');
    assert.equal(r.source, null);
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.host, e.isMirror]),
      [['https://registry-1.docker.io/v2', 'registry-1.docker.io:443', false]],
    );
    const other = await resolveRegistryHosts([], 'quay.io');
    assert.deepEqual(
      other.endpoints.map((e) => e.url),
      ['https://quay.io/v2'],
    );
  });

  it('localhost without config (containerd 1.7.8+): https first with HTTP fallback on other ports, http on 80, https on 443 or no port', async () => {
    const row = async (h: string) => {
      const e = (await resolveRegistryHosts([], h)).endpoints[0];
      return [e?.url, e?.host, e?.skipVerify, e?.httpFallback ?? false];
    };
    assert.deepEqual(await row('localhost:5000'), ['https://localhost:5000/v2', 'localhost:5000', true, true]);
    assert.deepEqual(await row('127.0.0.2:8080'), ['https://127.0.0.2:8080/v2', '127.0.0.2:8080', true, true]);
    assert.deepEqual(await row('[::1]:5000'), ['https://[::1]:5000/v2', '[::1]:5000', true, true]);
    assert.deepEqual(await row('localhost:80'), ['http://localhost:80/v2', 'localhost:80', false, false]);
    assert.deepEqual(await row('localhost:443'), ['https://localhost:443/v2', 'localhost:443', true, false]);
    assert.deepEqual(await row('localhost'), ['https://localhost/v2', 'localhost:443', true, false]);
    assert.deepEqual(await row('reg.io:5000'), ['https://reg.io:5000/v2', 'reg.io:5000', false, false]);
  });

  it('a hosts.toml listing the referrers capability (containerd 2.2+) is used, with a warning for older containerd; referrers alone is not a pull endpoint', async () => {
    const r = await resolveRegistryHosts([MAIN], 'referrers.lab.test');
    assert.equal(r.mode, 'hosts-toml');
    assert.deepEqual(
      r.endpoints.map((e) => e.url),
      ['https://mirror.referrers.test/v2', 'https://refs-only.referrers.test/v2', 'https://referrers.lab.test/v2'],
    );
    assert.deepEqual(
      endpointsFor(r, 'resolve').map((e) => e.url),
      ['https://mirror.referrers.test/v2', 'https://referrers.lab.test/v2'],
    );
    assert.deepEqual(
      endpointsFor(r, 'pull').map((e) => e.url),
      ['https://mirror.referrers.test/v2', 'https://referrers.lab.test/v2'],
    );
    assert.equal(r.warnings.filter((w) => w.includes('"referrers" is known to containerd 2.2')).length, 2);
    // Default capabilities: containerd 2.2+ adds referrers; pulls are the same either way.
    assert.deepEqual(r.endpoints[2]?.capabilities, ['pull', 'resolve', 'push']);
    const v22 = await resolveRegistryHosts([MAIN], 'referrers.lab.test', undefined, { referrersByDefault: true });
    assert.deepEqual(v22.endpoints[2]?.capabilities, ['pull', 'resolve', 'push', 'referrers']);
  });

  it('docker.io hosts.toml without server: mirror first, registry-1.docker.io last (not a mirror)', async () => {
    const r = await resolveRegistryHosts([MAIN], 'docker.io');
    assert.equal(r.source, join(MAIN, 'docker.io', 'hosts.toml'));
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.isMirror, e.isServer]),
      [
        ['https://hub-mirror.test/v2', true, false],
        ['https://registry-1.docker.io/v2', false, true],
      ],
    );
  });

  it('server + mirrors: file order then server; capabilities filter resolve vs pull; relative ca; skip_verify; override_path', async () => {
    const r = await resolveRegistryHosts([MAIN], 'reg.lab.test');
    assert.equal(r.mode, 'hosts-toml');
    const dir = join(MAIN, 'reg.lab.test');
    assert.deepEqual(
      r.endpoints.map((e) => e.url),
      ['https://pull-only.mirror.test/v2', 'https://mirror.test:8443/custom/api', 'https://reg.lab.test/v2'],
    );
    const [pullOnly, custom, server] = r.endpoints;
    assert.ok(pullOnly && custom && server, 'three endpoints');
    assert.deepEqual(custom.caFiles, [join(dir, 'certs', 'mirror-ca.pem')]);
    assert.equal(custom.skipVerify, true);
    assert.equal(custom.overridePath, true);
    assert.equal(custom.host, 'mirror.test:8443');
    assert.deepEqual(custom.headerNames, ['x-mirror-token']);
    // The value travels to be sent (headers), never into a message.
    assert.deepEqual(custom.headers, { 'x-mirror-token': ['not-a-real-secret'] });
    assert.deepEqual(server.headers, {});
    assert.ok(!JSON.stringify(r.warnings).includes('not-a-real-secret'));
    // override_path: the URL's own path is the API root; /v2 endpoints keep /v2; ?ns= goes to mirrors only.
    assert.deepEqual(
      r.endpoints.map((e) => [e.path, e.authority, e.namespace, e.isMirror]),
      [
        ['/v2', 'pull-only.mirror.test', 'reg.lab.test', true],
        ['/custom/api', 'mirror.test:8443', 'reg.lab.test', true],
        ['/v2', 'reg.lab.test', 'reg.lab.test', false],
      ],
    );
    assert.deepEqual(server.caFiles, [join(dir, 'ca.crt')]);
    assert.equal(server.isMirror, false);
    assert.equal(pullOnly.isMirror, true);
    assert.deepEqual(
      endpointsFor(r, 'resolve').map((e) => e.url),
      ['https://mirror.test:8443/custom/api', 'https://reg.lab.test/v2'],
    );
    assert.equal(endpointsFor(r, 'pull').length, 3);
    assert.deepEqual(r.warnings, []);
  });

  it('port directory naming: reg.io_5000_ is used', async () => {
    const r = await resolveRegistryHosts([MAIN], 'reg.io:5000');
    assert.equal(r.hostDir, join(MAIN, 'reg.io_5000_'));
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.host, e.isMirror]),
      [
        ['https://port-mirror.test/v2', 'port-mirror.test:443', true],
        ['https://reg.io:5000/v2', 'reg.io:5000', false],
      ],
    );
  });

  it('port directory naming: host:port dir is used when host_port_ is absent, and loses to it when both exist', async () => {
    const root = await mkdtemp(join(tmpdir(), 'pullprobe-certsd-'));
    tmp.push(root);
    await mkdir(join(root, 'reg.io:5000'));
    await writeFile(join(root, 'reg.io:5000', 'hosts.toml'), '[host."https://colon.test"]\n');
    let r = await resolveRegistryHosts([root], 'reg.io:5000');
    assert.equal(r.hostDir, join(root, 'reg.io:5000'));
    assert.equal(r.endpoints[0]?.url, 'https://colon.test/v2');
    await mkdir(join(root, 'reg.io_5000_'));
    await writeFile(join(root, 'reg.io_5000_', 'hosts.toml'), '[host."https://underscore.test"]\n');
    r = await resolveRegistryHosts([root], 'reg.io:5000');
    assert.equal(r.endpoints[0]?.url, 'https://underscore.test/v2');
  });

  it('_default: used when no host dir matches; the first root holding any candidate wins (its _default beats a later root)', async () => {
    let r = await resolveRegistryHosts([MAIN, DEFAULT_ONLY], 'other.test');
    assert.equal(r.hostDir, join(DEFAULT_ONLY, '_default'));
    assert.deepEqual(
      r.endpoints.map((e) => e.url),
      ['https://catch-all.mirror.test/v2', 'https://other.test/v2'],
    );
    assert.deepEqual(
      endpointsFor(r, 'resolve').map((e) => e.url),
      ['https://other.test/v2'],
    );
    r = await resolveRegistryHosts([MAIN, DEFAULT_ONLY], 'reg.lab.test');
    assert.equal(r.hostDir, join(MAIN, 'reg.lab.test'));
    r = await resolveRegistryHosts([DEFAULT_ONLY, MAIN], 'reg.lab.test');
    assert.equal(r.hostDir, join(DEFAULT_ONLY, '_default'));
  });

  it('server also listed as [host]: kept twice like containerd, flagged, second try without the CA', async () => {
    const r = await resolveRegistryHosts([MAIN], 'dup.lab.test');
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.duplicateOf]),
      [
        ['https://dup.lab.test/v2', null],
        ['https://dup.lab.test/v2', 0],
      ],
    );
    assert.equal(r.endpoints[0]?.caFiles.length, 1);
    assert.deepEqual(r.endpoints[1]?.caFiles, []);
    assert.equal(r.warnings.length, 1);
  });

  it('top-level-only hosts.toml: containerd 1.6 falls back to *.crt (none here), so the CA is lost; opt-out follows 2.x', async () => {
    const r = await resolveRegistryHosts([MAIN], 'hostless.lab.test');
    assert.equal(r.mode, 'cert-files');
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.caFiles]),
      [['https://hostless.lab.test/v2', []]],
    );
    assert.equal(r.warnings.length, 1);
    const v2 = await resolveRegistryHosts([MAIN], 'hostless.lab.test', undefined, { rejectHostless: false });
    assert.equal(v2.mode, 'hosts-toml');
    assert.deepEqual(v2.endpoints[0]?.caFiles, [join(MAIN, 'hostless.lab.test', 'lab-ca.pem')]);
    assert.equal(v2.warnings.length, 1);
  });

  it('invalid hosts.toml (unknown capability): warning + *.crt fallback, as containerd does', async () => {
    const r = await resolveRegistryHosts([MAIN], 'badcap.lab.test');
    assert.equal(r.mode, 'cert-files');
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.caFiles]),
      [['https://badcap.lab.test/v2', [join(MAIN, 'badcap.lab.test', 'fallback.crt')]]],
    );
    assert.equal(r.warnings.length, 1);
  });

  it('Docker-style directory: *.crt → CA, *.cert with matching *.key → client pair', async () => {
    const dir = join(MAIN, 'docker-style.lab.test');
    const r = await resolveRegistryHosts([MAIN], 'docker-style.lab.test');
    assert.equal(r.source, dir);
    const [first] = r.endpoints;
    assert.ok(first, 'an endpoint');
    assert.deepEqual(first.caFiles, [join(dir, 'ca.crt')]);
    assert.deepEqual(first.clientCerts, [
      { cert: join(dir, 'client.cert'), key: join(dir, 'client.key') },
      // No combined.key: containerd reads the key from the certificate file itself.
      { cert: join(dir, 'combined.cert'), key: join(dir, 'combined.cert') },
    ]);
  });

  it('injected fs: a missing CA file is warned about; an unreadable hosts.toml is a config error', async () => {
    const files: Record<string, string> = { '/c/r.test/hosts.toml': 'ca = "gone.pem"\n[host]\n' };
    const fs: HostsFs = {
      readFile: (p) => {
        if (p in files) return Promise.resolve(files[p] as string);
        return Promise.reject(Object.assign(new Error('nope'), { code: p.startsWith('/denied') ? 'EACCES' : 'ENOENT' }));
      },
      readdir: () => Promise.resolve([]),
      exists: (p) => Promise.resolve(p === '/c/r.test' || p === '/denied/r.test'),
    };
    const r = await resolveRegistryHosts(['/c'], 'r.test', fs);
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.caFiles]),
      [['https://r.test/v2', ['/c/r.test/gone.pem']]],
    );
    assert.equal(r.warnings.length, 1);
    await assert.rejects(resolveRegistryHosts(['/denied'], 'r.test', fs), (err: unknown) => {
      assert.ok(err instanceof HostsTomlError);
      assert.equal(err.code, 'PULLPROBE_HOSTS_TOML');
      return true;
    });
  });

  it('resolve needs pull+resolve, pull needs pull; nothing able to resolve is warned about', async () => {
    const fs: HostsFs = {
      readFile: () =>
        Promise.resolve(
          'server = "https://r.test"\ncapabilities = ["pull"]\n[host."https://resolve-only.test"]\ncapabilities = ["resolve"]\n',
        ),
      readdir: () => Promise.resolve([]),
      exists: (p) => Promise.resolve(p === '/c/r.test'),
    };
    const r = await resolveRegistryHosts(['/c'], 'r.test', fs);
    assert.deepEqual(endpointsFor(r, 'resolve'), []);
    assert.equal(endpointsFor(r, 'pull').length, 1);
    assert.equal(r.warnings.length, 1);
  });
});

describe('dial_timeout (Go time.ParseDuration)', () => {
  it('accepts what Go accepts', () => {
    for (const ok of [
      '0',
      '-0',
      '+5s',
      '3s',
      '1m30s',
      '1.5h',
      '.5s',
      '5.s',
      '300ms',
      '10us',
      '10µs',
      '10μs',
      '7ns',
      '2562047h',
      '9223372036854775807ns',
      '1h1m1s1ms1us1ns',
      '0000s',
    ]) {
      assert.equal(parseHostsToml(`[host."m"]\ndial_timeout = ${JSON.stringify(ok)}\n`, F).hosts[0]?.dialTimeout, ok);
    }
  });

  it('costs linear time on a long value (the old pattern took seconds on 40 000 zeros)', () => {
    const start = process.cpuUsage();
    for (const v of [`${'0'.repeat(40_000)}x`, '0'.repeat(40_000), `${'1s'.repeat(20_000)}x`, `.${'5'.repeat(40_000)}x`]) {
      configError(() => parseHostsToml(`[host."m"]\ndial_timeout = "${v}"\n`, F));
    }
    const used = process.cpuUsage(start);
    assert.ok((used.user + used.system) / 1e6 < 1, `CPU ${(used.user + used.system) / 1e6} s`);
  });
});

/** In-memory HostsFs over path → text; directories are the files' parents; `denied` paths fail with EACCES. */
function memFs(files: Record<string, string>, denied: string[] = []): HostsFs {
  const paths = Object.keys(files);
  const deny = (p: string) => (denied.includes(p) ? Object.assign(new Error(`EACCES ${p}`), { code: 'EACCES' }) : null);
  return {
    readFile: (p) => {
      const d = deny(p);
      if (d) return Promise.reject(d);
      const t = files[p];
      return t === undefined ? Promise.reject(Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' })) : Promise.resolve(t);
    },
    readdir: (dir) => {
      const d = deny(dir);
      return d ? Promise.reject(d) : Promise.resolve(paths.filter((p) => posix.dirname(p) === dir).map((p) => posix.basename(p)));
    },
    exists: (p) => {
      const d = deny(p);
      return d ? Promise.reject(d) : Promise.resolve(paths.some((f) => f === p || f.startsWith(`${p}/`)));
    },
  };
}

describe('endpoint details the walk needs (path, headers, client certificates, dial_timeout, ns)', () => {
  const D = '/etc/containerd/certs.d/reg.test';

  it('headers: root header goes to the server only, each host its own; registry.headers from config.toml come first', async () => {
    const fs = memFs({
      [`${D}/hosts.toml`]: [
        'server = "https://reg.test"',
        '[header]',
        'x-root = "r"',
        '[host."https://m1.test"]',
        '  [host."https://m1.test".header]',
        '  x-token = ["a", "b"]',
        '  x-common = "m1"',
        '[host."https://m2.test"]',
      ].join('\n'),
    });
    const r = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'reg.test', fs, { headers: { 'x-common': ['cfg'] } });
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.headers]),
      [
        ['https://m1.test/v2', { 'x-common': ['cfg', 'm1'], 'x-token': ['a', 'b'] }],
        ['https://m2.test/v2', { 'x-common': ['cfg'] }],
        ['https://reg.test/v2', { 'x-common': ['cfg'], 'x-root': ['r'] }],
      ],
    );
    assert.deepEqual(r.endpoints[0]?.headerNames, ['x-common', 'x-token']);
  });

  it('client: a string, a list, or [cert, key] pairs, relative to the hosts.toml; a single file holds its own key', async () => {
    const fs = memFs({
      [`${D}/hosts.toml`]: [
        'client = "both.pem"',
        '[host."https://m1.test"]',
        '  client = ["/abs/a.pem", "rel/b.pem"]',
        '[host."https://m2.test"]',
        '  client = [["c.cert", "c.key"], ["/abs/d.cert", "/abs/d.key"]]',
      ].join('\n'),
      [`${D}/both.pem`]: 'x',
      [`${D}/rel/b.pem`]: 'x',
      [`${D}/c.cert`]: 'x',
      [`${D}/c.key`]: 'x',
    });
    const r = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'reg.test', fs);
    assert.deepEqual(
      r.endpoints.map((e) => e.clientCerts),
      [
        [
          { cert: '/abs/a.pem', key: '/abs/a.pem' },
          { cert: `${D}/rel/b.pem`, key: `${D}/rel/b.pem` },
        ],
        [
          { cert: `${D}/c.cert`, key: `${D}/c.key` },
          { cert: '/abs/d.cert', key: '/abs/d.key' },
        ],
        [{ cert: `${D}/both.pem`, key: `${D}/both.pem` }],
      ],
    );
    // Missing files are named once each: containerd fails the pull on them.
    assert.deepEqual(r.warnings, [
      '/abs/a.pem does not exist: containerd fails every pull of reg.test',
      '/abs/d.cert does not exist: containerd fails every pull of reg.test',
      '/abs/d.key does not exist: containerd fails every pull of reg.test',
    ]);
  });

  it('dial_timeout becomes dialTimeoutMs; "0" means no timeout of its own; a negative one is warned about', async () => {
    const fs = memFs({
      [`${D}/hosts.toml`]: [
        'dial_timeout = "1m30s"',
        '[host."https://m1.test"]',
        '  dial_timeout = "250ms"',
        '[host."https://m2.test"]',
        '  dial_timeout = "0"',
        '[host."https://m3.test"]',
        '  dial_timeout = "-1s"',
        '[host."https://m4.test"]',
        '  dial_timeout = "10us"',
      ].join('\n'),
    });
    const r = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'reg.test', fs);
    assert.deepEqual(
      r.endpoints.map((e) => e.dialTimeoutMs),
      [250, undefined, undefined, 1, 90_000],
    );
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0] ?? '', /hosts\.toml: host\."https:\/\/m3\.test"\.dial_timeout is negative/);
  });

  it('override_path: the URL path as written is the API root (no /v2), "" for the bare host', async () => {
    const fs = memFs({
      [`${D}/hosts.toml`]: [
        '[host."https://proxy.test/v2/hub-proxy"]',
        '  override_path = true',
        '[host."https://bare.test"]',
        '  override_path = true',
        '[host."https://slash.test/api/"]',
        '  override_path = true',
      ].join('\n'),
    });
    const r = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'reg.test', fs);
    assert.deepEqual(
      r.endpoints.map((e) => [e.url, e.path, e.overridePath]),
      [
        ['https://proxy.test/v2/hub-proxy', '/v2/hub-proxy', true],
        ['https://bare.test', '', true],
        ['https://slash.test/api', '/api', true],
        ['https://reg.test/v2', '/v2', false],
      ],
    );
  });

  it('ns: a mirror of docker.io carries namespace docker.io; registry-1.docker.io is the registry itself', async () => {
    const fs = memFs({ '/c/docker.io/hosts.toml': '[host."https://mirror.test:5000"]\n' });
    const r = await resolveRegistryHosts(['/c'], 'docker.io', fs);
    assert.deepEqual(
      r.endpoints.map((e) => [e.authority, e.namespace, e.isMirror]),
      [
        ['mirror.test:5000', 'docker.io', true],
        ['registry-1.docker.io', 'docker.io', false],
      ],
    );
    // A port written in the server URL is part of the host containerd compares: not the namespace, so ?ns= is sent.
    const p = await resolveRegistryHosts(
      ['/c'],
      'reg.test',
      memFs({ '/c/reg.test/hosts.toml': 'server = "https://reg.test:443"\n[host]\n' }),
    );
    assert.deepEqual(
      p.endpoints.map((e) => [e.authority, e.host, e.isMirror]),
      [['reg.test:443', 'reg.test:443', true]],
    );
  });

  it('Docker-style fallback: no hosts.toml, an empty one, or one that fails to parse → *.crt CAs and *.cert/*.key pairs', async () => {
    for (const hostsToml of [undefined, '', 'server = [1\n', '[host."https://m.test"]\ncapabilities = ["fly"]\n']) {
      const files: Record<string, string> = { [`${D}/a.crt`]: 'x', [`${D}/z.crt`]: 'x', [`${D}/me.cert`]: 'x', [`${D}/me.key`]: 'x' };
      if (hostsToml !== undefined) files[`${D}/hosts.toml`] = hostsToml;
      const r = await resolveRegistryHosts(['/etc/containerd/certs.d'], 'reg.test', memFs(files));
      assert.equal(r.mode, 'cert-files', String(hostsToml));
      assert.deepEqual(
        r.endpoints.map((e) => [e.url, e.caFiles, e.clientCerts]),
        [['https://reg.test/v2', [`${D}/a.crt`, `${D}/z.crt`], [{ cert: `${D}/me.cert`, key: `${D}/me.key` }]]],
      );
      // A file that failed to parse is named with the reason, never quoted.
      if (hostsToml && hostsToml.length > 0) {
        assert.equal(r.warnings.length, 1);
        assert.match(r.warnings[0] ?? '', new RegExp(`^${D}/hosts\\.toml: .*failed to decode hosts\\.toml`));
      } else assert.deepEqual(r.warnings, []);
    }
  });

  it('an unreadable hosts.toml, host directory or listing is a HostsTomlError naming that path (containerd fails the pull too)', async () => {
    const cases: Array<[string[], string]> = [
      [[`${D}/hosts.toml`], `${D}/hosts.toml`],
      [[D], D],
    ];
    for (const [denied, named] of cases) {
      const fs = memFs({ [`${D}/ca.crt`]: 'x' }, denied);
      await assert.rejects(resolveRegistryHosts(['/etc/containerd/certs.d'], 'reg.test', fs), (err: unknown) => {
        assert.ok(err instanceof HostsTomlError);
        assert.ok(err.message.startsWith(`${named}: cannot read (EACCES)`), err.message);
        return true;
      });
    }
    // Only the listing denied (exists works, readdir fails): the cert-file fallback cannot read the directory.
    const base = memFs({ [`${D}/ca.crt`]: 'x' });
    const fs: HostsFs = { ...base, readdir: () => Promise.reject(Object.assign(new Error('x'), { code: 'EACCES' })) };
    await assert.rejects(resolveRegistryHosts(['/etc/containerd/certs.d'], 'reg.test', fs), /reg\.test: cannot read \(EACCES\)/);
  });
});

describe('host root', () => {
  it('absolute ca/client paths in hosts.toml are node paths, opened under the host root; relative ones already are', async () => {
    const D = '/host/etc/containerd/certs.d/reg.test';
    const fs = memFs({
      [`${D}/hosts.toml`]: 'ca = ["/etc/pki/ca.pem", "rel.pem"]\nclient = "/etc/pki/client.pem"\n[host]\n',
      '/host/etc/pki/ca.pem': 'x',
      '/host/etc/pki/client.pem': 'x',
      [`${D}/rel.pem`]: 'x',
    });
    const r = await resolveRegistryHosts(['/host/etc/containerd/certs.d'], 'reg.test', fs, { hostRoot: '/host' });
    assert.deepEqual(
      r.endpoints.map((e) => [e.caFiles, e.clientCerts]),
      [[['/host/etc/pki/ca.pem', `${D}/rel.pem`], [{ cert: '/host/etc/pki/client.pem', key: '/host/etc/pki/client.pem' }]]],
    );
    assert.deepEqual(r.warnings, [], 'the files exist under the host root: no false "does not exist"');
  });
});
