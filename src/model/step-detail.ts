/**
 * The `detail` each step of a ProbeResult carries, typed per stage. These are
 * the shapes the stages in src/probe/stages/ build (they re-export them); the
 * keys are the public JSON contract, so a field is added on purpose and never
 * renamed. Plain data only: no class, nothing that serialises differently.
 */
import type { Cause, Reason, Stage } from '../diagnosis/catalog.js';

/** The reference step: what the target names and the endpoints containerd would try. */
export type ReferenceDetail =
  | { image: string; endpoint: string; endpoints?: string[]; notes?: string[] }
  | { registry: string; endpoint: string; endpoints?: string[]; notes?: string[] };

export interface DnsNameserverResult {
  /** "ip", or "ip:port" / "[ip6]:port" when the port is not 53. */
  server: string;
  rcode: string | null;
  /** 'timeout' or 'unreachable' when no reply came. */
  error?: 'timeout' | 'unreachable';
  /** OS error code behind an unreachable server (ECONNREFUSED, EHOSTUNREACH, …). */
  code?: string;
  addresses?: string[];
  seconds: number;
}

export type DnsCandidateOutcome = 'ok' | 'nxdomain' | 'no_answer' | 'servfail' | 'refused' | 'timeout' | 'unreachable';

export interface DnsCandidateResult {
  name: string;
  outcome: DnsCandidateOutcome;
  nameservers: DnsNameserverResult[];
}

export interface DnsDetail {
  addresses: string[];
  source: 'literal' | 'hosts' | 'dns';
  /** The candidate that resolved, or the one whose result is the verdict. */
  name: string;
  nameservers: DnsNameserverResult[];
  /** Every candidate queried, in glibc's order (only when more than one). */
  tried?: DnsCandidateResult[];
  /** resolv.conf problems glibc silently tolerates. */
  warnings?: string[];
  /** The resolv.conf the nameservers came from (after links and systemd-resolved's stub). */
  resolvConf?: string;
  /** Problems reading the node's files (unreadable resolv.conf, hosts, CA or docker config), each naming the file. */
  problems?: string[];
}

export interface TcpAddressResult {
  address: string;
  ok: boolean;
  /** OS error code ("ECONNREFUSED", "ETIMEDOUT" for our own timeout). */
  error?: string;
  seconds: number;
}

export interface TcpDetail {
  addresses: TcpAddressResult[];
  /** Addresses that connected, in input order. */
  connected: string[];
}

export interface TlsChainEntry {
  subject: string;
  issuer: string;
  notAfter: string;
}

export interface TlsDetail {
  address: string;
  protocol?: string;
  cipher?: string;
  subject?: string;
  issuer?: string;
  sans?: string[];
  notBefore?: string;
  notAfter?: string;
  /** Earliest notAfter in the chain (RFC3339) and the same in epoch seconds, for metrics. */
  earliestExpiry?: string;
  earliestExpirySeconds?: number;
  chain?: TlsChainEntry[];
  /** OpenSSL's chain verification code (UNABLE_TO_VERIFY_LEAF_SIGNATURE, …). */
  authorizationError?: string;
  /** Error code when the handshake itself failed. */
  error?: string;
}

/** A localhost registry's port answered the TLS handshake in plain HTTP: containerd goes on in http. */
export interface PlainHttpDetail {
  plainHttp: true;
  error: string;
  fallback: 'http';
  note: string;
}

/** A WWW-Authenticate challenge (www-authenticate.ts parses them). */
export interface ChallengeDetail {
  scheme: 'bearer' | 'basic' | 'digest';
  params: Record<string, string>;
}

export interface HttpDetail {
  status?: number;
  /** Docker-Distribution-API-Version ("registry/2.0"). */
  apiVersion?: string;
  challenges: ChallengeDetail[];
  /** Transport error code when no status was received. */
  error?: string;
  /** The request that decided the step ("HEAD /v2/<repo>/manifests/<ref>", or "GET /v2/"). */
  request?: string;
  /** Connections dialled during this endpoint's walk beyond those the TCP/TLS stages handed over (e.g. the server closed one). */
  redials?: number;
}

export interface AuthDetail {
  scheme: 'none' | 'basic' | 'bearer';
  /** Basic: the realm text; Bearer: scheme://host/path of the token service (never userinfo or query). */
  realm?: string;
  /** Bearer: host[:port] of the token service the node was sent to. */
  realmHost?: string;
  /** Bearer over an http: realm: the credentials were not sent (cleartext), the token was asked for anonymously. */
  credentialsWithheld?: boolean;
  service?: string;
  scope?: string;
  tokenCached?: boolean;
  tokenExpiresIn?: number;
  /** How the token was asked for: OAuth POST (containerd's first try with a secret) or GET. */
  tokenMethod?: 'POST' | 'GET';
  /** The POST's status when it fell back to GET (400, 401, 404, or 405 with a username), as containerd does. */
  tokenPostStatus?: number;
  credentialSource?: string;
  /** Status of the token request or of the verifying GET /v2/. */
  status?: number;
  error?: string;
}

/** Docker Hub's ratelimit-* headers. */
export interface RateLimitDetail {
  limit?: number;
  remaining?: number;
  windowSeconds?: number;
  /** docker-ratelimit-source: the address being limited. */
  source?: string;
}

export interface ManifestDetail {
  status?: number;
  digest?: string;
  mediaType?: string;
  contentLength?: number;
  ratelimit?: RateLimitDetail;
  retryAfterSeconds?: number;
  /** Registry error codes from the body, when there was one. */
  errors?: string[];
  /** The node platform looked for, and what the index offers. */
  platform?: string;
  platformDigest?: string;
  /** The index for this digest was read by an earlier probe (no GET this time). */
  indexCached?: boolean;
  platforms?: string[];
  /** Distinct platforms the index lists in all (`platforms` names the first few). */
  platformCount?: number;
  /** Origins a redirect led to (scheme://host only). */
  redirects?: string[];
  /** A redirect refused before any connection (link-local or metadata address): its origin. */
  redirect?: string;
  /** The request that decided the step ("HEAD /v2/<repo>/manifests/<ref>"). */
  request?: string;
  /** The HEAD's answer was the http step's (no second request). */
  reused?: boolean;
  /** Existing tags nearest to the missing one. */
  nearestTags?: string[];
  error?: string;
}

/** The runtime stage (CRI pull): the runtime's failure text classified with the explain table. */
export interface RuntimeDetail {
  /** The CRI endpoint ("unix:///run/containerd/containerd.sock"). */
  endpoint: string;
  /** From Version: "containerd", "1.6.20~ds1", "v1". */
  runtimeName?: string;
  runtimeVersion?: string;
  runtimeApiVersion?: string;
  /** The AuthConfig sent with PullImage: none (the kubelet's nil), username/password, or an identity token. Never the secret. */
  auth: 'none' | 'basic' | 'identity_token';
  /** PullImage's answer (containerd: the image id) and ImageStatus's image. */
  imageRef?: string;
  imageId?: string;
  repoDigests?: string[];
  size?: number;
  /** The CRI call that failed, its gRPC status name ("NOT_FOUND", "UNKNOWN", "DEADLINE_EXCEEDED"…), and the OS error behind a failed connection (ENOENT, ECONNREFUSED, EACCES). */
  call?: 'Version' | 'PullImage' | 'ImageStatus';
  grpcStatus?: string;
  error?: string;
  /** The probe's deadline ended the call before the runtime answered. */
  timedOut?: boolean;
  /** The runtime's failure text classified with the explain table; null when nothing known matches (or the stage is ok). */
  classified: { stage: Stage; reason: Reason; cause: Cause } | null;
}

/** A registry request's detail (GET /v2/, the token request, the manifest request). */
export type RequestDetail = HttpDetail | AuthDetail | ManifestDetail;

/**
 * The detail a step filed under each stage may carry. A step is filed under
 * its reason's stage, so a registry request that failed to connect (ENOTFOUND,
 * a refused or reset connection, a certificate) or timed out sits under dns,
 * tcp, tls or http with its own request's detail, and a manifest request
 * refused with 401 sits under auth.
 */
export interface StepDetails {
  reference: ReferenceDetail;
  dns: DnsDetail | RequestDetail;
  tcp: TcpDetail | RequestDetail;
  tls: TlsDetail | PlainHttpDetail | RequestDetail;
  http: RequestDetail;
  auth: AuthDetail | ManifestDetail;
  manifest: ManifestDetail;
  runtime: RuntimeDetail;
}
