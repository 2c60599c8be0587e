/**
 * Every `src/…` and `test/…` path named in the docs (docs/*.md,
 * CONTRIBUTING.md, README.md) exists, so the docs cannot drift from the code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Paths like src/probe/chain.ts, test/lab/, src/probe/stages/ in a text (pure). */
export function namedPaths(text: string): string[] {
  const found = text.match(/(?<![\w./-])(?:src|test)\/[\w.-]+(?:\/[\w.-]+)*\/?/g) ?? [];
  return [...new Set(found.map((p) => p.replace(/[.,:;]+$/, '')))];
}

function docFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f));
  return [...docs, 'CONTRIBUTING.md', 'README.md'];
}

test('namedPaths finds file and folder paths and ignores look-alikes', () => {
  assert.deepEqual(namedPaths('see `src/probe/chain.ts`, test/lab/ and src/shared/cidr.ts.'), [
    'src/probe/chain.ts',
    'test/lab/',
    'src/shared/cidr.ts',
  ]);
  assert.deepEqual(namedPaths('a/src/x.ts and upsrc/y'), []);
});

test('every src/ and test/ path the docs name exists', () => {
  const missing: string[] = [];
  let checked = 0;
  for (const file of docFiles()) {
    for (const p of namedPaths(readFileSync(join(ROOT, file), 'utf8'))) {
      checked++;
      if (!existsSync(join(ROOT, p))) missing.push(`${file}: ${p}`);
    }
  }
  assert.ok(checked > 20, `only ${checked} paths found: the pattern is broken`);
  assert.deepEqual(missing, []);
});
