/**
 * Every supported row of distribution/reference v0.6.0's own test tables
 * (test/fixtures/conformance/distribution-reference.json, provenance in its `comment`)
 * run through parseImageReference, compared as the file's `adapter` notes say.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseImageReference, type ReferenceProblem } from '../../src/model/reference.js';
import { differ, disagreements, loadTable, type ConformanceCase } from '../support/conformance.js';

interface RefCase extends ConformanceCase {
  fn?: 'ParseNormalizedNamed' | 'ParseDockerRef';
  input: string;
  upstreamTable?: { err?: string };
  expect: {
    ok: boolean;
    err?: string;
    domain?: string;
    path?: string;
    tag?: string;
    digest?: string;
    name?: string;
    string?: string;
    canonical?: boolean;
  };
}

/** Upstream error kinds → pullprobe ReferenceProblem (adapter note 5). */
const KIND: Record<string, ReferenceProblem[]> = {
  ErrNameEmpty: ['empty'],
  ErrReferenceInvalidFormat: ['format', 'tag', 'digest'],
  ErrNameContainsUppercase: ['uppercase'],
  ErrNameTooLong: ['too_long'],
  ErrDigestInvalidLength: ['digest'],
  ErrDigestUnsupported: ['digest'],
  ErrDigestInvalidFormat: ['digest'],
  ErrHexName: ['hex_name'],
};

function check(row: RefCase): string[] {
  const e = row.expect;
  const r = parseImageReference(row.input);
  if (!e.ok) {
    if (r.ok) return [`accepted as ${r.ref.normalized}, upstream rejects (${e.err})`];
    if (e.err === 'any') return [];
    const allowed = [...(KIND[e.err ?? ''] ?? []), ...(KIND[row.upstreamTable?.err ?? ''] ?? [])];
    return allowed.includes(r.problem) ? [] : [`rejected as ${r.problem}, upstream ${e.err}`];
  }
  if (!r.ok) return [`rejected (${r.problem}: ${r.message}), upstream accepts`];
  const ref = r.ref;
  const name = `${ref.registry}/${ref.repository}`;
  const out: string[] = [];
  if (e.domain !== undefined) out.push(...differ('domain', ref.registry, e.domain));
  if (e.path !== undefined) out.push(...differ('path', ref.repository, e.path));
  if (e.name !== undefined) out.push(...differ('name', name, e.name));
  if (e.digest !== undefined) out.push(...differ('digest', ref.digest, e.digest));
  if (e.tag !== undefined) out.push(...differ('tag', ref.tag, e.tag));
  // A described result with neither tag nor digest: pullprobe adds "latest" (adapter note 3).
  if (e.domain !== undefined && e.tag === undefined) out.push(...differ('tag', ref.tag, e.digest === undefined ? 'latest' : undefined));
  if (e.canonical !== undefined) out.push(...differ('canonical', name === row.input, e.canonical));
  if (e.string !== undefined) {
    if (row.fn === 'ParseDockerRef') {
      out.push(...differ('string', `${name}${ref.digest !== undefined ? `@${ref.digest}` : `:${ref.tag ?? ''}`}`, e.string));
    } else {
      // Upstream String() of a name without tag or digest is the name; pullprobe's has ":latest" added.
      const nameOnly = ref.tag === 'latest' && ref.digest === undefined && e.string === name;
      if (!nameOnly) out.push(...differ('string', ref.normalized, e.string));
    }
  }
  return out;
}

describe('conformance: distribution/reference v0.6.0', () => {
  it('every supported upstream row agrees with parseImageReference', () => {
    const { supported, unsupported } = loadTable<RefCase>('distribution-reference');
    // WithName/WithTag/WithDigest builders, FamiliarName/FamiliarString/FamiliarMatch and
    // ParseAnyReference's bare IDs are features pullprobe does not have (each row's `unsupported` says which).
    assert.equal(supported.length + unsupported.length, 290);
    assert.equal(supported.length, 205);
    assert.deepEqual(disagreements(supported, check), []);
  });
});
