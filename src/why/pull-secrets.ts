/**
 * Pure: one pull secret judged as the kubelet would use it. Decoded in
 * memory only; the finding holds no secret value, and `values` lists every
 * secret string met so the caller can make sure none reaches the output.
 *
 * - Only `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`) and
 *   `kubernetes.io/dockercfg` (`.dockercfg`) secrets feed the kubelet's keyring.
 * - The config is parsed and matched with the kubelet keyring's rules
 *   (node-config/docker-config.ts): host globs per label, path prefixes,
 *   Docker Hub aliases.
 * - Expiry: an ECR password (the output of `aws ecr get-login-password`)
 *   decodes to JSON carrying `expiration` in Unix seconds (pull-path-facts
 *   §6.1, observed, undocumented): read when present, otherwise unknown.
 */
import { ConfigError, credentialFor, parseDockerConfig, type DockerAuths } from '../node-config/docker-config.js';
import type { ImageRef } from '../model/reference.js';
import type { PullSecretFinding } from './types.js';
import { isObj } from './pod.js';

const DATA_KEY: Record<string, string> = {
  'kubernetes.io/dockerconfigjson': '.dockerconfigjson',
  'kubernetes.io/dockercfg': '.dockercfg',
};

export interface SecretLookup {
  /** The Secret object from the pod's namespace, or null when it is not there. */
  secret: unknown;
  /** Other namespaces with a secret of that name; null when that could not be checked. */
  elsewhere: string[] | null;
}

export interface SecretAnalysis {
  finding: PullSecretFinding;
  /** The parsed credentials (for the keyring and --probe), when the secret decodes. */
  auths: DockerAuths | null;
  /** Every secret string decoded from it (passwords, auth fields, raw data), for scrubbing. */
  values: string[];
}

/** Expiry (epoch ms) carried by an ECR password token, or null. */
export function ecrTokenExpiry(password: string): number | null {
  if (password.length < 16 || !/^[A-Za-z0-9+/=_-]+$/.test(password)) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(password, 'base64').toString('utf8'));
  } catch {
    return null;
  }
  if (!isObj(doc)) return null;
  const exp = doc['expiration'];
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= 0) return null;
  return exp > 1e12 ? exp : exp * 1000; // seconds, or already milliseconds
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function analyseSecret(name: string, namespace: string, lookup: SecretLookup, ref: ImageRef | null, nowMs: number): SecretAnalysis {
  const finding: PullSecretFinding = {
    name,
    found: lookup.secret !== null,
    foundIn: lookup.elsewhere ?? [],
    type: null,
    registries: [],
    matchesImage: false,
    expiresAt: null,
    problem: null,
  };
  const values: string[] = [];
  if (lookup.secret === null) {
    finding.problem =
      lookup.elsewhere === null
        ? `not found in namespace ${namespace} (could not check the other namespaces: not allowed to list secrets across namespaces)`
        : lookup.elsewhere.length > 0
          ? `not found in namespace ${namespace}; a secret of that name exists in ${lookup.elsewhere.join(', ')} — secrets are namespace-scoped, the pod cannot use it`
          : `not found in namespace ${namespace} or any other namespace`;
    return { finding, auths: null, values };
  }
  const secret = isObj(lookup.secret) ? lookup.secret : {};
  const type = typeof secret['type'] === 'string' ? secret['type'] : 'Opaque';
  finding.type = type;
  const data = isObj(secret['data']) ? secret['data'] : {};
  for (const v of Object.values(data)) {
    if (typeof v === 'string' && v !== '') values.push(v, Buffer.from(v, 'base64').toString('utf8'));
  }
  const key = DATA_KEY[type];
  if (key === undefined) {
    finding.problem = `type ${type}: the kubelet only uses kubernetes.io/dockerconfigjson (or kubernetes.io/dockercfg) secrets for pulls`;
    return { finding, auths: null, values };
  }
  const raw = data[key];
  if (typeof raw !== 'string' || raw === '') {
    finding.problem = `has no ${key} data`;
    return { finding, auths: null, values };
  }
  const text = Buffer.from(raw, 'base64').toString('utf8');
  let auths: DockerAuths;
  try {
    auths = parseDockerConfig(text, `secret ${namespace}/${name}`);
  } catch (err) {
    // ConfigError messages name the secret and the key, never a value.
    finding.problem = `does not decode: ${err instanceof ConfigError ? err.message : 'not a docker config'}`;
    return { finding, auths: null, values };
  }
  for (const e of auths.entries) {
    if (e.password !== '') values.push(e.password);
    if (e.username !== '') values.push(`${e.username}:${e.password}`);
  }
  finding.registries = [...new Set(auths.entries.map((e) => `${e.host}${e.path}`))];
  if (auths.entries.length === 0) {
    finding.problem = 'decodes, but holds no credentials';
    return { finding, auths, values };
  }
  if (ref === null) return { finding, auths, values };
  const cred = credentialFor(auths, ref.registry, ref.repository);
  if (cred === undefined) {
    finding.problem = `has credentials for ${finding.registries.join(', ')}, not for the image's registry ${ref.registry}`;
    return { finding, auths, values };
  }
  finding.matchesImage = true;
  const exp = ecrTokenExpiry(cred.password);
  if (exp !== null) {
    finding.expiresAt = iso(exp);
    if (exp <= nowMs)
      finding.problem = `its credential for ${ref.registry} is an ECR token that expired at ${finding.expiresAt} (ECR tokens last 12 hours)`;
  }
  return { finding, auths, values };
}

/** Several pull secrets merged as the kubelet's keyring merges them (first secret's entries first). */
export function mergeAuths(list: ReadonlyArray<DockerAuths | null>): DockerAuths | undefined {
  const present = list.filter((a): a is DockerAuths => a !== null);
  if (present.length === 0) return undefined;
  return { source: present.map((a) => a.source).join(' + '), entries: present.flatMap((a) => a.entries) };
}
