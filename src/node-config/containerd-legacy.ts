/**
 * The endpoints containerd's CRI plugin tries when config.toml has no `config_path`: the
 * deprecated `registry.mirrors` and `registry.configs.<host>.tls` (containerd 1.6/1.7
 * pkg/cri/server/image_pull.go registryHosts + registryEndpoints; 2.x falls back to the same
 * code when these are set).
 *
 * - `mirrors."<registry>"` if that key exists (even with no endpoints), else `mirrors."*"`.
 * - An endpoint without "://" gets http:// for a localhost/loopback host, https:// otherwise.
 * - The registry's default endpoint (https://registry-1.docker.io for docker.io,
 *   http://localhost:PORT for a local registry) is appended last unless an endpoint's host is
 *   the registry host itself. containerd compares with "docker.io", so a listed
 *   registry-1.docker.io is tried twice.
 * - The URL's path is used as it is, "/v2" only when it has none: "https://m/v2/proxy" sends
 *   requests under /v2/proxy, and "https://m/" under / (no /v2).
 * - `configs."<endpoint host>".tls` gives its CA, client certificate and skip-verify.
 * - `registry.headers` go to every endpoint. Capabilities are pull + resolve.
 */
import { DOCKER_HUB, DOCKER_HUB_ENDPOINT } from '../model/reference.js';
import type { ContainerdConfig } from './containerd-config.js';
import type { RegistryHosts } from './hosts-toml.js';
import {
  isLocalhost,
  makeEndpoint,
  markDuplicates,
  onNode,
  parseEndpointUrl,
  withoutUserinfo,
  type ClientCert,
  type RegistryEndpoint,
} from './registry-endpoint.js';

/** CRI defaultScheme: plain HTTP for localhost and loopback hosts. */
const defaultScheme = (host: string): string => (isLocalhost(host) ? 'http' : 'https');

/** What Go's url.Parse("dummy://" + endpoint).Host gives: the authority, userinfo removed. */
const dummyHost = (endpoint: string): string => /^(?:[^@/?#]*@)?([^/?#]*)/.exec(endpoint)?.[1] ?? '';

export interface LegacyOptions {
  /** Where the node's filesystem is mounted ("/host"): configs.tls file paths are node paths. */
  hostRoot?: string;
}

export function legacyRegistryHosts(cfg: ContainerdConfig | null | undefined, registry: string, opts: LegacyOptions = {}): RegistryHosts {
  const ok = cfg?.ok === true ? cfg : null;
  const warnings: string[] = [];
  const mirrors = ok?.mirrors ?? {};
  const key = Object.hasOwn(mirrors, registry) ? registry : '*';
  const listed = (Object.hasOwn(mirrors, key) ? mirrors[key] : undefined) ?? [];
  const defaultHost = registry === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;

  const urls = listed.map((e) => (e.includes('://') ? e : `${defaultScheme(dummyHost(e))}://${e}`));
  const parsed = urls.map((u) => ({ url: u, p: parseEndpointUrl(u) }));
  const hasOwnHost = parsed.some(({ p }) => p?.authority === registry);
  if (!hasOwnHost)
    parsed.push({
      url: `${defaultScheme(defaultHost)}://${defaultHost}`,
      p: parseEndpointUrl(`${defaultScheme(defaultHost)}://${defaultHost}`),
    });

  const endpoints: RegistryEndpoint[] = [];
  for (const [i, { url, p }] of parsed.entries()) {
    const isDefault = i >= urls.length;
    if (p === null || p.authority === '') {
      warnings.push(
        `${ok?.file ?? 'config.toml'}: ${ok?.section ?? 'registry'}.mirrors.${JSON.stringify(key)} endpoint ${JSON.stringify(withoutUserinfo(url))} is not a URL with a host: containerd fails every pull of ${registry}`,
      );
      continue;
    }
    const tls = ok && Object.hasOwn(ok.configs, p.authority) ? ok.configs[p.authority]?.tls : undefined;
    const node = (f: string): string => onNode(f, opts.hostRoot);
    const clientCerts: ClientCert[] =
      tls && tls.certFile !== '' && tls.keyFile !== '' ? [{ cert: node(tls.certFile), key: node(tls.keyFile) }] : [];
    endpoints.push(
      makeEndpoint(`${p.scheme}://${p.authority}${p.path === '' ? '/v2' : p.path}`, registry, isDefault || p.authority === registry, {
        capabilities: ['pull', 'resolve'],
        caFiles: tls && tls.caFile !== '' ? [node(tls.caFile)] : [],
        clientCerts,
        skipVerify: tls?.insecureSkipVerify ?? false,
        overridePath: false,
        headers: ok?.headers ?? {},
      }),
    );
  }
  for (const e of endpoints) {
    if (e.path !== '/v2' && !e.path.endsWith('/v2') && !e.path.startsWith('/v2/'))
      warnings.push(
        `${withoutUserinfo(e.url)}: requests go to ${withoutUserinfo(e.url)}/<image>/manifests/…, without /v2 (containerd uses a mirror URL's path as it is)`,
      );
  }
  warnings.push(
    ...markDuplicates(
      endpoints,
      `containerd adds https://${defaultHost} after the mirrors unless an endpoint's host is ${registry} itself; remove the repeated endpoint`,
    ),
  );
  return { registry, source: ok?.file ?? null, hostDir: null, mode: 'config-toml', endpoints, warnings };
}

/** The endpoints alone (see legacyRegistryHosts for the warnings). */
export function legacyEndpoints(cfg: ContainerdConfig | null | undefined, registry: string, opts: LegacyOptions = {}): RegistryEndpoint[] {
  return legacyRegistryHosts(cfg, registry, opts).endpoints;
}
