/**
 * Registry request URLs as containerd builds them for one host: the API
 * path ("/v2", or an override_path endpoint's own), the repository and
 * reference, and `?ns=<namespace>` when the host serves a namespace other
 * than its own (a mirror; containerd's docker resolver adds it).
 */

/** containerd's resolve Accept list, in its order (resolver.go:164-171). */
export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  '*/*',
] as const;

export const DEFAULT_API_PATH = '/v2';

/** "/v2", "/registry/v2": one leading slash, no trailing one. */
export function apiPath(path: string | undefined): string {
  const p = (path ?? DEFAULT_API_PATH).replace(/\/+$/, '');
  return p.startsWith('/') ? p : `/${p}`;
}

/** "?ns=docker.io" or "". */
export function nsQuery(ns: string | undefined): string {
  return ns ? `?ns=${encodeURIComponent(ns)}` : '';
}

/** "/v2/<repo>/manifests/<ref>[?ns=…]": the request line's target, as shown in details and messages. */
export function manifestTarget(path: string | undefined, repository: string, reference: string, ns?: string): string {
  return `${apiPath(path)}/${repository}/manifests/${reference}${nsQuery(ns)}`;
}
