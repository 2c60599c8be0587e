import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  realProcFs,
  findContainerdPid,
  loadProxyEnv,
  parseEnviron,
  parseProxyUrl,
  proxyAuthorization,
  proxyDisplay,
  proxyEnvFrom,
  proxyFor,
  proxyPort,
  proxyProblems,
  readProcessProxyEnv,
  type ProcFs,
} from '../../src/node-config/proxy-env.js';
import { parseNoProxy, useProxy } from '../../src/node-config/no-proxy.js';
import { RoadCache } from '../../src/node-config/road.js';

// Cases re-expressed from golang/net@29181b8c03a8e33d784696b8cf368d3d7b576a9e:http/httpproxy/proxy_test.go
// (proxyForURLTests, UseProxyTests + noProxy, TestInvalidNoProxy, TestAllNoProxy, TestFromEnvironment*).
// Left out: the CGI (REQUEST_METHOD) cases, which do not apply to a runtime, and ftp:// requests.
// [HTTP_PROXY, HTTPS_PROXY, NO_PROXY, request URL, proxy Go chooses (or null)]
const PROXY_FOR_URL: Array<[string, string, string, string, string | null]> = [
  ['127.0.0.1:8080', '', '', 'http://example.com', 'http://127.0.0.1:8080'],
  ['cache.corp.example.com:1234', '', '', 'http://example.com', 'http://cache.corp.example.com:1234'],
  ['cache.corp.example.com', '', '', 'http://example.com', 'http://cache.corp.example.com'],
  ['localhost', '', '', 'http://example.com', 'http://localhost'],
  ['https://cache.corp.example.com', '', '', 'http://example.com', 'https://cache.corp.example.com'],
  ['http://127.0.0.1:8080', '', '', 'http://example.com', 'http://127.0.0.1:8080'],
  ['https://127.0.0.1:8080', '', '', 'http://example.com', 'https://127.0.0.1:8080'],
  ['socks5://127.0.0.1', '', '', 'http://example.com', 'socks5://127.0.0.1'],
  ['foo://host', '', '', 'http://example.com', 'foo://host'],
  ['http.proxy.tld', 'secure.proxy.tld', '', 'http://insecure.tld/', 'http://http.proxy.tld'],
  ['http.proxy.tld', 'secure.proxy.tld', '', 'https://secure.tld/', 'http://secure.proxy.tld'],
  ['http.proxy.tld', 'https://secure.proxy.tld', '', 'https://secure.tld/', 'https://secure.proxy.tld'],
  ['http.proxy.tld', '', '', 'https://secure.tld/', null],
  ['', '', '', 'http://example.com', null],
  ['proxy', '', 'example.com', 'http://example.com/', null],
  ['proxy', '', '.example.com', 'http://example.com/', 'http://proxy'],
  ['proxy', '', 'ample.com', 'http://example.com/', 'http://proxy'],
  ['proxy', '', 'example.com', 'http://foo.example.com/', null],
  ['proxy', '', '.foo.com', 'http://example.com/', 'http://proxy'],
  ['proxy', '', '.示例.com', 'http://www.示例.com', null],
  ['proxy', '', 'xn--fsq092h.com', 'http://www.示例.com', null],
  ['proxy', '', '示例.com', 'http://www.xn--fsq092h.com', null],
  ['proxy', '', 'example.com', 'http://[1000::%25.example.com]:123', 'http://proxy'],
];

/** Host and port of a request URL as Go's canonicalAddr sees them (the zone %25 decoded). */
function target(req: string): { scheme: 'https' | 'http'; host: string; port: number } {
  const m = /^(https?):\/\/(\[[^\]]*\]|[^/:]*)(?::(\d+))?/.exec(req);
  assert.ok(m?.[1] && m[2] !== undefined, req);
  const scheme = m[1] as 'https' | 'http';
  return { scheme, host: decodeURIComponent(m[2]), port: m[3] ? Number(m[3]) : scheme === 'https' ? 443 : 80 };
}

for (const [http, https, no, req, want] of PROXY_FOR_URL) {
  test(`proxyFor (Go table): http_proxy=${JSON.stringify(http)} https_proxy=${JSON.stringify(https)} no_proxy=${JSON.stringify(no)} ${req} → ${want}`, () => {
    const env = proxyEnvFrom({ http_proxy: http, https_proxy: https, no_proxy: no }, 'test');
    const t = target(req);
    const got = proxyFor(env, t.scheme, t.host, t.port);
    assert.equal(got === null ? null : proxyDisplay(got), want);
  });
}

const GO_NO_PROXY =
  'foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64';

// [host, goes through the proxy] on port 80 with GO_NO_PROXY
const USE_PROXY: Array<[string, boolean]> = [
  ['localhost', false],
  ['127.0.0.1', false],
  ['127.0.0.2', false],
  ['[::1]', false],
  ['[::2]', true],
  ['192.168.1.1', false],
  ['192.168.1.2', true],
  ['192.168.1.3', false],
  ['192.168.1.4', true],
  ['10.0.0.2', false],
  ['[2001:db8::52:0:1]', false],
  ['[2001:db8::52:0:2]', true],
  ['[2001:db8::52:0:3]', false],
  ['[2002:db8:a::123]', false],
  ['[fe80::424b:c8be:1643:a1b6]', true],
  ['barbaz.net', true],
  ['www.barbaz.net', false],
  ['foobar.com', false],
  ['www.foobar.com', false],
  ['foofoobar.com', true],
  ['baz.com', true],
  ['localhost.net', true],
  ['local.localhost', true],
  ['barbarbaz.net', true],
  ['wildcard.io', true],
  ['nested.wildcard.io', false],
  ['awildcard.io', true],
];

test('NO_PROXY (Go table): names, suffixes, IPs with and without ports, CIDRs; loopback never proxied', () => {
  const no = parseNoProxy(GO_NO_PROXY);
  for (const [host, want] of USE_PROXY) assert.equal(useProxy(no, host, 80), want, host);
});

test('NO_PROXY "*" (Go table): nothing is proxied', () => {
  const no = parseNoProxy('*');
  for (const [host] of USE_PROXY) assert.equal(useProxy(no, host, 80), false, host);
});

test('NO_PROXY ":1" (Go table) is ignored, not an error', () => {
  assert.equal(useProxy(parseNoProxy(':1'), 'example.com', 80), true);
});

test('NO_PROXY: a port in an entry matches that port only; IPv6 without brackets; mapped IPv4; 10.0.0.0/8', () => {
  const no = parseNoProxy(' Registry.Corp.Example:5000 , 10.0.0.0/8,fd00::/8 ');
  assert.equal(useProxy(no, 'registry.corp.example', 5000), false);
  assert.equal(useProxy(no, 'registry.corp.example', 443), true);
  assert.equal(useProxy(no, 'mirror.registry.corp.example', 5000), false);
  assert.equal(useProxy(no, '10.200.3.4', 443), false);
  assert.equal(useProxy(no, '::ffff:10.200.3.4', 443), false);
  assert.equal(useProxy(no, '11.0.0.1', 443), true);
  assert.equal(useProxy(no, 'fd00::5', 443), false);
  assert.equal(useProxy(no, '[fd00::5]', 443), false);
  assert.equal(useProxy(no, 'fe00::5', 443), true);
  assert.equal(useProxy(parseNoProxy(''), '::ffff:127.0.0.1', 443), false);
});

test('proxyEnvFrom: upper case first, lower case when the upper is unset or empty (Go getEnvAny)', () => {
  const upper = proxyEnvFrom(
    { HTTP_PROXY: 'httpproxy', HTTPS_PROXY: 'httpsproxy', NO_PROXY: 'noproxy', http_proxy: 'x', https_proxy: 'y', no_proxy: 'z' },
    'env',
  );
  assert.deepEqual([upper.httpProxy, upper.httpsProxy, upper.noProxy], ['httpproxy', 'httpsproxy', 'noproxy']);
  assert.deepEqual(upper.names, { https: 'HTTPS_PROXY', http: 'HTTP_PROXY', noProxy: 'NO_PROXY' });
  const lower = proxyEnvFrom({ HTTPS_PROXY: '', http_proxy: 'httpproxy', https_proxy: 'httpsproxy', no_proxy: 'noproxy' }, 'env');
  assert.deepEqual([lower.httpProxy, lower.httpsProxy, lower.noProxy], ['httpproxy', 'httpsproxy', 'noproxy']);
  assert.deepEqual(lower.names, { https: 'https_proxy', http: 'http_proxy', noProxy: 'no_proxy' });
  const none = proxyEnvFrom({ PATH: '/bin' }, 'env');
  assert.equal(proxyFor(none, 'https', 'registry.example', 443), null);
});

test('a value Go cannot parse is ignored (direct), and reported; non-http proxies are reported', () => {
  assert.equal(parseProxyUrl('proxy.corp:abc'), null);
  assert.equal(parseProxyUrl('http://us%zzer:pw@proxy:3128'), null);
  const env = proxyEnvFrom({ HTTPS_PROXY: 'http://us%zzer:pw@proxy:3128', HTTP_PROXY: 'socks5://u:secret@10.0.0.9' }, 'containerd (pid 7)');
  assert.equal(proxyFor(env, 'https', 'registry.example', 443), null);
  const problems = proxyProblems(env);
  assert.equal(problems.length, 2);
  assert.match(problems[0] ?? '', /^HTTPS_PROXY from containerd \(pid 7\) .*connects directly/);
  assert.match(problems[1] ?? '', /^HTTP_PROXY from containerd \(pid 7\) is socks5:\/\/10\.0\.0\.9/);
  for (const p of problems) assert.ok(!p.includes('secret') && !p.includes('pw'), p);
});

test('proxyDisplay drops the credentials; proxyAuthorization is Basic of the percent-decoded userinfo; default ports', () => {
  const u = parseProxyUrl('http://bob:p%40ss%3Aw0rd@proxy.corp:3128');
  assert.ok(u);
  assert.equal(proxyDisplay(u), 'http://proxy.corp:3128');
  assert.equal(proxyAuthorization(u), `Basic ${Buffer.from('bob:p@ss:w0rd').toString('base64')}`);
  const plain = parseProxyUrl('proxy.corp');
  assert.ok(plain);
  assert.equal(proxyAuthorization(plain), null);
  assert.equal(proxyPort(plain), 80);
  assert.equal(proxyPort(parseProxyUrl('https://proxy.corp') as URL), 443);
  assert.equal(proxyPort(parseProxyUrl('[::1]:3128') as URL), 3128);
});

test('parseEnviron: NUL-separated, first mention wins (Go), entries without "=" skipped', () => {
  assert.deepEqual(parseEnviron(Buffer.from('A=1\0HTTPS_PROXY=http://p:3128\0A=2\0junk\0=x\0B=a=b\0')), {
    A: '1',
    HTTPS_PROXY: 'http://p:3128',
    B: 'a=b',
  });
});

const children: ChildProcess[] = [];
const dirs: string[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function spawnSleeper(cmd: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(cmd, ['60'], { env, stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  return child;
}

test('readProcessProxyEnv reads a real process environment from /proc', async () => {
  const child = await spawnSleeper('sleep', {
    PATH: '/usr/bin:/bin',
    https_proxy: 'http://bob:hunter22@127.0.0.1:3128',
    HTTP_PROXY: 'proxy.corp:8080',
    no_proxy: '.svc,10.0.0.0/8',
  });
  const pid = child.pid as number;
  const r = readProcessProxyEnv(pid);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.env.from, `containerd (pid ${pid})`);
  assert.equal(r.env.httpsProxy, 'http://bob:hunter22@127.0.0.1:3128');
  assert.equal(r.env.httpProxy, 'proxy.corp:8080');
  assert.equal(r.env.noProxy, '.svc,10.0.0.0/8');
  assert.equal(proxyDisplay(proxyFor(r.env, 'https', 'registry.example', 443) as URL), 'http://127.0.0.1:3128');
  assert.equal(proxyFor(r.env, 'https', 'registry.kube-system.svc', 443), null);
});

test('readProcessProxyEnv: a missing or unreadable environ is a problem string, never a throw', () => {
  const missing = readProcessProxyEnv(999999999);
  assert.ok(!missing.ok);
  assert.match(missing.problem, /pid 999999999.*\/proc\/999999999\/environ: no such process/);
  const denied: ProcFs = {
    readFile: () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    },
    readdir: () => [],
  };
  const r = readProcessProxyEnv(812, '/host/proc', denied);
  assert.ok(!r.ok);
  assert.match(r.problem, /\/host\/proc\/812\/environ: permission denied: the agent needs to run as root with hostPID/);
});

function fakeProc(entries: Record<string, { comm?: string; cmdline?: string }>): string {
  const root = mkdtempSync(join(tmpdir(), 'pullprobe-proc-'));
  dirs.push(root);
  for (const [name, e] of Object.entries(entries)) {
    mkdirSync(join(root, name));
    if (e.comm !== undefined) writeFileSync(join(root, name, 'comm'), e.comm);
    if (e.cmdline !== undefined) writeFileSync(join(root, name, 'cmdline'), e.cmdline);
  }
  return root;
}

/** The real /proc reader, counting directory scans. */
function countingProcFs(): { fs: ProcFs; scans: () => number } {
  let scans = 0;
  return {
    fs: {
      readFile: (p) => realProcFs.readFile(p),
      readdir: (p) => {
        scans++;
        return realProcFs.readdir(p);
      },
    },
    scans: () => scans,
  };
}

test('findContainerdPid: the lowest pid named exactly containerd (comm, else argv[0]); shims and other names are not', () => {
  const root = fakeProc({
    '1': { comm: 'systemd\n' },
    '5': { comm: 'containerd-shim\n', cmdline: '/usr/bin/containerd-shim-runc-v2\0-namespace\0k8s.io\0' },
    '30': { comm: 'containerd\n' },
    '12': { comm: 'containerd\n' },
    '9': { comm: 'bash\n' },
    self: { comm: 'containerd\n' },
    sys: {},
  });
  assert.equal(findContainerdPid(root), 12);
  const byArgv = fakeProc({
    '40': { comm: 'wrapper\n', cmdline: '/usr/local/bin/containerd\0--config\0/etc/c.toml\0' },
    '41': { comm: 'containerd\n' },
  });
  assert.equal(findContainerdPid(byArgv), 40);
  assert.equal(findContainerdPid(fakeProc({ '2': { comm: 'kubelet\n' } })), null);
  assert.equal(findContainerdPid('/nonexistent/proc'), null);
});

test('findContainerdPid checks the pid it found last before scanning again; a restarted containerd is found anew', () => {
  const root = fakeProc({ '3': { comm: 'bash\n' }, '12': { comm: 'containerd\n' } });
  const { fs: counting, scans } = countingProcFs();
  assert.equal(findContainerdPid(root, counting), 12);
  assert.equal(findContainerdPid(root, counting), 12);
  assert.equal(scans(), 1, 'the second call read /proc/12/comm only');
  rmSync(join(root, '12'), { recursive: true });
  mkdirSync(join(root, '40'));
  writeFileSync(join(root, '40', 'comm'), 'containerd\n');
  assert.equal(findContainerdPid(root, counting), 40);
  assert.equal(scans(), 2);
  rmSync(join(root, '40'), { recursive: true });
  assert.equal(findContainerdPid(root, counting), null);
});

test('findContainerdPid finds a real process named containerd in /proc', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-bin-'));
  dirs.push(dir);
  const bin = join(dir, 'containerd');
  copyFileSync('/bin/sleep', bin);
  chmodSync(bin, 0o755);
  const child = await spawnSleeper(bin, { PATH: '/usr/bin:/bin', HTTPS_PROXY: 'http://127.0.0.1:3128' });
  const found = findContainerdPid();
  assert.ok(found !== null && found <= (child.pid as number), String(found));
});

test('loadProxyEnv: runtime mode reads containerd, falls back to this process with a problem; env; none; explicit pid', () => {
  const root = fakeProc({ '7': { comm: 'containerd\n' } });
  writeFileSync(join(root, '7', 'environ'), 'HTTPS_PROXY=http://10.0.0.9:3128\0NO_PROXY=.corp\0');
  const own = { HTTPS_PROXY: 'http://own:3128' };
  const rt = loadProxyEnv('runtime', { procRoot: root, env: own });
  assert.ok(rt.env);
  assert.equal(rt.env.from, 'containerd (pid 7)');
  assert.equal(rt.env.httpsProxy, 'http://10.0.0.9:3128');
  assert.deepEqual(rt.problems, []);

  const noContainerd = loadProxyEnv('runtime', { procRoot: fakeProc({ '3': { comm: 'init\n' } }), env: own });
  assert.ok(noContainerd.env);
  assert.equal(noContainerd.env.from, 'this process');
  assert.equal(noContainerd.env.httpsProxy, 'http://own:3128');
  assert.match(noContainerd.problems[0] ?? '', /no containerd process visible .*hostPID/);

  const unreadable = loadProxyEnv('runtime', { procRoot: fakeProc({ '4': { comm: 'containerd\n' } }), env: own });
  assert.equal(unreadable.env?.from, 'this process');
  assert.match(unreadable.problems[0] ?? '', /containerd \(pid 4\).*no such process; using this process's proxy settings/);

  assert.equal(loadProxyEnv('env', { procRoot: root, env: own }).env?.from, 'this process');
  assert.deepEqual(loadProxyEnv('none', { procRoot: root, env: own }), { env: null, problems: [] });
  const byPid = loadProxyEnv('runtime', { pid: 7, procRoot: root, env: own });
  assert.equal(byPid.env?.from, 'process (pid 7)');
  const badPid = loadProxyEnv('runtime', { pid: 8, procRoot: root, env: own });
  assert.equal(badPid.env, null);
  assert.equal(badPid.problems.length, 1);
});

test('the agent searches /proc again only once a minute while no containerd is visible; then finds one that started', () => {
  const root = fakeProc({ '3': { comm: 'bash\n' }, '7': { comm: 'kubelet\n' } });
  const { fs: counting, scans } = countingProcFs();
  let now = 1_000_000;
  const roads = new RoadCache({ procFs: counting, procRoot: root, env: {}, wallNow: () => now, maxAgeMs: 0 });
  const load = () => roads.load({ proxy: 'runtime', containerdConfig: null, kubeletDockerConfig: false });
  assert.match(load().problems.join('\n'), /no containerd process visible/);
  now += 30_000;
  assert.match(load().problems.join('\n'), /no containerd process visible/);
  assert.equal(scans(), 1, 'the second road, 30 s later, did not search /proc again');
  mkdirSync(join(root, '12'));
  writeFileSync(join(root, '12', 'comm'), 'containerd\n');
  writeFileSync(join(root, '12', 'environ'), 'HTTPS_PROXY=http://proxy.lab.test:3128\0');
  now += 30_000;
  const found = load();
  assert.equal(scans(), 2, 'a minute after the search that found nothing');
  assert.doesNotMatch(found.problems.join('\n'), /no containerd process visible/);
  assert.equal(found.proxy?.httpsProxy, 'http://proxy.lab.test:3128');
  load();
  assert.equal(scans(), 2, 'a containerd found is checked by its pid, not searched for');
});
