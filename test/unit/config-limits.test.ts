/**
 * The config parser against hostile or broken files: YAML aliases (bombs and
 * unresolved), huge and binary files, many keys. parseConfig never throws,
 * every problem is a named error (file:line:col), the error list is capped,
 * and the cost stays linear. CPU bounds are generous: the inputs are sized so
 * the old code took seconds.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_CONFIG_BYTES, MAX_CONFIG_ERRORS, loadConfig, parseConfig, type ConfigResult } from '../../src/agent/config.js';
import { parseDurationDetailed } from '../../src/shared/duration.js';

const ENV = { hostname: 'host-1' };

function errorsOf(r: ConfigResult): string[] {
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.errors;
}

function cpuMs<T>(fn: () => T): { value: T; ms: number } {
  const start = process.cpuUsage();
  const value = fn();
  const used = process.cpuUsage(start);
  return { value, ms: (used.user + used.system) / 1000 };
}

/** A billion-laughs document: each level aliases the previous one ten times. */
function aliasBomb(levels: number): string {
  let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i <= levels; i++)
    text += `a${i}: &a${i} [${Array(10)
      .fill(`*a${i - 1}`)
      .join(', ')}]\n`;
  return `${text}targets:\n  - registry: ghcr.io\n`;
}

test('a YAML alias bomb is a named error at the first alias, not an exception', () => {
  const { value, ms } = cpuMs(() => parseConfig(aliasBomb(9), 'bomb.yaml', ENV));
  const errors = errorsOf(value);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0] ?? '', /^bomb\.yaml:2:\d+: aliases expand to too many values/);
  assert.ok(ms < 2000, `took ${ms} ms of CPU`);
});

test('many aliases of one value are a named error too', () => {
  const text = `x: &x ghcr.io\nlist: [${Array(300).fill('*x').join(', ')}]\ntargets:\n  - registry: ghcr.io\n`;
  assert.match(errorsOf(parseConfig(text, 'many.yaml', ENV))[0] ?? '', /^many\.yaml:2:\d+: aliases expand/);
});

test('an unresolved alias names its line and column', () => {
  const errors = errorsOf(parseConfig('targets:\n  - registry: *mirror\n', 'c.yaml', ENV));
  assert.deepEqual(errors, ['c.yaml:2:15: unresolved alias *mirror (its anchor &mirror must come before it)']);
  // An alias used before its anchor is unresolved as well.
  const late = errorsOf(parseConfig('a: *r\nb: &r ghcr.io\ntargets:\n  - registry: ghcr.io\n', 'late.yaml', ENV));
  assert.match(late[0] ?? '', /^late\.yaml:1:4: unresolved alias \*r/);
});

test('aliases within the limit still work', () => {
  const text = 'common: &t 30s\ninterval: *t\ntimeout: 5s\ntargets:\n  - registry: ghcr.io\n    interval: *t\n';
  const r = parseConfig(text, 'ok.yaml', ENV);
  assert.equal(r.ok, false, 'common is an unknown key');
  assert.deepEqual(errorsOf(r), ['common: unknown key']);
  const r2 = parseConfig('interval: &t 30s\ntargets:\n  - registry: ghcr.io\n    interval: *t\n', 'ok.yaml', ENV);
  assert.ok(r2.ok, JSON.stringify(r2));
  assert.equal(r2.config.targets[0]?.intervalMs, 30_000);
});

test('the duplicate-key check is linear: 20k keys with one repeated, rejected fast at the repeat', () => {
  let text = '';
  for (let i = 0; i < 20_000; i++) text += `k${i}: 1\n`;
  text += 'k7: 2\n';
  const { value, ms } = cpuMs(() => parseConfig(text, 'big.yaml', ENV));
  const errors = errorsOf(value);
  assert.match(errors[0] ?? '', /^big\.yaml:20001:1: Map keys must be unique/);
  // The old quadratic check took ~11 s of CPU on this input.
  assert.ok(ms < 4000, `took ${ms} ms of CPU`);
});

test('duplicate keys in nested and flow mappings are still found', () => {
  const text = 'targets:\n  - registry: ghcr.io\n    interval: 5s\n    interval: 6s\ntls: {caFiles: [], caFiles: []}\n';
  const errors = errorsOf(parseConfig(text, 'd.yaml', ENV));
  assert.equal(errors.length, 2, errors.join('\n'));
  assert.match(errors[0] ?? '', /^d\.yaml:4:5: Map keys must be unique/);
  assert.match(errors[1] ?? '', /^d\.yaml:5:\d+: Map keys must be unique/);
});

test('a config over 1 MiB is refused before parsing, naming the file and the limit', async () => {
  const huge = `targets:\n${'  - registry: ghcr.io\n'.repeat(500_000)}`;
  const { value, ms } = cpuMs(() => parseConfig(huge, 'huge.yaml', ENV));
  const errors = errorsOf(value);
  assert.equal(errors.length, 1);
  assert.match(
    errors[0] ?? '',
    new RegExp(`^huge\\.yaml: the file is ${Buffer.byteLength(huge)} bytes, over the ${MAX_CONFIG_BYTES} byte \\(1 MiB\\) limit`),
  );
  assert.ok(ms < 500, `took ${ms} ms of CPU`);

  const dir = await mkdtemp(join(tmpdir(), 'pullprobe-cfg-'));
  try {
    const path = join(dir, 'huge.yaml');
    await writeFile(path, huge);
    const loaded = errorsOf(await loadConfig(path, { env: ENV }));
    assert.equal(loaded.length, 1);
    assert.ok(loaded[0]?.startsWith(`${path}: the file is ${Buffer.byteLength(huge)} bytes`), loaded[0]);
    // Exactly at the limit is still parsed (and here rejected for its content, not its size).
    const atLimit = `# ${'x'.repeat(MAX_CONFIG_BYTES - 20)}\ntargets: []\n`;
    const padded = atLimit + ' '.repeat(MAX_CONFIG_BYTES - Buffer.byteLength(atLimit));
    assert.equal(Buffer.byteLength(padded), MAX_CONFIG_BYTES);
    await writeFile(path, padded);
    assert.deepEqual(errorsOf(await loadConfig(path, { env: ENV })), ['targets: at least one target (image: or registry:) is required']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a binary file gives a short, capped error list', () => {
  let seed = 12345;
  const bytes = Buffer.alloc(400_000);
  for (let i = 0; i < bytes.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = (seed >> 16) & 0xff;
  }
  const { value, ms } = cpuMs(() => parseConfig(bytes.toString('utf8'), 'bin.yaml', ENV));
  const errors = errorsOf(value);
  assert.equal(errors.length, MAX_CONFIG_ERRORS + 1, errors.join('\n'));
  assert.match(errors[MAX_CONFIG_ERRORS] ?? '', /^… and \d+ more errors$/);
  assert.ok(errors.join('\n').length < 12_000, `${errors.join('\n').length} characters of errors`);
  assert.ok(ms < 5000, `took ${ms} ms of CPU`);
});

test('many validation errors are capped too, and a huge value is not echoed back', () => {
  const long = 'x'.repeat(200_000);
  let text = `node: ${long}\nsubnet: ${long}\nlogLevel: ${long}\ntargets:\n`;
  for (let i = 0; i < 200; i++) text += `  - registry: "bad host ${i}"\n`;
  const errors = errorsOf(parseConfig(text, 'v.yaml', ENV));
  assert.equal(errors.length, MAX_CONFIG_ERRORS + 1);
  assert.match(errors.at(-1) ?? '', /^… and \d+ more errors$/);
  for (const e of errors) assert.ok(e.length <= 401, `an error of ${e.length} characters`);
});

test('durations: linear, and a long one is refused with a short message', () => {
  for (const input of ['1'.repeat(1_000_000), '1s'.repeat(500_000), `${'1.'.repeat(500_000)}s`, ` ${'9'.repeat(999_999)}x`]) {
    const { value, ms } = cpuMs(() => parseDurationDetailed(input));
    assert.equal(value.ok, false);
    assert.ok(value.message.length < 120, value.message.slice(0, 200));
    assert.ok(ms < 200, `took ${ms} ms of CPU`);
  }
  const r = parseConfig(`interval: "${'1'.repeat(100_000)}"\ntargets:\n  - registry: ghcr.io\n`, 'dur.yaml', ENV);
  const errors = errorsOf(r);
  assert.equal(errors.length, 1);
  assert.ok((errors[0]?.length ?? 0) < 250, errors[0]?.slice(0, 300));
  assert.equal(parseDurationDetailed('1h2m3s4ms5us6ns').ok, true);
});

test('parseConfig never throws on odd YAML: tags, merge keys, complex keys, multiple documents', () => {
  const odd = [
    '<<: {a: 1}\ntargets: []\n',
    '? [a, b]\n: 1\n',
    '--- \na: 1\n---\nb: 2\n',
    '!!binary aGVsbG8=\n',
    'a: !!set {x, y}\n',
    '&a [*a]\n',
    'a: &a {b: *a}\n',
    '%YAML 1.1\n---\na: 1\n',
    '\u0000\u0001\u0002',
    'a: 1\n\ta: 2\n',
  ];
  for (const text of odd) {
    assert.doesNotThrow(() => parseConfig(text, 'odd.yaml', ENV), text);
    const r = parseConfig(text, 'odd.yaml', ENV);
    if (!r.ok) for (const e of r.errors) assert.doesNotMatch(e, /internal error/, e);
  }
});

test('deep nesting and nested explicit keys are one named error, fast (the yaml composer recurses and stringifies)', () => {
  const cases: [string, string][] = [
    [`a: ${'{b: '.repeat(2000)}${'}'.repeat(2000)}\n`, 'flow mappings'],
    [`a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, 'flow lists'],
    ['? '.repeat(447), 'explicit keys'],
    [`${Array.from({ length: 40 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n')} x\n`, 'block mappings'],
  ];
  for (const [text, what] of cases) {
    const { value, ms } = cpuMs(() => parseConfig(text, 'deep.yaml', ENV));
    const errors = errorsOf(value);
    assert.equal(errors.length, 1, `${what}: ${errors.join('\n')}`);
    assert.match(errors[0] ?? '', /^deep\.yaml:\d+:\d+: nested more than 32 levels deep$/, what);
    // The old code took 38 s on the 447 explicit keys and overflowed the stack on the others.
    assert.ok(ms < 1000, `${what}: took ${ms} ms of CPU`);
  }
  const ok = parseConfig(`targets:\n  - registry: ghcr.io\ntls:\n  caFiles: [/a.pem]\n`, 'ok.yaml', ENV);
  assert.ok(ok.ok, JSON.stringify(ok));
});

test('a key that is a list or mapping is a named error, not a process warning', () => {
  const warnings: unknown[] = [];
  const onWarning = (w: unknown): void => {
    warnings.push(w);
  };
  process.on('warning', onWarning);
  try {
    const errors = errorsOf(parseConfig('? [a, b]\n: 1\n{x: 1}: 2\ntargets:\n  - registry: ghcr.io\n', 'k.yaml', ENV));
    assert.deepEqual(errors, [
      'k.yaml:1:3: a key must be a plain value, not a list, a mapping or an alias',
      'k.yaml:3:1: a key must be a plain value, not a list, a mapping or an alias',
    ]);
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, []);
});

test('more than one YAML document is a named error', () => {
  const errors = errorsOf(parseConfig('targets:\n  - registry: ghcr.io\n---\ntargets: []\n', 'two.yaml', ENV));
  assert.match(errors[0] ?? '', /^two\.yaml:3:1: more than one YAML document/);
});

test('thousands of unknown keys: no edit distance for errors that are not shown', () => {
  const text = `${Array.from({ length: 4000 }, (_, i) => `key-number-${i}-with-a-long-name: v`).join('\n')}\n`;
  parseConfig(text, 'warm.yaml', ENV);
  const { value, ms } = cpuMs(() => parseConfig(text, 'many.yaml', ENV));
  const errors = errorsOf(value);
  assert.equal(errors.length, MAX_CONFIG_ERRORS + 1);
  assert.ok(ms < 1500, `took ${ms} ms of CPU`);
});

test("a file of syntax errors stops at the first 20: `]` × 50,000 is one short error, not 50,000 of the yaml library's 20 µs each", () => {
  const { value, ms } = cpuMs(() => parseConfig(']'.repeat(50_000), 'junk.yaml', ENV));
  const errors = errorsOf(value);
  assert.equal(errors.length, 1);
  assert.match(errors[0] ?? '', /^junk\.yaml:1:\d+: not a YAML configuration \(20 syntax errors by here/);
  assert.ok(ms < 100, `took ${ms} ms of CPU (the yaml library alone needs ~1 s for this input)`);
});
