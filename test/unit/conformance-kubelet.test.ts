/**
 * Every supported row of the kubelet's credential-provider test tables
 * (test/fixtures/conformance/kubelet-keyring.json and kubelet-dockerconfig.json, provenance
 * in each file's `comment`) run through parseDockerConfig / credentialFor, compared as each
 * file's `adapter` notes say.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, credentialFor, parseDockerConfig } from '../../src/node-config/docker-config.js';
import { parseImageReference } from '../../src/model/reference.js';
import { isDefaultRegistryMatch, keyringLookup, urlsMatch } from '../../src/node-config/kubelet-keyring.js';
import { differ, disagreements, loadTable, type ConformanceCase } from '../support/conformance.js';

interface Cred {
  username: string;
  password: string;
}
interface KeyringCase extends ConformanceCase {
  kind: 'urlsMatch' | 'lookup' | 'isDefaultRegistry';
  glob?: string;
  target?: string;
  config?: string;
  lookup?: string;
  image?: string;
  expect: { match?: boolean; ok?: boolean; first?: Cred };
}
interface DockerConfigCase extends ConformanceCase {
  kind: 'parse';
  config: string;
  expect: { ok: boolean; entries?: Record<string, Cred> };
}

/** The kubelet keyring's reading of a lookup string (keyring adapter note 1). */
function lookup(config: string, s: string): Cred | undefined {
  const slash = s.indexOf('/');
  const first = slash === -1 ? s : s.slice(0, slash);
  const hub = !/[.:]/.test(first);
  const registry = hub ? 'docker.io' : first;
  const repository = hub ? s : slash === -1 ? undefined : s.slice(slash + 1);
  const c = credentialFor(parseDockerConfig(config, 'peer.json'), registry, repository);
  return c === undefined ? undefined : { username: c.username, password: c.password };
}

function checkKeyring(row: KeyringCase): string[] {
  const e = row.expect;
  switch (row.kind) {
    case 'urlsMatch': {
      const config = JSON.stringify({ auths: { [row.glob ?? '']: { username: 'u', password: 'p' } } });
      return differ('match', lookup(config, row.target ?? '') !== undefined, e.match);
    }
    case 'lookup': {
      const got = lookup(row.config ?? '', row.lookup ?? '');
      return [...differ('ok', got !== undefined, e.ok), ...(e.first ? differ('first', got, e.first) : [])];
    }
    case 'isDefaultRegistry': {
      const r = parseImageReference(row.image ?? '');
      return differ('match', r.ok && r.ref.registry === 'docker.io', e.match);
    }
  }
}

/**
 * The same rows through the kubelet keyring itself (kubelet-keyring.ts), which the node's
 * credential sources and plugin matchImages use: URLsMatch on the raw strings, Lookup on
 * the raw image string, isDefaultRegistryMatch on the raw name.
 */
function checkKeyringExact(row: KeyringCase): string[] {
  const e = row.expect;
  switch (row.kind) {
    case 'urlsMatch':
      return differ('match', urlsMatch(row.glob ?? '', row.target ?? ''), e.match);
    case 'lookup': {
      const first = keyringLookup(parseDockerConfig(row.config ?? '', 'peer.json').entries, row.lookup ?? '')[0];
      const got = first && { username: first.username, password: first.password };
      return [...differ('ok', got !== undefined, e.ok), ...(e.first ? differ('first', got, e.first) : [])];
    }
    case 'isDefaultRegistry':
      return differ('match', isDefaultRegistryMatch(row.image ?? ''), e.match);
  }
}

function checkDockerConfig(row: DockerConfigCase): string[] {
  let auths;
  try {
    auths = parseDockerConfig(row.config, 'peer.json');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return row.expect.ok ? [`rejected (${err.message}), the kubelet accepts`] : [];
  }
  if (!row.expect.ok) return ['accepted, the kubelet rejects the whole config'];
  const out: string[] = [];
  for (const [key, want] of Object.entries(row.expect.entries ?? {})) {
    const entry = auths.entries.find((x) => x.key === key);
    out.push(...differ(key, entry && { username: entry.username, password: entry.password }, want));
  }
  return out;
}

describe('conformance: kubelet credential keyring and docker config decoding', () => {
  it('every supported kubelet-keyring row agrees with credentialFor', () => {
    const { supported, unsupported } = loadTable<KeyringCase>('kubelet-keyring');
    // TestProvidersDockerKeyring: provider-chain plumbing pullprobe does not have (the row says so).
    assert.equal(unsupported.length, 1);
    assert.equal(supported.length, 62);
    assert.deepEqual(disagreements(supported, checkKeyring), []);
  });

  it('every supported kubelet-keyring row agrees with the exact keyring (keyringLookup, urlsMatch, isDefaultRegistryMatch)', () => {
    const { supported } = loadTable<KeyringCase>('kubelet-keyring');
    assert.equal(supported.length, 62);
    assert.deepEqual(disagreements(supported, checkKeyringExact), []);
  });

  it('every supported kubelet-dockerconfig row agrees with parseDockerConfig', () => {
    const { supported, unsupported } = loadTable<DockerConfigCase>('kubelet-dockerconfig');
    // TestDockerConfigEntryJSONCompatibleEncode: writing configs, which pullprobe never does.
    assert.equal(unsupported.length, 1);
    assert.equal(supported.length, 21);
    assert.deepEqual(disagreements(supported, checkDockerConfig), []);
  });
});
