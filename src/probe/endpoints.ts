/**
 * The endpoints containerd would try for a target, in its order, with what
 * each needs on the wire: hosts.toml mirrors first then the server (or, with
 * a config.toml that has no config_path, its deprecated `registry.mirrors`),
 * capability filtering, trust (`ca`, `skip_verify`), client certificates,
 * headers, `override_path`, `dial_timeout`, the `?ns=` of a mirror, and the
 * proxy containerd's environment sends that host through.
 */
import { readFileSync } from 'node:fs';
import type { Log } from '../model/types.js';
import type { Target } from '../model/reference.js';
import type { ProbeEnvironment } from '../node-config/environment.js';
import { endpointsFor, resolveRegistryHosts, type RegistryHosts } from '../node-config/hosts-toml.js';
import { legacyRegistryHosts } from '../node-config/containerd-legacy.js';
import type { RegistryEndpoint } from '../node-config/registry-endpoint.js';
import { loadTrust } from '../node-config/trust.js';
import { proxyFor } from '../node-config/proxy-env.js';
import { splitHostPort, type Endpoint } from './endpoint-walk.js';

/** An endpoint to walk, and what the result should say about the road it took. */
export interface PlannedEndpoint {
  endpoint: Endpoint;
  /** The host containerd contacts (URL host): the key of `registry.configs."<host>".auth`. */
  authority: string;
}

export interface EndpointPlan {
  endpoints: PlannedEndpoint[];
  notes: string[];
  /** Header values from hosts.toml / config.toml (may be secrets: scrubbed from the result). */
  headerValues: string[];
}

/** "mirror:443" → "mirror" for https (and ":80" for http), as image names write hosts. */
function urlHost(ep: RegistryEndpoint): string {
  const dflt = ep.scheme === 'http' ? ':80' : ':443';
  return ep.host.endsWith(dflt) ? ep.host.slice(0, -dflt.length) : ep.host;
}

/** A client certificate file, read as the CA files are (paths as resolved from the certs.d directory). */
function readPem(path: string): string {
  return readFileSync(path, 'utf8');
}

/** The endpoints containerd would try for this target, in order, with their trust. */
export async function planEndpoints(target: Target, env: ProbeEnvironment, log: Log): Promise<EndpointPlan> {
  const registry = target.kind === 'image' ? target.ref.registry : target.registry;
  const road = env.road;
  // The proxy containerd's environment names for the host: HTTPS_PROXY for https (a CONNECT
  // tunnel), HTTP_PROXY for plain http (requests sent to the proxy in absolute form), as Go's
  // ProxyFromEnvironment picks by the request's scheme.
  const withProxy = (endpoint: Endpoint): Endpoint => {
    if (!road?.proxy) return endpoint;
    const { host, port } = splitHostPort(endpoint.endpoint, endpoint.scheme === 'http' ? 80 : 443);
    const proxy = proxyFor(road.proxy, endpoint.scheme, host, port);
    return proxy ? { ...endpoint, proxy } : endpoint;
  };
  const fallbackHost = target.kind === 'image' ? target.ref.endpoint : target.endpoint;
  const fallback = (): PlannedEndpoint => ({
    endpoint: withProxy({ endpoint: fallbackHost, scheme: 'https', ca: env.ca, skipVerify: false }),
    authority: fallbackHost,
  });
  const notes: string[] = [];
  const headerValues: string[] = [];

  let hosts: RegistryHosts;
  const choice = road?.configPath;
  // config.toml's registry.headers go to every endpoint, before each host's own values (as containerd sends both).
  const global = road?.containerd?.ok ? road.containerd.headers : {};
  // The running containerd's major version, read only when the endpoints depend on it.
  const major = (): number | undefined => {
    const v = road?.containerdVersion();
    return v?.ok ? v.version.major : undefined;
  };
  // containerd 2.x reads a hosts.toml without a [host] table; 1.6 and 1.7 before containerd#10028 do not.
  const where = { hostRoot: env.hostRoot, headers: global, rejectHostless: (): boolean => (major() ?? 1) < 2 };
  try {
    if (choice?.legacy === true) {
      hosts = legacyRegistryHosts(road?.containerd, registry, { hostRoot: env.hostRoot });
      // A config.toml for 1.x without config_path: 1.x ignores certs.d, 2.x reads its default roots. Only
      // where those hold a host directory for this registry does it matter which one runs.
      if (choice.versionDecides) {
        const certsD = await resolveRegistryHosts(choice.versionDecides.paths, registry, env.nodeFiles?.hostsFs, where);
        const v = certsD.source !== null ? road?.containerdVersion() : undefined;
        if (v?.ok && v.version.major >= 2) hosts = certsD;
        else if (v && !v.ok) {
          notes.push(
            `${certsD.source ?? ''}: containerd 2.x uses it (config.toml sets no config_path), containerd 1.x does not; ` +
              `which containerd runs here is unknown (${v.problem}), so ${registry} was probed as containerd 1.x reaches it`,
          );
        }
      }
    } else {
      const paths = choice ? choice.paths : env.containerdConfigPath;
      if (paths.length === 0) return { endpoints: [fallback()], notes, headerValues };
      hosts = await resolveRegistryHosts(paths, registry, env.nodeFiles?.hostsFs, where);
    }
  } catch (err) {
    // An unreadable hosts.toml fails every pull in containerd too; say so and probe the registry itself.
    return { endpoints: [fallback()], notes: [(err as Error).message], headerValues };
  }
  notes.push(...hosts.warnings);
  const need = target.kind === 'image' && target.ref.digest === undefined ? 'resolve' : 'pull';
  const endpoints: PlannedEndpoint[] = [];
  for (const ep of endpointsFor(hosts, target.kind === 'image' ? need : 'resolve')) {
    if (ep.duplicateOf !== null) continue; // containerd's second try of the same URL adds nothing to a diagnosis
    let ca = env.ca;
    if (ep.caFiles.length > 0) {
      try {
        ca = env.nodeFiles
          ? env.nodeFiles.endpointCa(ep.caFiles)
          : [...env.ca, ...loadTrust(ep.caFiles).ca.filter((c) => !env.ca.includes(c))];
      } catch (err) {
        notes.push((err as Error).message);
      }
    }
    const scheme = ep.scheme === 'http' ? 'http' : 'https';
    const endpoint: Endpoint = { endpoint: urlHost(ep), scheme, ca, skipVerify: ep.skipVerify };
    if (scheme === 'https' && ep.httpFallback === true) endpoint.httpFallback = true;
    if (ep.path !== '/v2') endpoint.path = ep.path;
    if (Object.keys(ep.headers).length > 0) {
      endpoint.headers = ep.headers;
      headerValues.push(...Object.values(ep.headers).flat());
    }
    const cc = ep.clientCerts[0];
    if (cc) {
      try {
        endpoint.clientCert = { cert: readPem(cc.cert), key: readPem(cc.key) };
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        notes.push(
          `${cc.cert}: cannot read the client certificate (${typeof code === 'string' ? code : 'error'}): containerd fails every pull of ${registry}`,
        );
      }
    }
    if (ep.dialTimeoutMs !== undefined) endpoint.dialTimeoutMs = ep.dialTimeoutMs;
    if (ep.isMirror) endpoint.ns = ep.namespace;
    endpoints.push({ endpoint: withProxy(endpoint), authority: ep.authority });
  }
  if (notes.length) log.debug({ registry, notes }, 'containerd host configuration');
  return { endpoints: endpoints.length ? endpoints : [fallback()], notes, headerValues };
}
