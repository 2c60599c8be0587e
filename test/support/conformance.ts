/**
 * Loader for the upstream conformance tables in test/fixtures/conformance/ (copied from the
 * upstream test suites; each file's `comment` names repository, commit and test file).
 */
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

export interface ConformanceCase {
  id: string;
  test: string;
  /** Set on rows testing a feature pullprobe does not claim; the text says why. */
  unsupported?: string;
  [field: string]: unknown;
}

export interface ConformanceTable<C extends ConformanceCase = ConformanceCase> {
  comment: string;
  suite: string;
  cases: C[];
  [field: string]: unknown;
}

export function loadTable<C extends ConformanceCase>(name: string): { table: ConformanceTable<C>; supported: C[]; unsupported: C[] } {
  const url = new URL(`../fixtures/conformance/${name}.json`, import.meta.url);
  const table = JSON.parse(readFileSync(url, 'utf8')) as ConformanceTable<C>;
  assert.match(table.comment, /github\.com\//, `${name}.json keeps its provenance line`);
  // Rows the file itself marks unsupported (builders, familiar names, ctr-only options…) are left out: the file says why.
  const supported = table.cases.filter((c) => c.unsupported === undefined);
  const unsupported = table.cases.filter((c) => c.unsupported !== undefined);
  return { table, supported, unsupported };
}

/** Run every row; collect "id: what differed" for each disagreement (an exception is a disagreement too). */
export function disagreements<C extends ConformanceCase>(rows: C[], check: (row: C) => string[]): string[] {
  const out: string[] = [];
  for (const row of rows) {
    let problems: string[];
    try {
      problems = check(row);
    } catch (err) {
      problems = [`threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`];
    }
    for (const p of problems) out.push(`${row.id}: ${p}`);
  }
  return out;
}

export async function disagreementsAsync<C extends ConformanceCase>(rows: C[], check: (row: C) => Promise<string[]>): Promise<string[]> {
  const out: string[] = [];
  for (const row of rows) {
    let problems: string[];
    try {
      problems = await check(row);
    } catch (err) {
      problems = [`threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`];
    }
    for (const p of problems) out.push(`${row.id}: ${p}`);
  }
  return out;
}

export const differ = (what: string, got: unknown, want: unknown): string[] =>
  JSON.stringify(got) === JSON.stringify(want) ? [] : [`${what}: got ${JSON.stringify(got)}, upstream ${JSON.stringify(want)}`];
