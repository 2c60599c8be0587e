/**
 * The closed set of stages, reasons and causes (design.md "stage × reason",
 * "cause"), with the seed's wording and the fix for each reason. Metrics,
 * alerts, `explain` and the CLI all read this one table.
 */

export const STAGES = ['reference', 'dns', 'tcp', 'tls', 'http', 'auth', 'manifest', 'runtime'] as const;
export type Stage = (typeof STAGES)[number];

/**
 * `node`: the node itself (its container runtime, disk, pull policy).
 * `internal`: a bug in pullprobe, never disguised as a network fault.
 */
export const CAUSES = ['name', 'missing', 'credentials', 'network', 'registry', 'node', 'internal'] as const;
export type Cause = (typeof CAUSES)[number];

interface ReasonInfo {
  /** The stage this reason belongs to; null for `internal_error`, which can happen in any stage. */
  readonly stage: Stage | null;
  readonly cause: Cause;
  /** Short message in the seed's words where a seed row fits. */
  readonly message: string;
  /** The fix. */
  readonly hint: string;
}

const NET_NODE = "from this node's subnet";

export const REASONS = {
  invalid_reference: {
    stage: 'reference',
    cause: 'name',
    message: 'invalid reference format',
    hint: 'Fix the image string in the pod spec: registry/repository:tag, lowercase repository, valid tag or digest.',
  },
  dns_nxdomain: {
    stage: 'dns',
    cause: 'network',
    message: 'no such host',
    hint: "Registry DNS not resolving on the node: check the host name, the node's resolv.conf and the VPC/private DNS zone configuration.",
  },
  dns_no_answer: {
    stage: 'dns',
    cause: 'network',
    message: 'no such host',
    hint: 'The name exists but has no A/AAAA record: check the DNS zone for the registry host (a missing record, or only a CNAME to nowhere).',
  },
  dns_servfail: {
    stage: 'dns',
    cause: 'network',
    message: 'server misbehaving',
    hint: "The node's nameserver failed to resolve the registry (SERVFAIL): check the resolver's upstreams, DNSSEC, and the VPC DNS configuration.",
  },
  dns_refused: {
    stage: 'dns',
    cause: 'network',
    message: 'server misbehaving',
    hint: "The node's nameserver refused the query (REFUSED): check that the resolver in the node's resolv.conf serves this node's subnet and allows recursion.",
  },
  dns_timeout: {
    stage: 'dns',
    cause: 'network',
    message: 'context deadline exceeded',
    hint: `The node's nameserver did not answer: check that UDP/TCP 53 to the resolver is allowed ${NET_NODE} and that the resolver is up.`,
  },
  dns_unreachable: {
    stage: 'dns',
    cause: 'network',
    message: 'connection refused',
    hint: "The nameserver in the node's resolv.conf is unreachable (ICMP unreachable): check the resolver address, that it listens on port 53, and the route to it.",
  },
  tcp_refused: {
    stage: 'tcp',
    cause: 'network',
    message: 'connection refused',
    hint: `Registry unreachable on its port ${NET_NODE}: check firewall rules and the security group for the node's subnet, and that the registry listens on that port.`,
  },
  tcp_timeout: {
    stage: 'tcp',
    cause: 'network',
    message: 'context deadline exceeded',
    hint: `Network timeout to the registry ${NET_NODE}: check VPC route tables, the NAT gateway, firewall DROP rules, or the proxy configuration.`,
  },
  tcp_unreachable: {
    stage: 'tcp',
    cause: 'network',
    message: 'no route to host',
    hint: `No route to the registry ${NET_NODE} (ICMP unreachable): check the subnet's route table, network ACLs and firewall REJECT rules.`,
  },
  tls_unknown_ca: {
    stage: 'tls',
    cause: 'network',
    message: 'x509: certificate signed by unknown authority',
    hint: "The registry's certificate is not trusted on this node: install the registry's CA (containerd certs.d/<host>/ca.crt or hosts.toml `ca`), or check for a TLS-intercepting proxy.",
  },
  tls_expired: {
    stage: 'tls',
    cause: 'network',
    message: 'x509: certificate has expired or is not yet valid',
    hint: "The registry's certificate has expired (or is not yet valid): renew it on the registry, and check the node's clock.",
  },
  tls_hostname_mismatch: {
    stage: 'tls',
    cause: 'network',
    message: 'x509: certificate is valid for other names',
    hint: "The registry's certificate does not name the host being pulled from: fix the image's registry host or reissue the certificate with the right SAN.",
  },
  tls_handshake: {
    stage: 'tls',
    cause: 'network',
    message: 'tls handshake failed',
    hint: 'The TLS handshake failed: check that the port speaks TLS (not plain HTTP), protocol/cipher support, and any middlebox on the path.',
  },
  tls_timeout: {
    stage: 'tls',
    cause: 'network',
    message: 'context deadline exceeded',
    hint: 'The TLS handshake timed out: check for a proxy or firewall that accepts the connection but drops the traffic, and the MTU on the path.',
  },
  http_timeout: {
    stage: 'http',
    cause: 'network',
    message: 'context deadline exceeded',
    hint: 'The registry accepted the connection but did not answer in time: check the registry health, load balancer and any proxy between the node and the registry.',
  },
  http_status: {
    stage: 'http',
    cause: 'registry',
    message: 'unexpected status from registry',
    hint: 'The registry answered with a server error: check the registry (or its load balancer) health and logs.',
  },
  not_a_registry: {
    stage: 'http',
    cause: 'registry',
    message: 'not a registry',
    hint: 'The host answered HTTP but not as an OCI/Docker registry (GET /v2/ is not 200 or 401): check the registry host and port in the image name, or a captive proxy/portal.',
  },
  proxy_error: {
    stage: 'http',
    cause: 'network',
    message: 'proxy error',
    hint: 'An HTTP proxy on the path failed the request: check HTTPS_PROXY (HTTP_PROXY for a plain-http registry) and NO_PROXY for the container runtime, and the proxy itself.',
  },
  auth_required: {
    stage: 'auth',
    cause: 'credentials',
    message: 'unauthorized: authentication required',
    hint: "The registry needs credentials and none were offered: create an imagePullSecret (kubernetes.io/dockerconfigjson) in the pod's namespace and reference it, or configure node credentials. Many registries also answer 401 for a repository that does not exist: check the name too.",
  },
  auth_rejected: {
    stage: 'auth',
    cause: 'credentials',
    message: 'unauthorized: authentication required',
    hint: 'The credentials were refused: refresh the imagePullSecret (expired token? ECR tokens last 12 h) and verify the username and password.',
  },
  access_denied: {
    stage: 'auth',
    cause: 'credentials',
    message: 'pull access denied',
    hint: 'Authenticated, but not allowed to pull this repository: grant the account pull access, or check the repository name (private image, wrong credentials).',
  },
  token_error: {
    stage: 'auth',
    cause: 'network',
    message: 'failed to fetch token',
    hint: "The registry's token service failed (error, hang, or no token in its answer): check that the token service is healthy and reachable from this node.",
  },
  manifest_unknown: {
    stage: 'manifest',
    cause: 'missing',
    message: 'manifest unknown',
    hint: 'The tag does not exist in the registry: push the correct tag, or fix the tag name in the deployment.',
  },
  name_unknown: {
    stage: 'manifest',
    cause: 'name',
    message: 'name unknown',
    hint: 'The repository does not exist in the registry: fix the repository path in the image name (typo, missing namespace/organisation).',
  },
  platform_missing: {
    stage: 'manifest',
    cause: 'missing',
    message: 'no match for platform in manifest',
    hint: "The image index has no entry for this node's platform: build and push the image for this OS/architecture, or schedule the pod onto matching nodes.",
  },
  rate_limited: {
    stage: 'manifest',
    cause: 'registry',
    message: 'toomanyrequests: rate limit reached',
    hint: "The registry is rate-limiting pulls from this node's egress IP: authenticate pulls, use a mirror/pull-through cache, or wait for the window in Retry-After.",
  },
  runtime_unavailable: {
    stage: 'runtime',
    cause: 'node',
    message: 'container runtime unavailable',
    hint: 'The CRI socket did not answer: check that containerd is running and the socket path is mounted into the agent.',
  },
  runtime_pull_failed: {
    stage: 'runtime',
    cause: 'node',
    message: 'runtime pull failed',
    hint: "The container runtime could not pull the image although the HTTP path works: compare the runtime's registry config (hosts.toml, proxy env, credentials) with this probe, and check the node's disk space.",
  },
  never_pull: {
    stage: 'runtime',
    cause: 'node',
    message: 'image is not present with pull policy of Never',
    hint: 'The pod says imagePullPolicy: Never and the image is not on this node: load the image onto the node first, or set imagePullPolicy to IfNotPresent.',
  },
  internal_error: {
    stage: null,
    cause: 'internal',
    message: 'pullprobe internal error',
    hint: 'pullprobe itself failed while probing (a bug, not a network fault): please report it with this message; the result says nothing about the registry.',
  },
} as const satisfies Record<string, ReasonInfo>;

export type Reason = keyof typeof REASONS;

export function reasonInfo(reason: Reason): ReasonInfo {
  return REASONS[reason];
}

export function causeOf(reason: Reason): Cause {
  return REASONS[reason].cause;
}

/** The reason's stage; null for `internal_error`, whose stage is where it happened. */
export function stageOf(reason: Reason): Stage | null {
  return REASONS[reason].stage;
}

export function isReason(value: string): value is Reason {
  return Object.hasOwn(REASONS, value);
}
