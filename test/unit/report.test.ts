/**
 * `pullprobe report`: the pure row builder on NodeList fixtures (verdicts,
 * staleness with an injected clock, unknown/broken annotations, the
 * most-common reason and its tie-break), then the CLI in-process through
 * `main` with injected stdin, a fake kubectl script, and a missing kubectl.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli.js';
import { buildReport, compareSubnets, mostCommonPair, type ReportRow } from '../../src/report/rows.js';
import type { ReportIo } from '../../src/commands/report-command.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/report/', import.meta.url));
const fixtureText = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const fixture = (name: string): unknown => JSON.parse(fixtureText(name));

/** Fixtures write `at` = 12:00:00Z; five minutes later everything is fresh at a 10m heartbeat. */
const NOW = Date.parse('2025-06-01T12:05:00Z');
const HB = 10 * 60_000;

const brief = (rows: ReportRow[]): Array<[string, string, string, number, number]> =>
  rows.map((r) => [r.registry, r.subnet, r.verdict, r.nodes, r.failing]);

test('ok cluster: one ok row per subnet × registry, sorted by registry then subnet', () => {
  const r = buildReport(fixture('ok-cluster.json'), NOW, HB);
  assert.deepEqual(brief(r.rows), [
    ['docker.io', '10.0.1.0/24', 'ok', 2, 0],
    ['docker.io', '10.0.2.0/24', 'ok', 2, 0],
    ['registry.lab.test', '10.0.1.0/24', 'ok', 2, 0],
    ['registry.lab.test', '10.0.2.0/24', 'ok', 2, 0],
  ]);
  for (const row of r.rows) {
    assert.equal(row.stage, null);
    assert.equal(row.reason, null);
    assert.deepEqual(row.failingNodes, []);
  }
  assert.deepEqual([r.unknown, r.stale, r.errors], [[], [], []]);
});

test('one subnet all failing → subnet-wide with its stage and reason; subnets sort numerically', () => {
  const r = buildReport(fixture('subnet-wide.json'), NOW, HB);
  const lab = r.rows.filter((x) => x.registry === 'registry.lab.test');
  assert.deepEqual(
    lab.map((x) => [x.subnet, x.verdict]),
    [
      ['10.0.1.0/24', 'ok'],
      ['10.0.2.0/24', 'subnet-wide'],
      ['10.0.10.0/24', 'ok'],
    ],
  );
  const bad = lab[1];
  assert.ok(bad);
  assert.deepEqual(bad, {
    subnet: '10.0.2.0/24',
    registry: 'registry.lab.test',
    nodes: 2,
    failing: 2,
    verdict: 'subnet-wide',
    stage: 'tcp',
    reason: 'tcp_refused',
    failingNodes: ['node-b1', 'node-b2'],
  });
  assert.ok(r.rows.filter((x) => x.registry === 'docker.io').every((x) => x.verdict === 'ok'));
});

test('some nodes of a subnet failing → isolated, naming the failing nodes', () => {
  const r = buildReport(fixture('isolated.json'), NOW, HB);
  assert.deepEqual(brief(r.rows), [
    ['registry.lab.test', '10.0.1.0/24', 'isolated', 3, 1],
    ['registry.lab.test', '10.0.2.0/24', 'ok', 1, 0],
  ]);
  const row = r.rows[0];
  assert.deepEqual([row?.stage, row?.reason, row?.failingNodes], ['tls', 'tls_unknown_ca', ['node-a3']]);
});

test('every node of every subnet failing → cluster-wide (other registries unaffected)', () => {
  const r = buildReport(fixture('cluster-wide.json'), NOW, HB);
  assert.deepEqual(brief(r.rows), [
    ['docker.io', '10.0.1.0/24', 'ok', 2, 0],
    ['docker.io', '10.0.2.0/24', 'ok', 1, 0],
    ['registry.lab.test', '10.0.1.0/24', 'cluster-wide', 2, 2],
    ['registry.lab.test', '10.0.2.0/24', 'cluster-wide', 1, 1],
  ]);
  const row = r.rows[2];
  assert.ok(row, 'a third row');
  assert.equal(row.reason, 'dns_nxdomain');
  assert.deepEqual(row.failingNodes, ['node-a1', 'node-a2']);
});

test('a single Node (not a List) is accepted', () => {
  const r = buildReport(fixture('single-node.json'), NOW, HB);
  assert.deepEqual(brief(r.rows), [['registry.lab.test', '10.0.9.0/24', 'cluster-wide', 1, 1]]);
});

test('stale annotations: left out of live rows; a row with only stale nodes is stale', () => {
  const r = buildReport(fixture('stale.json'), NOW, HB);
  assert.deepEqual(r.stale, ['node-a2', 'node-c1', 'node-c2']);
  assert.deepEqual(r.rows, [
    {
      subnet: '10.0.1.0/24',
      registry: 'registry.lab.test',
      nodes: 1,
      failing: 0,
      verdict: 'ok',
      stage: null,
      reason: null,
      failingNodes: [],
    },
    {
      subnet: '10.0.3.0/24',
      registry: 'registry.lab.test',
      nodes: 2,
      failing: 0,
      verdict: 'stale',
      stage: null,
      reason: null,
      failingNodes: [],
    },
  ]);
  // The same annotations with a 30m heartbeat (stale after 90m) are all live.
  const fresh = buildReport(fixture('stale.json'), NOW, 30 * 60_000);
  assert.deepEqual(fresh.stale, []);
  assert.deepEqual(brief(fresh.rows), [
    ['registry.lab.test', '10.0.1.0/24', 'isolated', 2, 1],
    ['registry.lab.test', '10.0.3.0/24', 'isolated', 2, 1],
  ]);
  // Exactly 3 × heartbeat old is not yet stale; one ms more is.
  const at = Date.parse('2025-06-01T12:00:00Z');
  assert.deepEqual(buildReport(fixture('ok-cluster.json'), at + 3 * HB, HB).stale, []);
  assert.equal(buildReport(fixture('ok-cluster.json'), at + 3 * HB + 1, HB).stale.length, 4);
});

test('missing and broken annotations → unknown, with an error naming each broken node; no throw', () => {
  const r = buildReport(fixture('broken.json'), NOW, HB);
  assert.deepEqual(r.unknown, ['(item 8)', 'node-array', 'node-bare', 'node-future-version', 'node-garbled', 'node-no-at', 'node-none']);
  for (const name of ['node-garbled', 'node-future-version', 'node-no-at', 'node-array', 'item 8']) {
    assert.ok(
      r.errors.some((e) => e.includes(name)),
      `an error names ${name}: ${r.errors.join(' | ')}`,
    );
  }
  for (const name of ['node-none', 'node-bare']) assert.ok(!r.errors.some((e) => e.includes(name)), `${name} is only unknown`);
  assert.ok(
    r.errors.some((e) => e.includes('node-good') && e.includes('bad.example')),
    'bad registry entry reported',
  );
  assert.deepEqual(brief(r.rows), [
    ['registry.lab.test', '10.0.1.0/24', 'ok', 1, 0],
    ['registry.lab.test', 'unknown', 'ok', 1, 0],
  ]);
});

test('input that is neither a NodeList nor a Node → errors, no rows, no throw', () => {
  for (const input of [null, 42, 'x', [], { kind: 'Pod', metadata: { name: 'p' } }, {}]) {
    const r = buildReport(input, NOW, HB);
    assert.deepEqual(r.rows, []);
    assert.equal(r.errors.length, 1, JSON.stringify(input));
  }
  assert.deepEqual(buildReport({ kind: 'List', items: [] }, NOW, HB), { rows: [], unknown: [], stale: [], errors: [] });
});

test('stage/reason: most common pair wins; ties go alphabetical', () => {
  const r = buildReport(fixture('tie.json'), NOW, HB);
  const get = (registry: string, subnet: string): ReportRow | undefined =>
    r.rows.find((x) => x.registry === registry && x.subnet === subnet);
  // 2 × tcp/tcp_timeout vs 2 × dns/dns_timeout → dns first alphabetically.
  assert.deepEqual(
    [get('registry.lab.test', '10.0.1.0/24')?.stage, get('registry.lab.test', '10.0.1.0/24')?.reason],
    ['dns', 'dns_timeout'],
  );
  // 3 × tcp/tcp_refused vs 1 × dns/dns_nxdomain → the count beats the alphabet.
  assert.deepEqual([get('docker.io', '10.0.1.0/24')?.stage, get('docker.io', '10.0.1.0/24')?.reason], ['tcp', 'tcp_refused']);
  assert.equal(get('docker.io', '10.0.1.0/24')?.verdict, 'isolated');
  // Same stage, tie on reason; unrecognised (null) pairs lose ties.
  assert.deepEqual(
    mostCommonPair([
      { stage: 'tcp', reason: 'tcp_timeout' },
      { stage: 'tcp', reason: 'tcp_refused' },
      { stage: null, reason: null },
    ]),
    { stage: 'tcp', reason: 'tcp_refused' },
  );
  assert.deepEqual(
    mostCommonPair([
      { stage: null, reason: null },
      { stage: null, reason: null },
      { stage: 'tls', reason: 'tls_expired' },
    ]),
    { stage: null, reason: null },
  );
  assert.deepEqual(mostCommonPair([]), { stage: null, reason: null });
});

test('subnet order: IPv4 numerically, other strings after, "unknown" last', () => {
  const subnets = ['unknown', 'fd00::/64', '10.0.10.0/24', '10.0.2.0/24', '9.0.0.0/8', '10.0.2.0/23'];
  assert.deepEqual([...subnets].sort(compareSubnets), ['9.0.0.0/8', '10.0.2.0/23', '10.0.2.0/24', '10.0.10.0/24', 'fd00::/64', 'unknown']);
});

// ---- CLI ----

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-report-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(argv: string[], stdin: string | null, now = NOW): Promise<Run> {
  let out = '';
  let err = '';
  const io: ReportIo = {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    isTTY: false,
    env: {},
    readStdin: () => Promise.resolve(stdin),
    now: () => now,
  };
  const code = await main(['report', ...argv], io);
  return { code, out, err };
}

const CONTRACT_KEYS = ['subnet', 'registry', 'nodes', 'failing', 'verdict', 'stage', 'reason', 'failingNodes'];

test('report --json from stdin: exit 0 all ok, 1 any not ok; keys exactly in contract order', async () => {
  const ok = await run(['--json'], fixtureText('ok-cluster.json'));
  assert.equal(ok.code, 0, ok.err);
  const rows = JSON.parse(ok.out) as Array<Record<string, unknown>>;
  assert.equal(rows.length, 4);
  for (const row of rows) assert.deepEqual(Object.keys(row), CONTRACT_KEYS);

  const bad = await run(['--json'], fixtureText('subnet-wide.json'));
  assert.equal(bad.code, 1);
  const badRows = JSON.parse(bad.out) as ReportRow[];
  assert.deepEqual(
    badRows.filter((r) => r.verdict !== 'ok').map((r) => [r.subnet, r.verdict, r.reason]),
    [['10.0.2.0/24', 'subnet-wide', 'tcp_refused']],
  );

  // Stale alone makes the exit 1; unknown/stale/errors go to stderr, stdout stays the bare array.
  const stale = await run(['--json'], fixtureText('stale.json'));
  assert.equal(stale.code, 1);
  assert.ok(Array.isArray(JSON.parse(stale.out)));
  assert.match(stale.err, /stale: 3 nodes/);
  const fresh = await run(['--json', '--heartbeat', '2h'], fixtureText('stale.json'));
  assert.equal(fresh.code, 1);
  assert.ok((JSON.parse(fresh.out) as ReportRow[]).every((r) => r.verdict !== 'stale'));

  const broken = await run(['--json'], fixtureText('broken.json'));
  assert.equal(broken.code, 0);
  assert.match(broken.err, /unknown: 7 nodes/);
  assert.match(broken.err, /node-garbled/);
});

test('report human output: table with headers and verdicts, unknown and stale lines, "+N more"', async () => {
  const r = await run([], fixtureText('isolated.json'));
  assert.equal(r.code, 1);
  const lines = r.out.split('\n');
  assert.match(lines[0] ?? '', /^SUBNET\s+REGISTRY\s+NODES\s+FAILING\s+VERDICT\s+REASON\s+FAILING NODES$/);
  assert.match(r.out, /10\.0\.1\.0\/24\s+registry\.lab\.test\s+3\s+1\s+isolated\s+tls\/tls_unknown_ca\s+node-a3/);

  const many = {
    kind: 'List',
    items: Array.from({ length: 6 }, (_, i) => ({
      metadata: {
        name: `n${i}`,
        annotations: {
          'pullprobe.dev/status': JSON.stringify({
            v: 1,
            at: '2025-06-01T12:00:00Z',
            subnet: '10.0.1.0/24',
            registries: { 'r.test': { ok: false, stage: 'tcp', reason: 'tcp_timeout' } },
          }),
        },
      },
    })),
  };
  const m = await run([], JSON.stringify(many));
  assert.match(m.out, /n0, n1, n2 \+3 more/);

  const b = await run([], fixtureText('broken.json'));
  assert.match(b.out, /^Unknown.*7 nodes/m);
  const s = await run([], fixtureText('stale.json'));
  assert.match(s.out, /^Stale.*3 nodes \(node-a2, node-c1, node-c2\)/m);
});

test('report: bad input and usage → exit 2, message on stderr, nothing on stdout', async () => {
  const cases: Array<[string[], string | null, RegExp]> = [
    [['--json'], '{"items": [', /not JSON/],
    [['--json'], '{"kind":"Pod","metadata":{"name":"p"}}', /Pod/],
    [['--json'], '[1,2,3]', /NodeList/],
    [['--heartbeat', 'soon'], '{}', /--heartbeat/],
    [['--heartbeat', '0s'], '{}', /--heartbeat/],
    [['--bogus'], '{}', /bogus/],
    [['extra'], '{}', /extra/],
  ];
  for (const [argv, stdin, re] of cases) {
    const r = await run(argv, stdin);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.equal(r.out, '', argv.join(' '));
    assert.match(r.err, re);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  }
});

function fakeKubectl(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

test('report runs kubectl when stdin has nothing: passes get nodes -o json and --context', async () => {
  const argsFile = join(dir, 'args.txt');
  const fixturePath = join(FIXTURES, 'subnet-wide.json');
  const kubectl = fakeKubectl('kubectl-ok', `printf '%s\\n' "$@" > '${argsFile}'\ncat '${fixturePath}'`);
  const r = await run(['--json', '--kubectl', kubectl, '--context', 'lab'], null);
  assert.equal(r.code, 1, r.err);
  assert.deepEqual(readFileSync(argsFile, 'utf8').trim().split('\n'), ['get', 'nodes', '-o', 'json', '--context', 'lab']);
  assert.equal((JSON.parse(r.out) as ReportRow[]).find((x) => x.verdict === 'subnet-wide')?.subnet, '10.0.2.0/24');
  // Whitespace-only stdin counts as no data.
  const ws = await run(['--json', '--kubectl', kubectl], '  \n');
  assert.equal(ws.code, 1, ws.err);
});

test('report: kubectl missing, failing or printing garbage → exit 2 naming the command, nothing on stdout', async () => {
  const missing = await run(['--json', '--kubectl', join(dir, 'no-such-kubectl')], null);
  assert.equal(missing.code, 2);
  assert.equal(missing.out, '');
  assert.match(missing.err, /no-such-kubectl get nodes -o json/);

  const failing = fakeKubectl('kubectl-fail', `echo 'error: context "x" does not exist' >&2\nexit 1`);
  const f = await run(['--kubectl', failing, '--context', 'x'], null);
  assert.equal(f.code, 2);
  assert.equal(f.out, '');
  assert.match(f.err, /kubectl-fail get nodes -o json --context x/);
  assert.match(f.err, /does not exist/);

  const garbage = fakeKubectl('kubectl-garbage', `echo 'not json'`);
  const g = await run(['--json', '--kubectl', garbage], null);
  assert.equal(g.code, 2);
  assert.equal(g.out, '');
  assert.match(g.err, /kubectl-garbage.*not JSON/);
});
