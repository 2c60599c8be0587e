/**
 * kubelet credential-provider plugins (src/node-config/credential-provider.ts): the
 * CredentialProviderConfig checks, matchImages as the kubelet's URLsMatch, and real
 * executables written here into a temp dir (one answering with a cacheDuration, one
 * failing, one hanging, ones answering wrongly), run with an injected wall clock.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CredentialProviderConfigError,
  CredentialProviders,
  ecrTokenExpiry,
  parseCredentialProviderConfig,
  type CredentialProviderConfig,
} from '../../src/node-config/credential-provider.js';
import { urlsMatch } from '../../src/node-config/kubelet-keyring.js';
import { loadCredentialProviders } from '../../src/node-config/credential-provider-load.js';

const V1 = 'credentialprovider.kubelet.k8s.io/v1';
let dir: string;

function script(name: string, body: string): void {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-providers-'));
  // Answers with $RESPONSE; records its stdin, its arguments and part of its environment.
  script(
    'answer',
    'cat > "$REQ_FILE"; echo "$@" > "$REQ_FILE.args"; echo "$FROM_HOST/$FROM_CONFIG" > "$REQ_FILE.env"; printf "%s" "$RESPONSE"',
  );
  script('fail', 'echo "boom: no instance profile" >&2; exit 1');
  script('hang', 'echo $$ > "$PID_FILE"; sleep 600 & echo $! > "$PID_FILE.child"; wait');
  script('flood', 'yes "{}"');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(providers: object[]): string {
  return JSON.stringify({ apiVersion: 'kubelet.config.k8s.io/v1', kind: 'CredentialProviderConfig', providers });
}

function provider(name: string, extra: object = {}): object {
  return { name, matchImages: ['registry.lab.test', '*.dkr.ecr.*.amazonaws.com'], defaultCacheDuration: '10m', apiVersion: V1, ...extra };
}

function response(extra: object = {}): string {
  return JSON.stringify({
    apiVersion: V1,
    kind: 'CredentialProviderResponse',
    cacheKeyType: 'Image',
    cacheDuration: '5m',
    auth: { 'registry.lab.test': { username: 'lab', password: 'pw-from-plugin' } },
    ...extra,
  });
}

function providers(cfg: CredentialProviderConfig, now: { t: number }, opts: { timeoutMs?: number } = {}): CredentialProviders {
  return new CredentialProviders(cfg, dir, { wallNow: () => now.t, env: { PATH: process.env.PATH, FROM_HOST: 'host' }, ...opts });
}

const ctx = (deadlineMs = 30_000, signal = new AbortController().signal): { signal: AbortSignal; deadlineMs: number } => ({
  signal,
  deadlineMs,
});

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

describe('CredentialProviderConfig', () => {
  it('reads YAML and JSON, every apiVersion the kubelet reads', () => {
    for (const v of ['v1', 'v1beta1', 'v1alpha1']) {
      const yaml = `apiVersion: kubelet.config.k8s.io/${v}
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages: ["*.dkr.ecr.*.amazonaws.com"]
    defaultCacheDuration: 12h
    apiVersion: credentialprovider.kubelet.k8s.io/${v}
    args: [get-credentials]
    env:
      - name: AWS_PROFILE
        value: example
`;
      const c = parseCredentialProviderConfig(yaml, '/etc/kubernetes/cp.yaml');
      const p0 = c.providers[0];
      assert.ok(p0);
      assert.equal(p0.defaultCacheDurationMs, 12 * 3600_000);
      assert.deepEqual(p0.args, ['get-credentials']);
      assert.deepEqual(p0.env, [{ name: 'AWS_PROFILE', value: 'example' }]);
    }
    assert.equal(parseCredentialProviderConfig(config([provider('a')]), 'c.json').providers[0]?.name, 'a');
  });

  it('names the file and the field of what the kubelet would refuse', () => {
    const cases: Array<[string, RegExp]> = [
      [
        config([provider('a'), provider('b', { apiVersion: 'credentialprovider.kubelet.k8s.io/v2' })]),
        /^f\.yaml: providers\[1\]\.apiVersion: invalid apiVersion/,
      ],
      [
        config([provider('a', { defaultCacheDuration: undefined })]),
        /^f\.yaml: providers\[0\]\.defaultCacheDuration: defaultCacheDuration is required/,
      ],
      [config([provider('a', { defaultCacheDuration: '12 hours' })]), /providers\[0\]\.defaultCacheDuration: "12 hours" is not a duration/],
      [config([provider('a'), provider('a')]), /providers\[1\]\.name: duplicate provider name "a"/],
      [config([provider('a', { matchImages: [] })]), /providers\[0\]\.matchImages: at least 1 item/],
      [config([provider('../a')]), /providers\[0\]\.name: .*no "\/"/],
      [
        config([provider('a', { matchImages: ['ok.io', 'reg.io:http'] })]),
        /providers\[0\]\.matchImages\[1\]: match image "reg\.io:http" is invalid/,
      ],
      [config([]), /providers: at least 1 item/],
      [
        JSON.stringify({ apiVersion: 'kubelet.config.k8s.io/v2', kind: 'CredentialProviderConfig', providers: [provider('a')] }),
        /^f\.yaml: apiVersion: must be one of/,
      ],
      [
        JSON.stringify({ apiVersion: 'kubelet.config.k8s.io/v1', kind: 'KubeletConfiguration', providers: [provider('a')] }),
        /^f\.yaml: kind: /,
      ],
      ['providers: [\n  - name: a\n    env: {{', /^f\.yaml: not valid YAML or JSON/],
    ];
    for (const [text, want] of cases) {
      assert.throws(
        () => parseCredentialProviderConfig(text, 'f.yaml'),
        (e: unknown) => e instanceof CredentialProviderConfigError && want.test(e.message),
        text,
      );
    }
  });

  it('never quotes an env value in an error', () => {
    const text = config([provider('a', { env: [{ name: 'TOKEN', value: 's3cret-env' }], defaultCacheDuration: 'x' })]);
    assert.throws(
      () => parseCredentialProviderConfig(text, 'f'),
      (e: unknown) => e instanceof Error && !e.message.includes('s3cret-env'),
    );
  });
});

describe('matchImages: the kubelet URLsMatch', () => {
  const rows: Array<[string, string, boolean]> = [
    ['*.dkr.ecr.*.amazonaws.com', '123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app', true],
    ['*.dkr.ecr.*.amazonaws.com', 'dkr.ecr.us-east-1.amazonaws.com/team/app', false], // label count
    ['*.amazonaws.com', 'a.b.amazonaws.com/x', false], // * never crosses a dot
    ['registry.lab.test', 'registry.lab.test/lab/probe', true],
    ['registry.lab.test:5000', 'registry.lab.test/lab/probe', false], // port
    ['registry.lab.test', 'registry.lab.test:5000/lab/probe', false],
    ['registry.lab.test:5000', 'registry.lab.test:5000/lab/probe', true],
    ['registry.lab.test/lab', 'registry.lab.test/lab/probe', true], // path prefix
    ['registry.lab.test/other', 'registry.lab.test/lab/probe', false],
    ['registry.lab.test/lab/probe/deeper', 'registry.lab.test/lab/probe', false],
    ['reg*.lab.test', 'registry.lab.test/lab/probe', true],
    ['r[a-f]g.lab.test', 'reg.lab.test/x', true],
    ['r[^a-f]g.lab.test', 'reg.lab.test/x', false], // Go negates with ^ (a "!" is a member)
    ['r[!a-f]g.lab.test', 'reg.lab.test/x', true],
    ['*', 'localhost/x', true],
    ['*', 'registry.lab.test/x', false],
    ['gcr.io', 'us.gcr.io/x', false],
  ];
  for (const [glob, image, want] of rows) it(`${glob} ~ ${image} → ${want}`, () => assert.equal(urlsMatch(glob, image), want));

  it('a provider is asked only for images its matchImages match', () => {
    const cfg = parseCredentialProviderConfig(config([provider('answer', { matchImages: ['*.lab.test:5000'] }), provider('fail')]), 'c');
    const ps = providers(cfg, { t: 0 });
    assert.deepEqual(
      ps.matching('registry.lab.test:5000/lab/probe').map((p) => p.name),
      ['answer'],
    );
    assert.deepEqual(
      ps.matching('registry.lab.test/lab/probe').map((p) => p.name),
      ['fail'],
    );
    assert.deepEqual(ps.matching('docker.io/library/nginx'), []);
  });
});

describe('running a provider', () => {
  function answering(name: string, resp: string, extra: object = {}): { ps: CredentialProviders; now: { t: number }; req: string } {
    const req = join(dir, `${name}-${Math.random().toString(36).slice(2)}.json`);
    const env = [
      { name: 'REQ_FILE', value: req },
      { name: 'RESPONSE', value: resp },
      { name: 'FROM_CONFIG', value: 'config' },
    ];
    const cfg = parseCredentialProviderConfig(
      config([provider('answer', { args: ['get-credentials', '--v=2'], env, ...extra })]),
      '/etc/kubernetes/cp.json',
    );
    const now = { t: 1_000_000 };
    return { ps: providers(cfg, now), now, req };
  }

  it('sends a CredentialProviderRequest with the repository, args and env; returns the credentials and their expiry', async () => {
    const { ps, now, req } = answering('ok', response());
    const out = await ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.deepEqual(out.problems, []);
    assert.deepEqual(JSON.parse(readFileSync(req, 'utf8')), {
      apiVersion: V1,
      kind: 'CredentialProviderRequest',
      image: 'registry.lab.test/lab/probe',
    });
    assert.equal(readFileSync(`${req}.args`, 'utf8').trim(), 'get-credentials --v=2');
    assert.equal(readFileSync(`${req}.env`, 'utf8').trim(), 'host/config');
    assert.deepEqual(out.results, [
      {
        provider: 'answer',
        auths: [{ key: 'registry.lab.test', username: 'lab', password: 'pw-from-plugin' }],
        expiresAt: now.t + 5 * 60_000,
        cached: false,
      },
    ]);
  });

  it('caches per cacheKeyType for cacheDuration (wall clock injected)', async () => {
    const cases: Array<[string, string, boolean]> = [
      // [cacheKeyType, second image, served from cache]
      ['Image', 'registry.lab.test/lab/probe', true],
      ['Image', 'registry.lab.test/lab/other', false],
      ['Registry', 'registry.lab.test/lab/other', true],
      ['Registry', 'registry.lab.test:5000/lab/other', false],
      ['Global', 'other.lab.test/x', true],
    ];
    for (const [type, second, hit] of cases) {
      const { ps, now } = answering(`cache-${type}`, response({ cacheKeyType: type }), { matchImages: ['*.lab.test', '*.lab.test:5000'] });
      await ps.lookup('registry.lab.test/lab/probe', ctx());
      now.t += 4 * 60_000;
      const again = await ps.lookup(second, ctx());
      assert.equal(ps.stats.execs, hit ? 1 : 2, `${type} ${second}`);
      const r0 = again.results[0];
      assert.ok(r0);
      assert.equal(r0.cached, hit);
      if (hit) assert.equal(r0.expiresAt, 1_000_000 + 5 * 60_000);
    }
  });

  it('runs again once the cache entry expired; "0s" is never cached; null takes defaultCacheDuration', async () => {
    const a = answering('expire', response());
    await a.ps.lookup('registry.lab.test/lab/probe', ctx());
    a.now.t += 5 * 60_000;
    await a.ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.equal(a.ps.stats.execs, 2);

    const zero = answering('zero', response({ cacheDuration: '0s' }));
    const z = await zero.ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.equal(z.results[0]?.expiresAt, null);
    await zero.ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.equal(zero.ps.stats.execs, 2);

    const dflt = answering('default', response({ cacheDuration: null }));
    const d = await dflt.ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.equal(d.results[0]?.expiresAt, dflt.now.t + 10 * 60_000);
    dflt.now.t += 9 * 60_000;
    await dflt.ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.equal(dflt.ps.stats.execs, 1);
    assert.equal(dflt.ps.stats.cacheHits, 1);
  });

  it('one exec for concurrent lookups of one image', async () => {
    const { ps } = answering('flight', response());
    await Promise.all([1, 2, 3].map(() => ps.lookup('registry.lab.test/lab/probe', ctx())));
    assert.equal(ps.stats.execs, 1);
  });

  it("an ECR token's own expiry wins when it is earlier than the cache's", async () => {
    const expiration = 1_000_000 / 1000 + 60; // one minute after "now"
    const pw = Buffer.from(JSON.stringify({ payload: 'p', datakey: 'd', version: '2', type: 'DATA_KEY', expiration })).toString('base64');
    assert.equal(ecrTokenExpiry(pw), expiration * 1000);
    assert.equal(ecrTokenExpiry('not-base64-json'), null);
    const { ps } = answering('ecr', response({ auth: { 'registry.lab.test': { username: 'AWS', password: pw } } }));
    const out = await ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.equal(out.results[0]?.expiresAt, expiration * 1000);
  });

  it('wrong apiVersion, kind, cacheKeyType or cacheDuration: no credentials, a problem naming the plugin', async () => {
    const bad: Array<[string, RegExp]> = [
      [response({ apiVersion: 'credentialprovider.kubelet.k8s.io/v1beta1' }), /did not match expected apiVersion/],
      [response({ kind: 'CredentialProviderRequest' }), /expected CredentialProviderResponse/],
      [response({ cacheKeyType: 'Pod' }), /did not return a valid cacheKeyType: "Pod"/],
      [response({ cacheDuration: 'soon' }), /cacheDuration "soon" is not a duration/],
      ['not json {', /not a JSON CredentialProviderResponse/],
    ];
    for (const [resp, want] of bad) {
      const { ps } = answering('bad', resp);
      const out = await ps.lookup('registry.lab.test/lab/probe', ctx());
      assert.deepEqual(out.results, []);
      assert.equal(out.problems.length, 1);
      assert.match(
        out.problems[0] ?? '',
        /^credential provider answer \(\/etc\/kubernetes\/cp\.json\) for registry\.lab\.test\/lab\/probe: /,
      );
      assert.match(out.problems[0] ?? '', want);
      assert.doesNotMatch(out.problems[0] ?? '', /pw-from-plugin/);
    }
  });

  it('a failing plugin: exit status and its stderr line; a missing binary is named', async () => {
    const cfg = parseCredentialProviderConfig(config([provider('fail'), provider('missing')]), 'c.yaml');
    const ps = providers(cfg, { t: 0 });
    const out = await ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.deepEqual(out.results, []);
    assert.match(
      out.problems[0] ?? '',
      /credential provider fail .*: exit status 1: boom: no instance profile; the kubelet pulls without its credentials/,
    );
    assert.match(out.problems[1] ?? '', /credential provider missing .*plugin binary executable .*\/missing did not exist/);
    assert.equal(ps.stats.failures, 2);
  });

  it('a flooding plugin is stopped at the stdout bound', async () => {
    const cfg = parseCredentialProviderConfig(config([provider('flood')]), 'c.yaml');
    const ps = new CredentialProviders(cfg, dir, { env: { PATH: process.env.PATH }, maxStdout: 4096 });
    const out = await ps.lookup('registry.lab.test/lab/probe', ctx());
    assert.match(out.problems[0] ?? '', /wrote more than 4096 bytes to stdout/);
  });

  for (const how of ['abort', 'deadline'] as const) {
    it(`a hanging plugin is killed (with what it started) at the caller's ${how}`, async () => {
      const pidFile = join(dir, `hang-${how}.pid`);
      const cfg = parseCredentialProviderConfig(config([provider('hang', { env: [{ name: 'PID_FILE', value: pidFile }] })]), 'c.yaml');
      const ps = providers(cfg, { t: 0 });
      const ac = new AbortController();
      const pending = ps.lookup('registry.lab.test/lab/probe', how === 'abort' ? ctx(60_000, ac.signal) : ctx(300));
      if (how === 'abort') {
        while (!existsSync(`${pidFile}.child`) || readFileSync(`${pidFile}.child`, 'utf8').trim() === '')
          await new Promise((r) => setTimeout(r, 10));
        ac.abort();
      }
      const out = await pending;
      assert.deepEqual(out.results, []);
      assert.match(out.problems[0] ?? '', how === 'abort' ? /hang .*: stopped at the probe deadline/ : /hang .*: timed out after 0\.3 s/);
      for (const f of [pidFile, `${pidFile}.child`]) {
        if (!existsSync(f)) continue; // killed before it got that far
        const pid = Number(readFileSync(f, 'utf8').trim());
        if (!Number.isInteger(pid) || pid <= 0) continue;
        for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(isAlive(pid), false, `${f}: ${pid} still running`);
      }
    });
  }
});

describe('loadCredentialProviders', () => {
  it('reads the config, checks the bin dir as the kubelet does at start-up, and names what is missing', () => {
    const cfgFile = join(dir, 'cp.json');
    writeFileSync(cfgFile, config([provider('answer'), provider('not-there')]));
    const loaded = loadCredentialProviders({ configFile: cfgFile, binDir: dir });
    assert.ok(loaded.providers);
    assert.deepEqual(loaded.problems, [`plugin binary executable ${join(dir, 'not-there')} did not exist`]);
    const noDir = loadCredentialProviders({ configFile: cfgFile, binDir: join(dir, 'nope') });
    assert.deepEqual(noDir.problems, [`plugin binary directory ${join(dir, 'nope')} did not exist`]);
  });

  it('a bad or missing config: a problem, or with strict (named on the command line) an error', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n');
    const r = loadCredentialProviders({ configFile: bad, binDir: dir });
    assert.equal(r.providers, undefined);
    assert.match(r.problems[0] ?? '', /bad\.yaml: providers: at least 1 item .*probing without credential providers$/);
    assert.throws(() => loadCredentialProviders({ configFile: bad, binDir: dir, strict: true }), CredentialProviderConfigError);
    const missing = loadCredentialProviders({ configFile: join(dir, 'missing.yaml'), binDir: dir });
    assert.match(missing.problems[0] ?? '', /missing\.yaml: cannot read credential provider config \(ENOENT\)/);
    assert.throws(
      () => loadCredentialProviders({ configFile: join(dir, 'missing.yaml'), binDir: dir, strict: true }),
      /cannot read credential provider config/,
    );
  });
});
