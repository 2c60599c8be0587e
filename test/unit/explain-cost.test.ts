/**
 * explain runs in linear time on any input (issue 6: 100 KB of "lookup …"
 * took > 30 s through regex backtracking). Adversarial inputs repeat, up to
 * 256 KiB–1 MiB, a prefix of every real message in the case table (so each
 * pattern's opening pieces match again and again and its ending never does)
 * and the opening of every pattern piece by hand. The old patterns took
 * seconds on each of the hand-written ones from 20 KB on; the bound below is
 * CPU time, generous for a 2-core machine shared by other work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainText } from '../../src/diagnosis/explain.js';
import { CASES } from '../fixtures/explain/cases.js';

const BOUND_MS = 1000;

function cpuMs(f: () => void): number {
  const start = process.cpuUsage();
  f();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const repeatTo = (unit: string, bytes: number): string => unit.repeat(Math.ceil(bytes / unit.length));

const PIECE_OPENINGS = [
  'lookup a ',
  'lookup a: read udp ',
  'lookup registry.lab.test on 10.0.0.2:53: ',
  'lookup x: Try ',
  'failed to fetch anonymous token: unexpected status ',
  'failed to fetch oauth token:',
  'unexpected status: ',
  'x509: certificate is valid for a, ',
  'x509: certificate is valid for ',
  'unexpected status code x ',
  'unexpected HTTP status ',
  'unexpected status code ',
  'dial tcp ',
  'dial tcp a:',
  'dial unix ',
  'dial unix a',
  'read tcp ',
  'read tcp a:',
  'failed to resolve reference "',
  'failed to resolve reference "a": ',
  'failed to resolve image: a:',
  'failed to do request: Head "',
  'failed to do request: Head ',
  'failed to do request: Head "a": Forbidden ',
  '\\"',
  'Basic ',
  'Bearer a',
  '//a:b',
  '//a',
  '  Warning  ',
  'Back-off ',
  'i/o ',
  'context deadline ',
];

test('explain: repeated openings of every pattern piece, 256 KiB on one line, each under the bound', () => {
  for (const unit of PIECE_OPENINGS) {
    const text = repeatTo(unit, 256 * 1024);
    const ms = cpuMs(() => explainText(text));
    assert.ok(ms < BOUND_MS, `${JSON.stringify(unit)} × ${text.length} chars: ${ms.toFixed(0)} ms`);
  }
});

test('explain: repeated prefixes of every real message (one line and many lines), each under the bound', () => {
  for (const [name, message] of CASES) {
    for (const cut of [Math.floor(message.length / 2), message.length - 8]) {
      const unit = message.slice(0, cut);
      for (const text of [repeatTo(unit, 256 * 1024), repeatTo(`${unit}\n`, 256 * 1024)]) {
        const ms = cpuMs(() => explainText(text));
        assert.ok(ms < BOUND_MS, `${name}, prefix ${cut}: ${ms.toFixed(0)} ms`);
      }
    }
  }
});

test('explain: 1 MiB inputs (the CLI limit) each under the bound', () => {
  const lookups = repeatTo('lookup registry.lab.test on 10.0.0.2:53: read udp 10.0.0.5:41234->10.0.0.2:53: ', 1024 * 1024);
  const token = repeatTo('failed to fetch anonymous token: unexpected status from GET request to https://a/token: ', 1024 * 1024);
  const json = JSON.stringify({
    items: Array.from({ length: 2000 }, (_, i) => ({
      message: `lookup r${i}.lab.test on 10.0.0.2:53: read udp \\"x\\" ${'a'.repeat(400)}`,
    })),
  });
  for (const [name, text] of [
    ['lookups', lookups],
    ['token', token],
    ['events json', json],
    ['one long word', 'a'.repeat(1024 * 1024)],
  ] as const) {
    const ms = cpuMs(() => explainText(text));
    assert.ok(ms < BOUND_MS, `${name}: ${ms.toFixed(0)} ms`);
  }
});
