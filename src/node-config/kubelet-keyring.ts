/**
 * The kubelet's credential keyring, exactly (pull-path-facts §3.3;
 * kubernetes pkg/credentialprovider/keyring.go `BasicDockerKeyring`, `URLsMatch`):
 *
 * - a key ("https://index.docker.io/v1/", "*.dkr.ecr.*.amazonaws.com", "reg.io/team")
 *   is indexed as URL host + path, a leading /v1/ or /v2/ dropped, "/" meaning the host;
 * - the index is sorted in reverse byte order, so "quay.io/coreos" is tried before "quay.io";
 *   credentials under one key stay in the order they were added;
 * - a key matches an image ("registry.lab.test/lab/probe", no tag) when the ports are
 *   equal, the hosts have the same number of labels, each label matches as a Go
 *   `filepath.Match` glob, and the key's path is a prefix of the image's path;
 * - nothing matched and the image is a Docker Hub name: the credentials under
 *   "index.docker.io".
 *
 * The same matcher decides which credential-provider plugins an image goes to
 * (`matchImages`, kubelet `isImageAllowed`). Pure functions.
 */
import { labelMatch } from './label-glob.js';

/** Go's url.Parse("https://" + s) reduced to what the keyring reads: host (with port) and path. null when Go fails. */
export function parseSchemeless(s: string): { host: string; path: string } | null {
  let rest = s;
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  if (q !== -1) rest = rest.slice(0, q);
  const slash = rest.indexOf('/');
  let authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const at = authority.lastIndexOf('@');
  if (at !== -1) authority = authority.slice(at + 1);
  // Go rejects a port that is not all digits ("invalid port") and a space or control character in the host.
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(authority)) return null;
  const colon = authority.startsWith('[') ? authority.indexOf(':', authority.indexOf(']')) : authority.lastIndexOf(':');
  if (colon !== -1 && !/^\d*$/.test(authority.slice(colon + 1))) return null;
  return { host: authority, path };
}

/** Go net.SplitHostPort, falling back (as the kubelet does on its error) to the whole host and no port. */
function splitHostPort(hostPort: string): { labels: string[]; port: string } {
  let host = hostPort;
  let port = '';
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    if (end !== -1 && hostPort[end + 1] === ':' && hostPort.indexOf(':', end + 2) === -1) {
      host = hostPort.slice(1, end);
      port = hostPort.slice(end + 2);
    }
  } else {
    const colon = hostPort.indexOf(':');
    if (colon !== -1 && colon === hostPort.lastIndexOf(':')) {
      host = hostPort.slice(0, colon);
      port = hostPort.slice(colon + 1);
    }
  }
  return { labels: host.split('.'), port };
}

/** kubelet URLsMatchStr(glob, target): ports equal, same label count, per-label glob, path prefix. */
export function urlsMatch(glob: string, target: string): boolean {
  const g = parseSchemeless(glob);
  const t = parseSchemeless(target);
  if (g === null || t === null) return false;
  const gs = splitHostPort(g.host);
  const ts = splitHostPort(t.host);
  if (gs.port !== ts.port) return false;
  if (gs.labels.length !== ts.labels.length) return false;
  if (!t.path.startsWith(g.path)) return false;
  return gs.labels.every((label, i) => labelMatch(label, ts.labels[i] ?? ''));
}

/** The index key the kubelet files a credential key under (BasicDockerKeyring.Add); null when Go's url.Parse fails. */
export function keyringKey(loc: string): string | null {
  const value = /^https?:\/\//.test(loc) ? loc.replace(/^https?:\/\//, '') : loc;
  const parsed = parseSchemeless(value);
  if (parsed === null) return null;
  let path = parsed.path;
  if (path.startsWith('/v2/') || path.startsWith('/v1/')) path = path.slice(3);
  return path.length > 0 && path !== '/' ? parsed.host + path : parsed.host;
}

/** kubelet isDefaultRegistryMatch: the image string names a Docker Hub repository. */
export function isDefaultRegistryMatch(image: string): boolean {
  const slash = image.indexOf('/');
  const first = slash === -1 ? image : image.slice(0, slash);
  if (first === '') return false;
  if (slash === -1) return true;
  if (first === 'docker.io' || first === 'index.docker.io') return true;
  return !/[.:]/.test(first);
}

const DEFAULT_REGISTRY_HOST = 'index.docker.io';

/** Go's sort.Reverse(sort.StringSlice): byte order, descending. */
function compareBytesDesc(a: string, b: string): number {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return Buffer.compare(bb, ab);
}

/**
 * BasicDockerKeyring: entries added in order (each has its raw `key`), looked up for
 * `image` (a repository without tag, as the kubelet passes it). Returns every matching
 * entry in the order the kubelet tries them.
 */
export function keyringLookup<E extends { key: string }>(entries: readonly E[], image: string): E[] {
  const byKey = new Map<string, E[]>();
  for (const e of entries) {
    const k = keyringKey(e.key);
    if (k === null) continue;
    const list = byKey.get(k);
    if (list) list.push(e);
    else byKey.set(k, [e]);
  }
  const index = [...byKey.keys()].sort(compareBytesDesc);
  const out: E[] = [];
  for (const k of index) if (urlsMatch(k, image)) out.push(...(byKey.get(k) ?? []));
  if (out.length > 0) return out;
  if (isDefaultRegistryMatch(image)) return [...(byKey.get(DEFAULT_REGISTRY_HOST) ?? [])];
  return [];
}
