/**
 * `pullprobe explain` as a command: text from the arguments, from stdin with
 * `-`, or from a pipe/file with no argument; a terminal (or an inherited
 * stdin nobody writes to) with no argument is a usage error; input capped at
 * 1 MiB; the Error line shows the user's own text, escaped; --json keeps its
 * five keys. In-process through `main` with an injected stdin, plus the real
 * process behind a shell pipe and a file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli.js';
import { MAX_INPUT_BYTES, type ExplainIo, type StdinKind, type StdinSource, type StdinText } from '../../src/commands/explain-command.js';
import { REASONS } from '../../src/diagnosis/catalog.js';
import { KUBELET_ONLY_HINT, type Explanation } from '../../src/diagnosis/explain.js';
import { REF, lab } from '../fixtures/explain/cases.js';

/** `explain --json` output, typed for reading; the assertions check its values. */
const explained = (out: string): Explanation => JSON.parse(out) as Explanation;

const FIXTURES = fileURLToPath(new URL('../fixtures/explain/', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const NXDOMAIN = lab('dial tcp: lookup registry.lab.test on 10.0.0.2:53: no such host');

class FakeStdin implements StdinSource {
  reads: number[] = [];
  constructor(
    private readonly k: StdinKind,
    private readonly text: string | Error = '',
  ) {}
  kind(): StdinKind {
    return this.k;
  }
  read(maxBytes: number): Promise<StdinText> {
    this.reads.push(maxBytes);
    if (this.text instanceof Error) return Promise.reject(this.text);
    return Promise.resolve(
      this.text.length > maxBytes ? { text: this.text.slice(0, maxBytes), truncated: true } : { text: this.text, truncated: false },
    );
  }
}

async function run(argv: string[], stdin: StdinSource = new FakeStdin('other')): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: ExplainIo = {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    isTTY: false,
    env: {},
    stdinSource: stdin,
  };
  const code = await main(['explain', ...argv], io);
  return { code, out, err };
}

test('explain -: reads stdin (any kind), classifies it; --json has the contract keys', async () => {
  for (const kind of ['pipe', 'file', 'other', 'tty'] as const) {
    const stdin = new FakeStdin(kind, NXDOMAIN);
    const r = await run(['--json', '-'], stdin);
    assert.equal(r.code, 0, `${kind}: ${r.err}`);
    assert.deepEqual(stdin.reads, [MAX_INPUT_BYTES]);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    assert.deepEqual(Object.keys(j), ['stage', 'reason', 'cause', 'message', 'hint']);
    assert.deepEqual([j['stage'], j['reason'], j['cause'], j['hint']], ['dns', 'dns_nxdomain', 'network', REASONS.dns_nxdomain.hint]);
    assert.equal(j['message'], NXDOMAIN, "message is the user's matched line");
  }
});

test('no argument: a pipe or a file is read; a terminal or anything else is a usage error (exit 2, nothing on stdout, stdin untouched)', async () => {
  for (const kind of ['pipe', 'file'] as const) {
    const r = await run([], new FakeStdin(kind, NXDOMAIN));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Reason: dns\/dns_nxdomain/);
  }
  for (const kind of ['tty', 'other'] as const) {
    const stdin = new FakeStdin(kind, NXDOMAIN);
    const r = await run([], stdin);
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.match(r.err, /no MESSAGE given/);
    assert.match(r.err, /Usage:/, 'usage shown');
    assert.deepEqual(stdin.reads, [], 'stdin not read');
  }
});

test('empty stdin, unreadable stdin, MESSAGE plus -: exit 2 with a clear message, no stack trace', async () => {
  const cases: Array<[string[], StdinSource, RegExp]> = [
    [['-'], new FakeStdin('pipe', '  \n\n'), /stdin is empty/],
    [[], new FakeStdin('file', ''), /stdin is empty/],
    [
      ['-'],
      new FakeStdin('other', Object.assign(new Error('EISDIR: illegal operation on a directory, read'), { code: 'EISDIR' })),
      /cannot read stdin: EISDIR/,
    ],
    [['oops', '-'], new FakeStdin('pipe', NXDOMAIN), /not both/],
    [['  '], new FakeStdin('other'), /MESSAGE is empty/],
  ];
  for (const [argv, stdin, re] of cases) {
    const r = await run(argv, stdin);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.equal(r.out, '');
    assert.match(r.err, re);
    assert.doesNotMatch(r.err, /\n\s+at /);
  }
});

test('input over 1 MiB: only the first 1 MiB is read, and stderr says so', async () => {
  const big = `${NXDOMAIN}\n${'x'.repeat(2 * MAX_INPUT_BYTES)}`;
  const viaStdin = await run(['--json', '-'], new FakeStdin('pipe', big));
  assert.equal(viaStdin.code, 0);
  assert.match(viaStdin.err, /longer than 1 MiB/);
  assert.equal(explained(viaStdin.out).reason, 'dns_nxdomain', 'stdout stays one JSON object');
  const viaArg = await run([big]);
  assert.equal(viaArg.code, 0);
  assert.match(viaArg.err, /longer than 1 MiB/);
});

test("human output: the Error line is the user's own line (not only the catalog message), control characters escaped", async () => {
  const r = await run([NXDOMAIN]);
  assert.equal(r.code, 0);
  assert.ok(r.out.includes(`Error:  ${NXDOMAIN}\n`), r.out);
  const hostile = await run([`dial tcp 10.0.0.10:443: connect: connection refused \u001b]0;pwned\u0007\u001b[2J`]);
  assert.equal(hostile.code, 0);
  assert.ok(!/(?!\n)\p{Cc}/u.test(hostile.out), 'no raw control characters (other than newline) reach the terminal');
  assert.match(hostile.out, /Error: {2}dial tcp 10\.0\.0\.10:443: connect: connection refused \\u001b\]0;pwned\\u0007\\u001b\[2J\n/);
});

test('human output of a describe paste shows the event message, not the table columns', async () => {
  const r = await run(['-'], new FakeStdin('pipe', readFileSync(join(FIXTURES, 'describe-pod-not-found.txt'), 'utf8')));
  assert.equal(r.code, 0);
  assert.match(r.out, /^Reason: manifest\/manifest_unknown\n/);
  assert.match(r.out, /\nError: {2}Failed to pull image "registry\.lab\.test\/team\/app:v1": rpc error: code = NotFound/);
});

test('kubelet back-off alone: exit 1, says it is only the kubelet, points to the earlier event', async () => {
  const text = `Back-off pulling image "${REF}"`;
  const human = await run([text]);
  assert.equal(human.code, 1);
  assert.ok(human.out.includes(`Error:  ${text}\n`));
  assert.ok(human.out.includes(`Fix:    ${KUBELET_ONLY_HINT}\n`));
  const json = await run(['--json', text]);
  assert.equal(json.code, 1);
  assert.deepEqual(JSON.parse(json.out), { stage: null, reason: null, cause: null, message: text, hint: KUBELET_ONLY_HINT });
});

// --- the real process: stdin through a shell pipe (a FIFO) and from a file

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-explain-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('real process: `kubectl get events -o json | pullprobe explain --json` (a pipe, no argument)', () => {
  const events = join(FIXTURES, 'events-not-found.json');
  const r = spawnSync('sh', ['-c', `cat "$1" | "$2" --import tsx "$3" explain --json`, 'sh', events, process.execPath, CLI], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(explained(r.stdout).reason, 'manifest_unknown');
});

test('real process: a 3 MiB file on stdin is read up to 1 MiB, with a note on stderr', () => {
  const file = join(dir, 'big.txt');
  writeFileSync(file, `${NXDOMAIN}\n${'y'.repeat(3 * MAX_INPUT_BYTES)}\n`);
  const fd = openSync(file, 'r');
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'explain', '--json'], {
      stdio: [fd, 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /longer than 1 MiB/);
    assert.equal(explained(r.stdout).reason, 'dns_nxdomain');
  } finally {
    closeSync(fd);
  }
});

test('DNS hints name "the node\'s resolv.conf", not a fixed /etc/resolv.conf (the node may use another file)', async () => {
  for (const reason of ['dns_nxdomain', 'dns_refused', 'dns_unreachable'] as const) {
    assert.doesNotMatch(REASONS[reason].hint, /\/etc\/resolv\.conf/, reason);
    assert.match(REASONS[reason].hint, /the node's resolv\.conf/, reason);
  }
  const r = await run(['explain', '--json', 'dial tcp: lookup registry.example.com on 10.96.0.10:53: no such host']);
  assert.equal(explained(r.out).reason, 'dns_nxdomain');
  assert.match(explained(r.out).hint ?? '', /the node's resolv\.conf/);
});

test('no user-facing text says "seed": reason messages, hints and CLI help', async () => {
  for (const [reason, info] of Object.entries(REASONS)) assert.doesNotMatch(`${info.message} ${info.hint}`, /\bseed/i, reason);
  for (const argv of [['--help'], ['probe', '--help'], ['explain', '--help'], ['agent', '--help'], ['report', '--help']]) {
    assert.doesNotMatch((await run(argv)).out, /\bseed/i, argv.join(' '));
  }
});
