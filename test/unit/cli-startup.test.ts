/**
 * CLI start-up (issue 10): `--help`, `--version`, `COMMAND --help` and
 * `explain` never load the network stack. The CLI runs compiled (as dist/)
 * in a child process with a preload that records every module it loads: the
 * ES modules through a module.register() load hook, the CommonJS ones
 * (undici, dns-packet, pino, prom-client) from require.cache, Node's own
 * (tls, dgram, http) from process.moduleLoadList. A probe run is the
 * control: there the same recorder sees the network stack.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileCacheDir, startCompileCache } from '../../src/cli.js';
import { prepareCli } from '../support/run-cli.js';

let dir: string;
let cli: string[];

const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (process.env.PULLPROBE_TEST_MODULES) appendFileSync(process.env.PULLPROBE_TEST_MODULES + '.esm', url + '\\n');
  return next(url, context);
}
`;
const PRELOAD = `
import { register, createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
register(new URL('./hooks.mjs', import.meta.url));
const file = process.env.PULLPROBE_TEST_MODULES;
const require = createRequire(import.meta.url);
process.on('exit', () => {
  if (file) writeFileSync(file, JSON.stringify({ cjs: Object.keys(require.cache), builtins: process.moduleLoadList }));
});
`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-startup-'));
  writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
  writeFileSync(join(dir, 'record.mjs'), PRELOAD);
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n');
  cli = prepareCli();
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Loaded {
  status: number | null;
  stdout: string;
  /** Module URLs (ESM), file paths (CommonJS) and Node module names loaded by the run. */
  esm: string[];
  cjs: string[];
  builtins: string[];
}

let runs = 0;
function loadedBy(args: string[]): Loaded {
  const file = join(dir, `run-${runs++}.json`);
  const r = spawnSync(process.execPath, ['--import', join(dir, 'record.mjs'), ...cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', PULLPROBE_TEST_MODULES: file },
  });
  const rec = JSON.parse(readFileSync(file, 'utf8')) as { cjs: string[]; builtins: string[] };
  return { status: r.status, stdout: r.stdout, esm: readFileSync(`${file}.esm`, 'utf8').split('\n').filter(Boolean), ...rec };
}

/** What of the network stack a run loaded (empty: none). */
function networkStack(l: Loaded): string[] {
  return [
    ...l.esm.filter((u) => /\/src\/(net|probe|agent|kube)\//.test(u) || /node_modules\/(undici|dns-packet|pino|prom-client)\//.test(u)),
    ...l.cjs.filter((p) => /node_modules\/(undici|dns-packet|pino|prom-client)\//.test(p)),
    ...l.builtins.filter((b) => /^NativeModule (tls|_tls_wrap|dgram|http|https|http2|dns)$/.test(b)),
  ];
}

test('--help, --version, COMMAND --help and explain load no part of the network stack', () => {
  const cases: string[][] = [
    ['--help'],
    ['--version'],
    ['probe', '--help'],
    ['agent', '--help'],
    ['explain', 'dial tcp 10.0.0.5:443: connect: connection refused'],
    ['explain', '--json', 'x509: certificate signed by unknown authority'],
  ];
  for (const args of cases) {
    const l = loadedBy(args);
    assert.ok(l.status === 0 || l.status === 1, `${args.join(' ')}: exit ${String(l.status)}`);
    assert.ok(
      l.esm.some((u) => u.endsWith('/src/cli.js')),
      'the recorder sees the CLI itself',
    );
    assert.deepEqual(networkStack(l), [], `${args.join(' ')} loaded the network stack`);
  }
});

test('the control: a probe loads tls, the probe code and undici, but not dns-packet when no DNS query is sent', async () => {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const l = loadedBy(['probe', '--timeout', '2s', '--hosts', join(dir, 'hosts'), `127.0.0.1:${String(port)}/x:y`]);
    assert.equal(l.status, 1, l.stdout);
    const stack = networkStack(l);
    assert.ok(stack.includes('NativeModule tls'), stack.join('\n'));
    assert.ok(
      stack.some((p) => p.includes('/src/probe/')),
      'probe code',
    );
    assert.ok(
      l.cjs.some((p) => p.includes('node_modules/undici/')),
      'undici',
    );
    assert.ok(!l.cjs.some((p) => p.includes('node_modules/dns-packet/')), 'an IP literal sends no DNS query: dns-packet stays unloaded');
    assert.ok(!l.cjs.some((p) => p.includes('node_modules/pino/')), 'the CLI does not log through pino');
  } finally {
    server.close();
  }
});

test("undici-parts: undici's Agent and request() without undici's index.js (fetch, WebSocket, caches, mocks stay unloaded)", () => {
  const parts = new URL('../../src/net/undici-parts.ts', import.meta.url).pathname;
  const probe = [
    `const m = await import(${JSON.stringify(parts)});`,
    "const { createRequire } = await import('node:module');",
    'const cache = createRequire(import.meta.url).cache;',
    "const http = await import('node:http');",
    "const s = http.createServer((q, r) => r.end('hi ' + q.url));",
    "await new Promise((r) => s.listen(0, '127.0.0.1', r));",
    'const agent = new m.Agent();',
    "const res = await m.request('http://127.0.0.1:' + s.address().port + '/v2/x?n=1', { dispatcher: agent, method: 'GET' });",
    'const body = await res.body.text();',
    'await agent.close(); s.close();',
    'const undici = Object.keys(cache).filter((p) => p.includes("node_modules/undici/"));',
    'console.log(JSON.stringify({ status: res.statusCode, body, index: undici.some((p) => p.endsWith("undici/index.js")), fetch: undici.some((p) => p.includes("/web/")), count: undici.length }));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { status: number; body: string; index: boolean; fetch: boolean; count: number };
  assert.deepEqual(
    { status: out.status, body: out.body, index: out.index, fetch: out.fetch },
    {
      status: 200,
      body: 'hi /v2/x?n=1',
      index: false,
      fetch: false,
    },
  );
  assert.ok(out.count > 0, 'undici itself was loaded');
});

test("one-shot runs keep V8's compiled code in the user's own cache directory, never a shared one", () => {
  assert.equal(compileCacheDir({ XDG_CACHE_HOME: '/home/u/.xdg' }, '/home/u'), '/home/u/.xdg/pullprobe');
  // XDG: a relative XDG_CACHE_HOME is invalid and ignored.
  assert.equal(compileCacheDir({ XDG_CACHE_HOME: 'rel/cache' }, '/root'), '/root/.cache/pullprobe');
  assert.equal(compileCacheDir({}, '/root'), '/root/.cache/pullprobe');
  assert.equal(compileCacheDir({}, ''), undefined);
});

test('the compile cache is only an optimisation: no API, no home, an unusable directory or a failing API never stop a run', () => {
  const calls: (string | undefined)[] = [];
  const api = { enableCompileCache: (d?: string) => calls.push(d) };
  const xdg = join(dir, 'xdg');
  startCompileCache(api, { XDG_CACHE_HOME: xdg }, () => '/root');
  assert.deepEqual(calls, [join(xdg, 'pullprobe')]);
  assert.ok(statSync(join(xdg, 'pullprobe')).isDirectory(), 'the directory is made for Node');
  startCompileCache(api, { XDG_CACHE_HOME: xdg }, () => '/root');
  assert.equal(calls.length, 2, 'an existing directory is used again');
  // Node 20 has no enableCompileCache.
  assert.doesNotThrow(() => startCompileCache({}, {}, () => '/root'));
  // os.homedir() throws when neither HOME nor the passwd entry gives one.
  startCompileCache(api, {}, () => {
    throw new Error('ENOENT: no such file or directory, uv_os_homedir');
  });
  startCompileCache(api, {}, () => '');
  // The user's own settings: off, or a directory Node already uses.
  startCompileCache(api, { NODE_DISABLE_COMPILE_CACHE: '1', XDG_CACHE_HOME: join(dir, 'off') }, () => '/root');
  startCompileCache(api, { NODE_COMPILE_CACHE: join(dir, 'theirs'), XDG_CACHE_HOME: join(dir, 'off') }, () => '/root');
  assert.throws(() => statSync(join(dir, 'off')), /ENOENT/, 'no directory made when the user set the cache themselves');
  // Parents are not made: a cache is not worth a tree of directories.
  startCompileCache(api, { XDG_CACHE_HOME: join(dir, 'no', 'such', 'parent') }, () => '/root');
  // mkdir answers ENOENT under an existing parent in /proc: Node's own
  // recursive mkdir loops for ever there, so this call would never return.
  startCompileCache(api, { XDG_CACHE_HOME: '/proc/pullprobe-test-nope' }, () => '/root');
  // A file where the directory should be.
  writeFileSync(join(dir, 'file'), '');
  startCompileCache(api, { XDG_CACHE_HOME: join(dir, 'file') }, () => '/root');
  assert.equal(calls.length, 2, 'no usable directory, no cache');
  assert.doesNotThrow(() =>
    startCompileCache(
      {
        enableCompileCache: () => {
          throw new Error('EACCES');
        },
      },
      { XDG_CACHE_HOME: xdg },
      () => '/root',
    ),
  );
});

test("the bundle: pure ASCII, and Node's built-ins loaded with require(), so their lazy getters (WebCrypto, BlockList, Node's own undici) never run; no http2 unless h2 is negotiated", async () => {
  const out = join(dir, 'bundle');
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('../../scripts/build.mjs', import.meta.url)), out], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
  });
  assert.equal(build.status, 0, build.stderr);
  // The only ES import of a built-in is the banner's createRequire.
  for (const file of readdirSync(out).filter((f) => f.endsWith('.js'))) {
    const text = readFileSync(join(out, file), 'utf8');
    // V8 keeps a source with any character beyond Latin-1 at two bytes per character.
    assert.doesNotMatch(text, /[^\t\n\r\x20-\x7e]/, `${file} is pure ASCII`);
    const imports = [...text.matchAll(/^\s*(?:import\b[^'"]*?from\s*|import\s*\(\s*|import\s+)["'](node:[^"']+)["']/gm)].map((m) => m[1]);
    assert.deepEqual(
      imports.filter((m) => m !== 'node:module'),
      [],
      `${file} imports a built-in as an ES module`,
    );
  }
  // A probe run: the modules a namespace would have pulled in stay unloaded.
  writeFileSync(
    join(dir, 'builtins.mjs'),
    [
      "import { createRequire } from 'node:module';",
      'const require = createRequire(import.meta.url);',
      "process.on('exit', () => require('node:fs').writeFileSync(process.env.PULLPROBE_TEST_BUILTINS, JSON.stringify(process.moduleLoadList)));",
      '',
    ].join('\n'),
  );
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const file = join(dir, 'builtins.json');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        join(dir, 'builtins.mjs'),
        join(out, 'cli.js'),
        'probe',
        '--timeout',
        '2s',
        '--hosts',
        join(dir, 'hosts'),
        `127.0.0.1:${String(port)}/x:y`,
      ],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', PULLPROBE_TEST_BUILTINS: file } },
    );
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const loaded = JSON.parse(readFileSync(file, 'utf8')) as string[];
    assert.ok(loaded.includes('NativeModule tls'), 'the control: the probe ran its TLS stage');
    assert.deepEqual(
      loaded.filter((m) => /^NativeModule internal\/(crypto\/webcrypto|blocklist|socketaddress|deps\/undici\/undici)$/.test(m)),
      [],
    );
    // undici (imported by the probe whatever its stages reach) loads its HTTP/2 client, and Node's
    // http2 with it, only for a connection that negotiates h2 (scripts/build.mjs, lazyUndiciH2).
    assert.deepEqual(
      loaded.filter((m) => /^NativeModule (http2|internal\/http2\/core)$/.test(m)),
      [],
    );
  } finally {
    server.close();
  }
});
