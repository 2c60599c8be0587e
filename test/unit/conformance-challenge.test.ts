/**
 * Every supported row of the upstream WWW-Authenticate parser tests, run
 * through parseWwwAuthenticate and compared as each file's `adapter` notes say:
 * - test/fixtures/conformance/distribution-challenge.json (distribution's
 *   authchallenge_test.go; provenance in its `comment`): count of challenges,
 *   scheme and the asserted params of the first;
 * - test/fixtures/conformance/containerd-auth-parse.json (containerd's
 *   parse_test.go): `exact` deep-equal, `first` named params, `noThrow`.
 * Rows the files mark unsupported (distribution's challenge Manager: a
 * per-endpoint store pullprobe does not keep) are left out by loadTable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseWwwAuthenticate } from '../../src/probe/www-authenticate.js';
import { differ, disagreements, loadTable, type ConformanceCase } from '../support/conformance.js';

interface ChallengeExpect {
  count?: number;
  exact?: { scheme: string; params: Record<string, string> }[];
  first?: { scheme?: string; params?: Record<string, string> };
  noThrow?: boolean;
}

interface ChallengeCase extends ConformanceCase {
  headers: string[];
  expect: ChallengeExpect;
}

function check(row: ChallengeCase): string[] {
  const got = parseWwwAuthenticate(row.headers);
  const e = row.expect;
  const out: string[] = [];
  if (e.count !== undefined) out.push(...differ('count', got.length, e.count));
  if (e.exact !== undefined) out.push(...differ('challenges', got, e.exact));
  if (e.first !== undefined) {
    const first = got[0];
    if (!first) return [...out, 'no challenge parsed'];
    if (e.first.scheme !== undefined) out.push(...differ('scheme', first.scheme, e.first.scheme));
    for (const [k, v] of Object.entries(e.first.params ?? {})) out.push(...differ(`params.${k}`, first.params[k], v));
  }
  return out; // noThrow: an exception is a disagreement (disagreements() catches it)
}

for (const name of ['distribution-challenge', 'containerd-auth-parse']) {
  describe(`conformance: ${name}`, () => {
    const { supported, unsupported } = loadTable<ChallengeCase>(name);
    it('has supported rows, and every unsupported row says why', () => {
      assert.ok(supported.length > 0);
      for (const u of unsupported) assert.ok((u.unsupported ?? '').length > 10, u.id);
    });
    it(`every supported row agrees (${supported.length} rows)`, () => {
      assert.deepEqual(disagreements(supported, check), []);
    });
  });
}
