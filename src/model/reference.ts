/**
 * Image references parsed and normalised as distribution/reference does
 * (`ParseNormalizedNamed` + `Parse` + go-digest validation), which is what
 * containerd's CRI plugin uses. Pure: no I/O.
 *
 * Grammar (distribution/reference reference.go):
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [domain "/"] path-component ["/" path-component]*
 *   domain    := (domain-name | "[" IPv6 "]") [":" port]
 */

export interface ImageRef {
  /** Namespace host as in the image name: "docker.io", "registry.lab.test:5000". */
  registry: string;
  /** host[:port] actually contacted: "registry-1.docker.io" for docker.io. */
  endpoint: string;
  /** "library/nginx". */
  repository: string;
  /** "latest" is added when neither tag nor digest is given. */
  tag?: string;
  /** "sha256:…". */
  digest?: string;
  /** "docker.io/library/nginx:latest" (tag and digest both kept when both are given). */
  normalized: string;
}

export type Target =
  { kind: 'image'; input: string; ref: ImageRef } | { kind: 'registry'; input: string; registry: string; endpoint: string };

/** Which rule a rejected reference broke (tests assert this, not the wording). */
export type ReferenceProblem = 'empty' | 'format' | 'uppercase' | 'tag' | 'digest' | 'hex_name' | 'too_long' | 'port';

export type ReferenceParse = { ok: true; ref: ImageRef } | { ok: false; message: string; problem: ReferenceProblem };

export type TargetParse = { ok: true; target: Target } | { ok: false; message: string; problem: ReferenceProblem };

export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const LEGACY_DOCKER_HUB = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
const NAME_MAX = 255;

// --- grammar (distribution/reference regexp.go) ---------------------------
const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})`;
const DOMAIN_AND_PORT = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';

const REFERENCE_RE = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const DOMAIN_AND_PORT_RE = new RegExp(`^${DOMAIN_AND_PORT}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** go-digest's registered algorithms and their hex lengths. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

const PREFIX = 'invalid reference format';

/** Quote at most ~100 characters of the user's text in a message (a 100 KB input stays out of it). */
const clip = (s: string): string => (s.length > 120 ? `${s.slice(0, 100)}… (${s.length} characters)` : s);

type Fail = { ok: false; message: string; problem: ReferenceProblem };
const fail = (problem: ReferenceProblem, detail: string): Fail => ({
  ok: false,
  problem,
  message: `${PREFIX}: ${detail}`,
});

/** True for the Docker Hub namespace and its aliases. */
export function isDockerHubHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === DOCKER_HUB || h === LEGACY_DOCKER_HUB || h === DOCKER_HUB_ENDPOINT;
}

/** The host[:port] contacted for a registry namespace (docker.io → registry-1.docker.io). */
export function registryEndpoint(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

/**
 * distribution/reference `splitDockerDomain`: the first component is a domain
 * iff it is "localhost", contains "." or ":", or has uppercase letters.
 */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  if (slash === -1) {
    // FIXME upstream too: a bare "localhost" or "example.com" becomes a Hub name.
    return { domain: DOCKER_HUB, remainder: OFFICIAL_PREFIX + name };
  }
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (first === 'localhost' || first === LEGACY_DOCKER_HUB || /[.:]/.test(first) || first.toLowerCase() !== first) {
    domain = first === LEGACY_DOCKER_HUB ? DOCKER_HUB : first;
    remainder = rest;
  } else {
    domain = DOCKER_HUB;
    remainder = name;
  }
  if (domain === DOCKER_HUB && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { domain, remainder };
}

/** Port must fit in 16 bits (stricter than the grammar; Go's dialer rejects it too). */
function badPort(domain: string): string | undefined {
  const m = /:([0-9]+)$/.exec(domain);
  if (!m || domain.endsWith(']')) return undefined;
  const port = Number(m[1]);
  return port < 1 || port > 65535 ? m[1] : undefined;
}

/** go-digest `Digest.Validate`. */
function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (want === undefined) return `digest "${clip(digest)}": unsupported digest algorithm "${clip(algorithm)}"`;
  if (hex.length !== want) return `digest "${clip(digest)}": ${algorithm} needs ${want} hex digits, got ${hex.length}`;
  if (!/^[a-f0-9]+$/.test(hex)) return `digest "${clip(digest)}": hex must be lowercase`;
  return undefined;
}

/** Name the part that broke the grammar when the whole-reference regexp fails. */
function diagnose(input: string, candidate: string): Fail {
  const at = candidate.indexOf('@');
  const namePart = at === -1 ? candidate : candidate.slice(0, at);
  if (at !== -1) {
    const digest = candidate.slice(at + 1);
    if (!DIGEST_RE.test(digest)) {
      return fail('digest', `digest "${clip(digest)}" is not algorithm:hex with at least 32 hex digits`);
    }
  }
  const lastSlash = namePart.lastIndexOf('/');
  const colon = namePart.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    const tag = namePart.slice(colon + 1);
    if (!TAG_RE.test(tag)) {
      return fail('tag', `tag "${clip(tag)}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
    }
  }
  return fail(
    'format',
    `"${clip(input)}" is not [registry[:port]/]repository[:tag][@digest] (repository: lowercase letters, digits and . _ - separators, components joined by /)`,
  );
}

/** distribution/reference `ParseNormalizedNamed`, keeping tag and digest, adding ":latest". */
export function parseImageReference(s: string): ReferenceParse {
  if (s === '') return fail('empty', 'empty image reference');
  if (IDENTIFIER_RE.test(s)) {
    return fail('hex_name', `repository name "${clip(s)}" cannot be a 64-character hexadecimal string`);
  }
  const { domain, remainder } = splitDockerDomain(s);
  const colon = remainder.indexOf(':');
  const remote = colon === -1 ? remainder : remainder.slice(0, colon);
  if (remote.toLowerCase() !== remote) {
    return fail('uppercase', `repository name "${clip(remote)}" must be lowercase`);
  }
  const candidate = `${domain}/${remainder}`;
  const m = REFERENCE_RE.exec(candidate);
  if (!m) {
    if (REFERENCE_RE.test(candidate.toLowerCase())) {
      return fail('uppercase', `repository name "${clip(remainder)}" must be lowercase`);
    }
    return diagnose(s, candidate);
  }
  const [, registry = DOCKER_HUB, repository = '', tag, digest] = m;
  // distribution/reference v0.6.0 (containerd 1.7.19+, 2.x) counts the path only, not the domain.
  if (repository.length > NAME_MAX) {
    return fail('too_long', `repository path must not be more than ${NAME_MAX} characters (got ${repository.length})`);
  }
  const port = badPort(registry);
  if (port !== undefined) return fail('port', `registry "${clip(registry)}" has port ${clip(port)} outside 1-65535`);
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem) return fail('digest', problem);
  }
  const ref: ImageRef = {
    registry,
    endpoint: registryEndpoint(registry),
    repository,
    normalized: '',
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = DEFAULT_TAG;
  ref.normalized = `${registry}/${repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  return { ok: true, ref };
}

/**
 * A target with no "/", no "@", and a host part that has a "." (before any
 * ":"), is "localhost", or is a bracketed IPv6 address is a bare registry;
 * anything else is an image reference.
 */
export function parseTarget(s: string, kind?: 'image' | 'registry'): TargetParse {
  if (kind !== 'image' && !s.includes('/') && !s.includes('@')) {
    const host = s.startsWith('[') ? s.slice(0, s.indexOf(']') + 1) : (s.split(':')[0] ?? '');
    // Without a declared kind, `name:5000` reads as a Docker Hub image with a
    // tag (as distribution/reference does); `registry:` in the config says otherwise.
    if (kind === 'registry' || host.startsWith('[') || host.includes('.') || host === 'localhost') {
      if (!DOMAIN_AND_PORT_RE.test(s)) {
        return {
          ok: false,
          problem: 'format',
          message: `invalid registry "${clip(s)}": expected host[:port] (domain name, IPv4 or [IPv6])`,
        };
      }
      const port = badPort(s);
      if (port !== undefined) {
        return { ok: false, problem: 'port', message: `invalid registry "${clip(s)}": port ${clip(port)} outside 1-65535` };
      }
      const registry = s.toLowerCase() === LEGACY_DOCKER_HUB ? DOCKER_HUB : s;
      return { ok: true, target: { kind: 'registry', input: s, registry, endpoint: registryEndpoint(registry) } };
    }
  }
  const parsed = parseImageReference(s);
  if (!parsed.ok) return parsed;
  return { ok: true, target: { kind: 'image', input: s, ref: parsed.ref } };
}
