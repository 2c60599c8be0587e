/**
 * The CLI in-process with injected stdout/stderr/TTY/env: exit codes 0/1/2,
 * nothing on stdout for usage and config errors, colour only on a TTY and
 * never with NO_COLOR, explain's JSON contract. Probes go to a loopback
 * registry on an IP-literal host.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, packageVersion } from '../../src/cli.js';
import type { Io } from '../../src/commands/io.js';
import type { Explanation } from '../../src/diagnosis/explain.js';
import { createCA, type TestCA } from '../support/certs.js';
import { FakeRegistry, DOCKER_MANIFEST } from '../support/fake-registry.js';
import { prepareCli } from '../support/run-cli.js';

/** `explain --json` output, typed for reading; the assertions check its values. */
const explained = (out: string): Explanation => JSON.parse(out) as Explanation;

let ca: TestCA;
let dir: string;
let reg: FakeRegistry;

before(async () => {
  ca = createCA();
  const leaf = ca.issue('registry', { sans: ['127.0.0.1'] });
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-cli-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  reg = await FakeRegistry.start({ tls: { cert: leaf.cert, key: leaf.key } });
  reg.putManifest(
    'team/app',
    { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { digest: `sha256:${'d'.repeat(64)}` }, layers: [] },
    DOCKER_MANIFEST,
    'v1',
  );
});
after(async () => {
  await reg.close();
  ca.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function run(
  argv: string[],
  opts: { tty?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    isTTY: opts.tty ?? false,
    env: opts.env ?? {},
  };
  const code = await main(argv, io);
  return { code, out, err };
}

const common = (): string[] => [
  '--resolv-conf',
  join(dir, 'resolv.conf'),
  '--hosts',
  '/dev/null',
  '--ca-file',
  join(dir, 'ca.crt'),
  '--containerd-config-path',
  '',
  '--timeout',
  '3s',
];
const ESC = '\u001b[';

test('probe: exit 0 when every target is ok, 1 when one fails; JSON keeps input order', async () => {
  const good = `127.0.0.1:${reg.port}/team/app:v1`;
  const bad = `127.0.0.1:${reg.port}/team/app:nope`;
  const ok = await run(['probe', '--json', ...common(), good]);
  assert.equal(ok.code, 0, ok.err);
  const both = await run(['probe', '--json', ...common(), bad, good]);
  assert.equal(both.code, 1);
  const results = JSON.parse(both.out) as Array<{ target: string; reason: string | null }>;
  assert.deepEqual(
    results.map((r) => [r.target, r.reason]),
    [
      [bad, 'manifest_unknown'],
      [good, null],
    ],
  );
});

test('usage and configuration errors: exit 2, message names the problem, nothing on stdout', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['probe'], /no TARGET/],
    [['probe', '--timeout', 'soon', 'x.io'], /--timeout/],
    [['probe', '--platform', 'linux', 'x.io'], /--platform/],
    [['probe', '--frobnicate', 'x.io'], /frobnicate/],
    [['probe', '--ca-file', join(dir, 'missing.pem'), 'x.io'], /missing\.pem/],
    [['probe', '--resolv-conf', join(dir, 'nope.conf'), 'x.io'], /nope\.conf/],
    [['probe', '--docker-config', join(dir, 'resolv.conf'), 'x.io'], /resolv\.conf/],
    [['explain'], /no MESSAGE/],
    [['frob'], /unknown command "frob"/],
    [['agent'], /--config/],
  ];
  for (const [argv, re] of cases) {
    const r = await run(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.equal(r.out, '', argv.join(' '));
    assert.match(r.err, re, argv.join(' '));
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  }
});

test('human output: ✓/✗ per stage with the fix; colour only on a TTY and never with NO_COLOR', async () => {
  const bad = `127.0.0.1:${reg.port}/team/app:nope`;
  const plain = await run(['probe', ...common(), bad]);
  assert.match(plain.out, /✓ dns/);
  assert.match(plain.out, /✗ manifest/);
  assert.match(plain.out, /Reason: manifest\/manifest_unknown/);
  assert.match(plain.out, /Fix: +The tag does not exist/);
  assert.ok(!plain.out.includes(ESC), 'no colour when not a TTY');
  const tty = await run(['probe', ...common(), bad], { tty: true });
  assert.ok(tty.out.includes(ESC), 'colour on a TTY');
  const noColor = await run(['probe', ...common(), bad], { tty: true, env: { NO_COLOR: '1' } });
  assert.ok(!noColor.out.includes(ESC), 'NO_COLOR honoured');
});

test('explain --json: one object with the contract keys; unknown text gives reason null and exit 1', async () => {
  const r = await run(['explain', '--json', 'dial tcp 10.0.0.5:443: connect: connection refused']);
  assert.equal(r.code, 0);
  assert.deepEqual(Object.keys(explained(r.out)), ['stage', 'reason', 'cause', 'message', 'hint']);
  assert.equal(explained(r.out).reason, 'tcp_refused');
  const none = await run(['explain', '--json', 'the cat sat on the mat']);
  assert.equal(none.code, 1);
  assert.equal(explained(none.out).reason, null);
});

test('the compiled CLI runs through a symlink, as npm installs `bin` (compiled like dist/ by the test itself)', () => {
  const cli = prepareCli().at(-1) ?? assert.fail('prepareCli gave no entry');
  const link = join(dir, 'pullprobe');
  symlinkSync(cli, link);
  const r = spawnSync(process.execPath, [link, 'explain', '--json', 'dial tcp 10.0.0.5:443: connect: connection refused'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(explained(r.stdout).reason, 'tcp_refused');
});

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

test("version: `pullprobe version` and `--version` print package.json's version on stdout, exit 0", async () => {
  for (const argv of [['version'], ['--version']]) {
    const r = await run(argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.equal(r.out, `${PACKAGE_VERSION}\n`);
    assert.equal(r.err, '');
  }
  assert.equal(
    packageVersion(() => '{"version":"9.8.7"}'),
    '9.8.7',
  );
});

test("COMMAND --help: that command's help on stdout, exit 0, nothing on stderr", async () => {
  const expect: Array<[string, RegExp[]]> = [
    ['probe', [/pullprobe probe \[flags\] TARGET/, /--host-root DIR/, /--resolv-conf FILE/, /--timeout DURATION/]],
    ['explain', [/pullprobe explain \[--json\]/, /--json/]],
    ['agent', [/pullprobe agent --config FILE/, /SIGHUP/]],
    ['report', [/pullprobe report \[--json\]/, /--heartbeat/]],
  ];
  for (const [command, res] of expect) {
    for (const flag of ['--help', '-h']) {
      const r = await run([command, flag]);
      assert.equal(r.code, 0, `${command} ${flag}: ${r.err}`);
      assert.equal(r.err, '');
      for (const re of res) assert.match(r.out, re, `${command} ${flag}`);
      for (const [, [usage]] of expect.filter(([c]) => c !== command)) {
        assert.ok(usage);
        assert.doesNotMatch(r.out, usage, `${command} help is its own`);
      }
    }
    const viaHelp = await run(['help', command]);
    assert.equal(viaHelp.code, 0);
    assert.equal(viaHelp.out, (await run([command, '--help'])).out);
  }
  // --help wins over other flags and arguments, even ones that would be usage errors.
  const mixed = await run(['probe', '--frobnicate', '--help']);
  assert.equal(mixed.code, 0);
  assert.match(mixed.out, /--host-root/);
  // After `--` it is an argument, not a request for help.
  const quoted = await run(['explain', '--json', '--', '--help']);
  assert.equal(quoted.code, 1);
  assert.equal(explained(quoted.out).reason, null);
});

test('pullprobe alone: usage on stderr, exit 2; --help: usage on stdout, exit 0; unknown command: stderr, exit 2', async () => {
  const bare = await run([]);
  assert.equal(bare.code, 2);
  assert.equal(bare.out, '');
  assert.match(bare.err, /Usage:/);
  assert.match(bare.err, /pullprobe probe/);
  for (const argv of [['--help'], ['-h'], ['help']]) {
    const r = await run(argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.equal(r.err, '');
    assert.match(r.out, /Usage:/);
  }
  const unknown = await run(['frob', '--help']);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.out, '');
  assert.match(unknown.err, /unknown command "frob"/);
  const unknownTopic = await run(['help', 'frob']);
  assert.equal(unknownTopic.code, 2);
  assert.equal(unknownTopic.out, '');
});

test("a usage error that asks for usage prints that command's help (on stderr), not the whole usage", async () => {
  const r = await run(['probe']);
  assert.equal(r.code, 2);
  assert.match(r.err, /no TARGET/);
  assert.match(r.err, /pullprobe probe \[flags\] TARGET/);
  assert.doesNotMatch(r.err, /pullprobe report \[--json\]/);
});

test('help, version and explain do not load the network stack; probe does', () => {
  const preload = join(dir, 'report-builtins.cjs');
  writeFileSync(
    preload,
    "process.on('exit', () => { require('fs').writeSync(2, '\\nBUILTINS ' + JSON.stringify(process.moduleLoadList) + '\\n'); });\n",
  );
  const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
  // tsx itself loads net and dgram; tls, http and dns are ours (undici, the stages).
  const network = ['NativeModule tls', 'NativeModule http', 'NativeModule dns'];
  const loaded = (argv: string[]): string[] => {
    const r = spawnSync(process.execPath, ['--require', preload, '--import', 'tsx', cli, ...argv], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const line = r.stderr.split('\n').find((l) => l.startsWith('BUILTINS '));
    assert.ok(line, r.stderr);
    return (JSON.parse(line.slice('BUILTINS '.length)) as string[]).filter((m) => network.includes(m));
  };
  assert.deepEqual(loaded(['probe', '--help']), []);
  assert.deepEqual(loaded(['--version']), []);
  assert.deepEqual(loaded(['explain', '--json', 'dial tcp 10.0.0.5:443: connect: connection refused']), []);
  assert.notDeepEqual(loaded(['probe', '--frobnicate', 'x.io']), [], 'probe itself does load it (the check can fail)');
});
