import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  containerdAuth,
  effectiveConfigPath,
  loadContainerdConfig,
  parseContainerdConfig,
  type ConfigPathChoice,
  type ContainerdConfig,
} from '../../src/node-config/containerd-config.js';
import { legacyEndpoints, legacyRegistryHosts } from '../../src/node-config/containerd-legacy.js';
import type { HostFs } from '../../src/node-config/host-root.js';
import { DEFAULT_CONFIG_PATH } from '../../src/node-config/hosts-toml.js';

const FILE = '/etc/containerd/config.toml';
const V2 = 'plugins."io.containerd.grpc.v1.cri".registry';
const V3 = 'plugins."io.containerd.cri.v1.images".registry';
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const parse = (text: string): ContainerdConfig => parseContainerdConfig(text, FILE);
const lines = (...ls: string[]): string => `${ls.join('\n')}\n`;

describe('parseContainerdConfig: where each version keeps the registry settings', () => {
  const cases: Array<{ name: string; text: string; version: number; section: string; configPath: string[] | null; problems: RegExp[] }> = [
    {
      name: 'version 2: plugins."io.containerd.grpc.v1.cri".registry, config_path split on ":"',
      text: lines('version = 2', `[${V2}]`, '  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"'),
      version: 2,
      section: V2,
      configPath: ['/etc/containerd/certs.d', '/etc/docker/certs.d'],
      problems: [],
    },
    {
      name: 'version 3: plugins."io.containerd.cri.v1.images".registry',
      text: lines('version = 3', `[${V3}]`, '  config_path = "/etc/containerd/certs.d"'),
      version: 3,
      section: V3,
      configPath: ['/etc/containerd/certs.d'],
      problems: [],
    },
    {
      name: 'no version is version 1: plugins.cri.registry',
      text: lines('[plugins.cri.registry]', '  config_path = "/v1/certs.d"'),
      version: 1,
      section: 'plugins.cri.registry',
      configPath: ['/v1/certs.d'],
      problems: [],
    },
    {
      name: 'version 1 with the long key: ignored (containerd 1.6.20 ignores it too)',
      text: lines(`[${V2}]`, '  config_path = "/long"'),
      version: 1,
      section: 'plugins.cri.registry',
      configPath: null,
      problems: [/plugins\."io\.containerd\.grpc\.v1\.cri"\.registry is not read in a version 1 file/],
    },
    {
      name: 'version 2 with the short key: containerd does not start',
      text: lines('version = 2', '[plugins.cri.registry]', '  config_path = "/short"'),
      version: 2,
      section: V2,
      configPath: null,
      problems: [/plugin name "cri" is not a full plugin URI .*containerd does not start/],
    },
    {
      name: 'version 2 file with the version 3 table: not read',
      text: lines('version = 2', `[${V3}]`, '  config_path = "/v3"'),
      version: 2,
      section: V2,
      configPath: null,
      problems: [/plugins\."io\.containerd\.cri\.v1\.images"\.registry is not read in a version 2 file/],
    },
    {
      name: 'empty config_path: none',
      text: lines('version = 2', `[${V2}]`, '  config_path = ""'),
      version: 2,
      section: V2,
      configPath: null,
      problems: [],
    },
    {
      name: 'imports are named as not read',
      text: lines('version = 2', 'imports = ["/etc/containerd/conf.d/*.toml"]'),
      version: 2,
      section: V2,
      configPath: null,
      problems: [/imports are not read by pullprobe/],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const cfg = parse(c.text);
      assert.equal(cfg.ok, true);
      assert.equal(cfg.version, c.version);
      assert.equal(cfg.section, c.section);
      assert.deepEqual(cfg.configPath, c.configPath);
      assert.equal(cfg.problems.length, c.problems.length, cfg.problems.join('\n'));
      c.problems.forEach((re, i) => assert.match(cfg.problems[i] ?? '', re));
      for (const p of cfg.problems) assert.ok(p.startsWith(`${FILE}: `), p);
      assert.equal(cfg.criDisabled, null);
    });
  }
});

describe('parseContainerdConfig: mirrors, configs, auths, headers', () => {
  it('reads mirrors (with "*"), configs auth/tls, headers; auths fold into configs by URL host and win', () => {
    const cfg = parse(
      lines(
        'version = 2',
        `[${V2}.mirrors."docker.io"]`,
        '  endpoint = ["https://mirror.test", "http://10.0.0.5:5000"]',
        `[${V2}.mirrors."*"]`,
        '  endpoint = ["wild.test"]',
        `[${V2}.mirrors."empty.test"]`,
        `[${V2}.configs."reg.test:5000".auth]`,
        '  username = "u"',
        '  password = "p"',
        `[${V2}.configs."reg.test:5000".tls]`,
        '  ca_file = "/ca.pem"',
        '  cert_file = "/c.pem"',
        '  key_file = "/k.pem"',
        '  insecure_skip_verify = true',
        `[${V2}.configs."gcr.io".auth]`,
        '  username = "old"',
        `[${V2}.auths."https://gcr.io"]`,
        '  username = "new"',
        `[${V2}.headers]`,
        '  X-Meta = ["a", "b"]',
      ),
    );
    assert.deepEqual(cfg.problems, []);
    assert.deepEqual(cfg.mirrors, {
      'docker.io': ['https://mirror.test', 'http://10.0.0.5:5000'],
      '*': ['wild.test'],
      'empty.test': [],
    });
    assert.deepEqual(cfg.configs['reg.test:5000'], {
      auth: { username: 'u', password: 'p', auth: '', identitytoken: '', key: 'registry.configs."reg.test:5000".auth' },
      tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem', insecureSkipVerify: true },
    });
    const gcr = cfg.configs['gcr.io']?.auth;
    assert.ok(gcr);
    assert.deepEqual([gcr.username, gcr.key], ['new', 'registry.auths."https://gcr.io"']);
    assert.deepEqual(cfg.headers, { 'X-Meta': ['a', 'b'] });
    assert.equal(cfg.criDisabled, null, 'mirrors and configs.tls without config_path are fine');
  });

  it('version 3: configs.<host>.tls does not exist in containerd 2.x and is ignored, with a problem', () => {
    const cfg = parse(lines('version = 3', `[${V3}.configs."r.test".tls]`, '  insecure_skip_verify = true'));
    assert.equal(cfg.configs['r.test']?.tls, undefined);
    assert.equal(cfg.problems.length, 1);
    assert.match(cfg.problems[0] ?? '', /configs\."r\.test"\.tls: containerd 2\.x has no registry TLS settings/);
  });

  it('says now what containerd fails on at pull time: bad base64 auth, cert without key, docker.io auth, an auths key with no host', () => {
    const secret = b64('user-without-colon');
    const cfg = parse(
      lines(
        'version = 2',
        `[${V2}.configs."a.test".auth]`,
        `  auth = "${secret}"`,
        `[${V2}.configs."b.test".auth]`,
        '  auth = "%%%not-base64"',
        `[${V2}.configs."c.test".tls]`,
        '  cert_file = "/c.pem"',
        `[${V2}.configs."docker.io".auth]`,
        '  username = "hub"',
        `[${V2}.auths."gcr.io:443"]`,
        '  username = "x"',
      ),
    );
    assert.equal(cfg.problems.length, 5, cfg.problems.join('\n'));
    assert.match(cfg.problems.join('\n'), /auths\."gcr\.io:443" has no host/);
    assert.match(cfg.problems.join('\n'), /configs\."a\.test"\.auth\.auth is not base64 of "user:password"/);
    assert.match(cfg.problems.join('\n'), /configs\."b\.test"\.auth\.auth is not base64/);
    assert.match(cfg.problems.join('\n'), /configs\."c\.test"\.tls sets cert_file without key_file/);
    assert.match(cfg.problems.join('\n'), /configs\."docker\.io"\.auth is never used: .*registry-1\.docker\.io/);
    assert.ok(!cfg.problems.join('\n').includes(secret));
  });

  it('a wrong type is named by key, never quoted, and that value is left out (containerd does not start with it)', () => {
    const cases: Array<[string, RegExp]> = [
      [lines('version = 2', `[${V2}]`, '  config_path = 5'), /registry\.config_path must be a string/],
      [
        lines('version = 2', `[${V2}.mirrors."docker.io"]`, '  endpoint = "https://s3cr3t@m.test"'),
        /mirrors\."docker\.io"\.endpoint must be a list of URLs/,
      ],
      [
        lines('version = 2', `[${V2}.configs."r".tls]`, '  insecure_skip_verify = "s3cr3t"'),
        /tls\.insecure_skip_verify must be true or false/,
      ],
      [lines('version = 2', `[${V2}.configs."r".auth]`, '  password = 12345'), /configs\."r"\.auth\.password must be a string/],
      [lines('version = 2', `[${V2}.headers]`, '  X-Token = "s3cr3t"'), /headers\."X-Token" must be a list of strings/],
      [lines('version = 2', `[${V2}]`, '  mirrors = "s3cr3t"'), /registry\.mirrors must be a table/],
      [lines('version = 2', 'plugins = 1'), /plugins must be a table/],
    ];
    for (const [text, re] of cases) {
      const cfg = parse(text);
      assert.equal(cfg.problems.length, 1, text);
      assert.match(cfg.problems[0] ?? '', re);
      assert.match(cfg.problems[0] ?? '', /containerd refuses a wrong type here and does not start with this file$/);
      assert.ok(!cfg.problems[0]?.includes('s3cr3t') && !cfg.problems[0]?.includes('12345'), cfg.problems[0]);
      assert.deepEqual([cfg.configPath, cfg.mirrors, cfg.headers], [null, {}, {}]);
    }
  });

  it("bad TOML: the file, line and column, smol-toml's reason, never the line's text; ok=false and nothing read", () => {
    const cfg = parse(
      lines('version = 2', `[${V2}.configs."r".auth]`, '  password = "hunter2" trailing', `[${V2}]`, '  config_path = "/x"'),
    );
    assert.equal(cfg.ok, false);
    assert.equal(cfg.configPath, null);
    assert.deepEqual(cfg.problems, [
      `${FILE}: not valid TOML at line 3, column 24 (each key-value declaration must be followed by an end-of-line): containerd does not start with this file; probing without its registry settings`,
    ]);
    assert.equal(containerdAuth(cfg, 'r'), undefined);
  });

  it('an unknown version is a problem and nothing is read', () => {
    for (const v of ['4', '"2"', '-1', '2.5']) {
      const cfg = parse(lines(`version = ${v}`, `[${V2}]`, '  config_path = "/x"'));
      assert.equal(cfg.ok, false, v);
      assert.match(cfg.problems[0] ?? '', /version must be 1, 2 or 3/);
    }
  });

  it('unknown registry keys are named (containerd ignores them)', () => {
    const cfg = parse(lines('version = 2', `[${V2}.mirror."docker.io"]`, '  endpoint = ["https://m.test"]'));
    assert.deepEqual(cfg.problems, [`${FILE}: ${V2}.mirror: unknown key, containerd ignores it`]);
  });
});

describe("criDisabled: when containerd's CRI plugin does not load (observed on containerd 1.6.20)", () => {
  const cases: Array<{ name: string; text: string; disabled: RegExp | null }> = [
    {
      name: 'mirrors next to config_path (version 2)',
      text: lines(
        'version = 2',
        `[${V2}]`,
        '  config_path = "/etc/containerd/certs.d"',
        `[${V2}.mirrors."docker.io"]`,
        '  endpoint = ["https://m.test"]',
      ),
      disabled:
        /"`mirrors` cannot be set when `config_path` is provided": plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\.mirrors\."docker\.io" next to config_path = "\/etc\/containerd\/certs\.d"/,
    },
    {
      name: 'a mirror table with no endpoint still counts',
      text: lines('version = 2', `[${V2}]`, '  config_path = "/c"', `[${V2}.mirrors."x.test"]`),
      disabled: /`mirrors` cannot be set/,
    },
    {
      name: 'an empty [registry.mirrors] table does not',
      text: lines('version = 2', `[${V2}]`, '  config_path = "/c"', `[${V2}.mirrors]`),
      disabled: null,
    },
    {
      name: 'configs.<host>.tls (even empty) next to config_path (version 2)',
      text: lines('version = 2', `[${V2}]`, '  config_path = "/c"', `[${V2}.configs."r.test".tls]`),
      disabled: /"`configs\.tls` cannot be set when `config_path` is provided": .*configs\."r\.test"\.tls next to config_path = "\/c"/,
    },
    {
      name: 'configs.<host>.auth next to config_path is fine',
      text: lines('version = 2', `[${V2}]`, '  config_path = "/c"', `[${V2}.configs."r.test".auth]`, '  username = "u"'),
      disabled: null,
    },
    {
      name: 'mirrors next to config_path (version 3, containerd 2.x refuses too)',
      text: lines('version = 3', `[${V3}]`, '  config_path = "/c"', `[${V3}.mirrors."*"]`, '  endpoint = ["https://m.test"]'),
      disabled: /plugins\."io\.containerd\.cri\.v1\.images"\.registry\.mirrors\."\*" next to config_path/,
    },
    {
      name: 'configs.tls next to config_path (version 3: ignored, not fatal)',
      text: lines('version = 3', `[${V3}]`, '  config_path = "/c"', `[${V3}.configs."r.test".tls]`),
      disabled: null,
    },
    {
      name: 'mirrors without config_path are the deprecated road, not an error',
      text: lines('version = 2', `[${V2}.mirrors."docker.io"]`, '  endpoint = ["https://m.test"]'),
      disabled: null,
    },
    {
      name: 'disabled_plugins = ["cri"] (Docker\'s packaged config.toml)',
      text: lines('disabled_plugins = ["cri"]'),
      disabled: /disabled_plugins lists "cri": containerd runs without its CRI plugin/,
    },
    {
      name: 'an auths key Go cannot parse',
      text: lines('version = 2', `[${V2}.auths."10.0.0.1:5000"]`, '  username = "u"'),
      disabled: /auths\."10\.0\.0\.1:5000" is not a URL containerd can parse/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const cfg = parse(c.text);
      if (c.disabled === null) assert.equal(cfg.criDisabled, null);
      else {
        assert.match(cfg.criDisabled ?? '', c.disabled);
        assert.ok(cfg.criDisabled?.startsWith(`${FILE}: `));
      }
    });
  }
});

describe('containerdAuth: containerd ParseAuth over configs."<host>".auth', () => {
  const cfg = parse(
    lines(
      'version = 2',
      `[${V2}.configs."basic.test".auth]`,
      '  username = "alice"',
      '  password = "pw"',
      '  identitytoken = "ignored-when-username-is-set"',
      `[${V2}.configs."token.test".auth]`,
      '  identitytoken = "refresh-me"',
      `[${V2}.configs."b64.test:5000".auth]`,
      `  auth = "${b64('bob:pa:ss\0\0')}"`,
      `[${V2}.configs."empty.test".auth]`,
      `[${V2}.configs."tls-only.test".tls]`,
      '  insecure_skip_verify = true',
    ),
  );
  const origin = { source: 'containerd-config', name: FILE, expiresAt: null };
  const cases: Array<[string, object | undefined]> = [
    ['basic.test', { username: 'alice', password: 'pw', source: `${FILE} registry.configs."basic.test".auth`, origin }],
    [
      'token.test',
      { username: '', password: 'refresh-me', identityToken: true, source: `${FILE} registry.configs."token.test".auth`, origin },
    ],
    ['b64.test:5000', { username: 'bob', password: 'pa:ss', source: `${FILE} registry.configs."b64.test:5000".auth`, origin }],
    ['b64.test', undefined],
    ['empty.test', undefined],
    ['tls-only.test', undefined],
    ['nowhere.test', undefined],
  ];
  for (const [host, want] of cases) {
    it(`${host} → ${want ? 'credentials' : 'none'}`, () => assert.deepEqual(containerdAuth(cfg, host), want));
  }
  it('a file that failed to read or parse gives none', () => {
    assert.equal(containerdAuth(null, 'basic.test'), undefined);
    assert.equal(containerdAuth({ ...cfg, ok: false }, 'basic.test'), undefined);
  });
});

describe('loadContainerdConfig', () => {
  const fsOf = (files: Record<string, string | { code: string }>): HostFs => ({
    isLink: () => false,
    readlink: () => '',
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
      if (typeof f !== 'string') throw Object.assign(new Error('nope'), { code: f.code });
      return f;
    },
  });

  it('absent: null (containerd runs with its defaults)', () => {
    assert.equal(loadContainerdConfig(FILE, '', fsOf({})), null);
  });

  it('unreadable: a problem naming the file and the error code, ok=false, the probe goes on', () => {
    const cfg = loadContainerdConfig(FILE, '', fsOf({ [FILE]: { code: 'EACCES' } }));
    assert.ok(cfg);
    assert.equal(cfg.ok, false);
    assert.deepEqual(cfg.problems, [
      `${FILE}: cannot read (EACCES); probing without its registry settings (config_path, mirrors, credentials)`,
    ]);
    assert.deepEqual(effectiveConfigPath(cfg, null).paths, DEFAULT_CONFIG_PATH.split(':'));
  });

  it('read under the host root', () => {
    const cfg = loadContainerdConfig(
      `/host${FILE}`,
      '/host',
      fsOf({ [`/host${FILE}`]: lines('version = 2', `[${V2}]`, '  config_path = "/c"') }),
    );
    assert.ok(cfg);
    assert.deepEqual([cfg.configPath, cfg.file], [['/c'], `/host${FILE}`]);
  });
});

describe('legacyEndpoints: registry.mirrors and configs.tls without config_path', () => {
  const cfg = parse(
    lines(
      'version = 2',
      `[${V2}.mirrors."docker.io"]`,
      '  endpoint = ["mirror.test", "https://registry-1.docker.io"]',
      `[${V2}.mirrors."*"]`,
      '  endpoint = ["https://wild.test:8443/v2/proxy"]',
      `[${V2}.mirrors."own.test"]`,
      '  endpoint = ["https://first.test", "https://own.test"]',
      `[${V2}.mirrors."none.test"]`,
      `[${V2}.mirrors."localhost:5000"]`,
      '  endpoint = ["127.0.0.1:5001", "https://root.test/"]',
      `[${V2}.configs."wild.test:8443".tls]`,
      '  ca_file = "/wild-ca.pem"',
      '  cert_file = "/wild.cert"',
      '  key_file = "/wild.key"',
      '  insecure_skip_verify = true',
      `[${V2}.headers]`,
      '  X-Meta = ["m"]',
    ),
  );

  const row = (e: ReturnType<typeof legacyEndpoints>[number]) => [e.url, e.path, e.isMirror, e.isServer];

  it('docker.io: its own mirrors, https:// added, /v2 when no path, registry-1.docker.io appended even when listed (containerd compares with docker.io)', () => {
    const h = legacyRegistryHosts(cfg, 'docker.io');
    assert.equal(h.mode, 'config-toml');
    assert.equal(h.source, FILE);
    assert.deepEqual(h.endpoints.map(row), [
      ['https://mirror.test/v2', '/v2', true, false],
      ['https://registry-1.docker.io/v2', '/v2', false, false],
      ['https://registry-1.docker.io/v2', '/v2', false, true],
    ]);
    assert.deepEqual(
      h.endpoints.map((e) => e.duplicateOf),
      [null, null, 1],
    );
    assert.equal(h.warnings.length, 1);
    assert.match(h.warnings[0] ?? '', /tried twice/);
    const first = h.endpoints[0];
    assert.ok(first);
    assert.deepEqual([first.capabilities, first.headers, first.namespace], [['pull', 'resolve'], { 'X-Meta': ['m'] }, 'docker.io']);
  });

  it('"*" for a registry without its own entry; the path is kept as written; configs.<endpoint host>.tls applies', () => {
    const [wild, own] = legacyEndpoints(cfg, 'quay.io');
    assert.ok(wild && own);
    assert.deepEqual(row(wild), ['https://wild.test:8443/v2/proxy', '/v2/proxy', true, false]);
    assert.deepEqual(
      [wild.caFiles, wild.clientCerts, wild.skipVerify],
      [['/wild-ca.pem'], [{ cert: '/wild.cert', key: '/wild.key' }], true],
    );
    assert.deepEqual(row(own), ['https://quay.io/v2', '/v2', false, true]);
    assert.deepEqual([own.caFiles, own.skipVerify], [[], false]);
  });

  it('no default appended when an endpoint is the registry host itself; an entry with no endpoints is the registry alone', () => {
    assert.deepEqual(legacyEndpoints(cfg, 'own.test').map(row), [
      ['https://first.test/v2', '/v2', true, false],
      ['https://own.test/v2', '/v2', false, true],
    ]);
    assert.deepEqual(legacyEndpoints(cfg, 'none.test').map(row), [['https://none.test/v2', '/v2', false, true]]);
  });

  it('localhost: http:// by default for loopback hosts; a path of "/" means no /v2, and is warned about', () => {
    const h = legacyRegistryHosts(cfg, 'localhost:5000');
    assert.deepEqual(h.endpoints.map(row), [
      ['http://127.0.0.1:5001/v2', '/v2', true, false],
      ['https://root.test', '', true, false],
      ['http://localhost:5000/v2', '/v2', false, true],
    ]);
    assert.equal(h.endpoints[0]?.host, '127.0.0.1:5001');
    assert.deepEqual(h.warnings, [
      "https://root.test: requests go to https://root.test/<image>/manifests/…, without /v2 (containerd uses a mirror URL's path as it is)",
    ]);
  });

  it('without a config (or an unreadable one): the registry itself', () => {
    assert.deepEqual(legacyEndpoints(null, 'docker.io').map(row), [['https://registry-1.docker.io/v2', '/v2', false, true]]);
    assert.deepEqual(legacyEndpoints({ ...cfg, ok: false }, 'quay.io').map(row), [['https://quay.io/v2', '/v2', false, true]]);
  });

  it('an endpoint that is not a URL is skipped with a warning naming the key, userinfo hidden', () => {
    const bad = parse(lines('version = 2', `[${V2}.mirrors."r.test"]`, '  endpoint = ["https://user:pw@/nohost", "https://ok.test"]'));
    const h = legacyRegistryHosts(bad, 'r.test');
    assert.deepEqual(
      h.endpoints.map((e) => e.url),
      ['https://ok.test/v2', 'https://r.test/v2'],
    );
    assert.equal(h.warnings.length, 1);
    assert.match(h.warnings[0] ?? '', /mirrors\."r\.test" endpoint "https:\/\/\/nohost" is not a URL with a host/);
    assert.ok(!h.warnings[0]?.includes('pw'));
  });
});

describe('effectiveConfigPath', () => {
  const v2cp = parse(lines('version = 2', `[${V2}]`, '  config_path = "/file/certs.d"'));
  const v2none = parse(lines('version = 2'));
  const v3none = parse(lines('version = 3'));
  const v3mirrors = parse(lines('version = 3', `[${V3}.mirrors."*"]`, '  endpoint = ["https://m.test"]'));
  const broken = parse('version = [');
  const DEFAULT = DEFAULT_CONFIG_PATH.split(':');
  const cases: Array<[string, ContainerdConfig | null, string[] | null, ConfigPathChoice]> = [
    ['an explicit --containerd-config-path wins over the file', v2cp, ['/flag'], { paths: ['/flag'], from: 'flag', legacy: false }],
    ["the file's config_path", v2cp, null, { paths: ['/file/certs.d'], from: 'config-file', legacy: false }],
    [
      'a version 2 file without config_path: containerd 1.x ignores certs.d, 2.x would use the default roots',
      v2none,
      null,
      { paths: [], from: 'legacy', legacy: true, versionDecides: { paths: DEFAULT } },
    ],
    [
      'a version 3 file without registry settings: containerd 2.x defaults',
      v3none,
      null,
      { paths: DEFAULT, from: 'default', legacy: false },
    ],
    ['a version 3 file with mirrors and no config_path', v3mirrors, null, { paths: [], from: 'legacy', legacy: true }],
    ['no file', null, null, { paths: DEFAULT, from: 'default', legacy: false }],
    ['a file that does not parse', broken, null, { paths: DEFAULT, from: 'default', legacy: false }],
  ];
  for (const [name, cfg, explicit, want] of cases) it(name, () => assert.deepEqual(effectiveConfigPath(cfg, explicit), want));
  it('a version 2 file without registry settings on a node known to run containerd 2.x: the default roots', () => {
    assert.deepEqual(effectiveConfigPath(v2none, null, '', 2), { paths: DEFAULT, from: 'default', legacy: false });
    assert.deepEqual(effectiveConfigPath(v2none, null, '', 1), { paths: [], from: 'legacy', legacy: true });
    const v2mirrors = parse(lines('version = 2', `[${V2}.mirrors."*"]`, '  endpoint = ["https://m.test"]'));
    assert.deepEqual(effectiveConfigPath(v2mirrors, null, '', 2), { paths: [], from: 'legacy', legacy: true });
    assert.deepEqual(effectiveConfigPath(v2mirrors), { paths: [], from: 'legacy', legacy: true }, 'mirrors: legacy whatever the version');
    assert.deepEqual(effectiveConfigPath(v2none, null, '/host').versionDecides, {
      paths: DEFAULT.map((p) => `/host${p}`),
    });
  });
});

describe('never throws, never quotes a secret', () => {
  it('every truncation and single-character change of a full config gives a ContainerdConfig whose messages hold no password', () => {
    const text = lines(
      'version = 2',
      'disabled_plugins = []',
      `[${V2}]`,
      '  config_path = "/etc/containerd/certs.d"',
      `[${V2}.mirrors."docker.io"]`,
      '  endpoint = ["https://hunter2@mirror.test"]',
      `[${V2}.configs."r.test".auth]`,
      '  password = "hunter2"',
      `  auth = "${b64('u:hunter2')}"`,
      '  identitytoken = "hunter2"',
      `[${V2}.configs."r.test".tls]`,
      '  cert_file = "/c.pem"',
      `[${V2}.auths."https://hunter2@a.test"]`,
      '  username = "x"',
      `[${V2}.headers]`,
      '  Authorization = ["hunter2"]',
    );
    const swaps = ['"', '[', ']', '=', '\n', '5', '.', ':', '\u0000'];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const variants = [text];
    for (let i = 0; i <= text.length; i += 3) variants.push(text.slice(0, i));
    for (let i = 0; i < 600; i++) {
      const at = rnd(text.length);
      variants.push(text.slice(0, at) + (swaps[rnd(swaps.length)] ?? '') + text.slice(at + 1));
    }
    for (const v of variants) {
      const cfg = parse(v);
      for (const m of [...cfg.problems, cfg.criDisabled ?? '']) {
        assert.ok(!m.includes('hunter2'), `${m}\n--- from ---\n${v}`);
        assert.ok(m === '' || m.startsWith(`${FILE}: `), m);
      }
      for (const host of Object.keys(cfg.configs)) containerdAuth(cfg, host);
      for (const reg of ['docker.io', 'r.test', 'x']) {
        const h = legacyRegistryHosts(cfg, reg);
        for (const w of h.warnings) assert.ok(!w.includes('hunter2'), w);
      }
      effectiveConfigPath(cfg, null);
    }
  });
});

describe('host root: paths written on the node are opened under it', () => {
  it('config_path from the file and the default roots get the host root; an explicit flag is taken as given', () => {
    const cfg = parse(lines('version = 2', `[${V2}]`, '  config_path = "/etc/containerd/certs.d:/host/already"'));
    assert.deepEqual(effectiveConfigPath(cfg, null, '/host').paths, ['/host/etc/containerd/certs.d', '/host/already']);
    assert.deepEqual(
      effectiveConfigPath(null, null, '/host/').paths,
      DEFAULT_CONFIG_PATH.split(':').map((p) => `/host${p}`),
    );
    assert.deepEqual(effectiveConfigPath(cfg, ['/mnt/certs.d'], '/host').paths, ['/mnt/certs.d']);
  });

  it('legacy configs.tls files get the host root', () => {
    const cfg = parse(
      lines(
        'version = 2',
        `[${V2}.configs."r.test".tls]`,
        '  ca_file = "/etc/ca.pem"',
        '  cert_file = "/etc/c.pem"',
        '  key_file = "/etc/k.pem"',
      ),
    );
    const [ep] = legacyEndpoints(cfg, 'r.test', { hostRoot: '/host' });
    assert.deepEqual([ep?.caFiles, ep?.clientCerts], [['/host/etc/ca.pem'], [{ cert: '/host/etc/c.pem', key: '/host/etc/k.pem' }]]);
  });
});
