/**
 * The project's errors, in one place (after undici's lib/core/errors.js): one
 * class per failure kind, each with its `name` and a literal, stable `code`
 * that callers and tests match on — never the message text. Every code starts
 * with `PULLPROBE_`. A lower-level error goes in `cause`, except where its
 * text could quote a secret (JSON.parse of a docker config quotes its input).
 *
 * The modules that throw these re-export them where they were first defined
 * (`TrustError` from node-config/trust.ts, …), so either import works.
 */

export const ERROR_CODES = {
  usage: 'PULLPROBE_USAGE',
  fileUnreadable: 'PULLPROBE_FILE_UNREADABLE',
  trust: 'PULLPROBE_TRUST',
  hostsToml: 'PULLPROBE_HOSTS_TOML',
  dockerConfig: 'PULLPROBE_DOCKER_CONFIG',
  credentialProviderConfig: 'PULLPROBE_CREDENTIAL_PROVIDER_CONFIG',
  reportInput: 'PULLPROBE_REPORT_INPUT',
  deadline: 'PULLPROBE_DEADLINE',
  runAborted: 'PULLPROBE_RUN_ABORTED',
  kubeApi: 'PULLPROBE_KUBE_API',
  kubeTimeout: 'PULLPROBE_KUBE_TIMEOUT',
  kubeNetwork: 'PULLPROBE_KUBE_NETWORK',
  kubeToken: 'PULLPROBE_KUBE_TOKEN',
  cri: 'PULLPROBE_CRI',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Codes of errors in what the user gave (flags, files, input): the CLI prints the message and exits 2. */
export const USER_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ERROR_CODES.usage,
  ERROR_CODES.fileUnreadable,
  ERROR_CODES.trust,
  ERROR_CODES.hostsToml,
  ERROR_CODES.dockerConfig,
  ERROR_CODES.credentialProviderConfig,
  ERROR_CODES.reportInput,
]);

/** Base of every pullprobe error: `code` is one of ERROR_CODES. */
export abstract class PullprobeError extends Error {
  abstract readonly code: ErrorCode;
}

/** Any error carrying one of the project's codes (also one that crossed a realm or was rebuilt). */
export function isPullprobeError(err: unknown): err is Error & { code: ErrorCode } {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (Object.values(ERROR_CODES) as string[]).includes(code);
}

/** A usage, configuration-file or input error: shown to the user as it is, exit 2. */
export function isUserError(err: unknown): err is Error & { code: ErrorCode } {
  return isPullprobeError(err) && USER_ERROR_CODES.has(err.code);
}

/** Wrong flags or arguments; `showUsage` asks the CLI to print the command's help after the message. */
export class UsageError extends PullprobeError {
  override readonly name = 'UsageError';
  readonly code = ERROR_CODES.usage;
  constructor(
    message: string,
    readonly showUsage = false,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A file the user named explicitly cannot be read. The message names the file. */
export class FileUnreadableError extends PullprobeError {
  override readonly name = 'FileUnreadableError';
  readonly code = ERROR_CODES.fileUnreadable;
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A CA file cannot be read or holds no valid certificate. */
export class TrustError extends PullprobeError {
  override readonly name = 'TrustError';
  readonly code = ERROR_CODES.trust;
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${message}`, options);
  }
}

/** A containerd hosts.toml that containerd itself would reject. Never quotes the file's text. */
export class HostsTomlError extends PullprobeError {
  override readonly name = 'HostsTomlError';
  readonly code = ERROR_CODES.hostsToml;
  constructor(
    readonly file: string,
    readonly key: string | null,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${key === null ? '' : `${key}: `}${detail}`, options);
  }
}

/** A docker config.json / .dockerconfigjson that cannot be used. Names the file and key, never a secret. */
export class DockerConfigError extends PullprobeError {
  override readonly name = 'DockerConfigError';
  readonly code = ERROR_CODES.dockerConfig;
}

/** A kubelet CredentialProviderConfig the kubelet would refuse. Names the file and the field, never an env value. */
export class CredentialProviderConfigError extends PullprobeError {
  override readonly name = 'CredentialProviderConfigError';
  readonly code = ERROR_CODES.credentialProviderConfig;
}

/** `report`: the node list is not what kubectl prints, or kubectl failed. */
export class ReportInputError extends PullprobeError {
  override readonly name = 'ReportInputError';
  readonly code = ERROR_CODES.reportInput;
}

/** The probe's deadline passed (Go's "context deadline exceeded", as the runtime words it). */
export class DeadlineError extends PullprobeError {
  override readonly name = 'DeadlineError';
  readonly code = ERROR_CODES.deadline;
  constructor(options?: ErrorOptions) {
    super('context deadline exceeded', options);
  }
}

/** A scheduled probe run was stopped (agent stop or reload) before it finished. */
export class RunAbortedError extends PullprobeError {
  override readonly name = 'RunAbortedError';
  readonly code = ERROR_CODES.runAborted;
  constructor(readonly why: 'stop' | 'overrun') {
    super(why === 'stop' ? 'agent stopping' : 'run overran its timeout');
  }
}

/** The API server answered with a non-2xx status. */
export class KubeApiError extends PullprobeError {
  override readonly name = 'KubeApiError';
  readonly code = ERROR_CODES.kubeApi;
  constructor(
    readonly status: number,
    /** metav1.Status reason ("Forbidden", "TooManyRequests", …) when the body had one. */
    readonly apiReason: string | null,
    readonly retryAfterMs: number | null,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The API server did not answer in time. */
export class KubeTimeoutError extends PullprobeError {
  override readonly name = 'KubeTimeoutError';
  readonly code = ERROR_CODES.kubeTimeout;
}

/** The API server could not be reached. */
export class KubeNetworkError extends PullprobeError {
  override readonly name = 'KubeNetworkError';
  readonly code = ERROR_CODES.kubeNetwork;
}

/**
 * How a CRI call failed (net/cri-client.ts): `unavailable` no connection to the
 * runtime (socket missing, refused, silent until the deadline, or dropped);
 * `timeout` connected but the caller's deadline passed; `aborted` the caller's
 * signal; `rpc` the runtime answered with an error status; `codec` its answer
 * is not the expected message; `endpoint` not a unix socket address.
 */
export type CriErrorKind = 'unavailable' | 'timeout' | 'aborted' | 'rpc' | 'codec' | 'endpoint';

/** A CRI call that did not succeed. `details` is the runtime's (or gRPC's) text as received: scrub it before display. */
export class CriError extends PullprobeError {
  override readonly name = 'CriError';
  readonly code = ERROR_CODES.cri;
  constructor(
    readonly kind: CriErrorKind,
    readonly method: string,
    readonly endpoint: string,
    /** gRPC status name ("NOT_FOUND", "UNKNOWN", …), null when no status applies. */
    readonly grpcStatus: string | null,
    readonly details: string,
    options?: ErrorOptions,
  ) {
    super(`${method} on ${endpoint}: ${details}`, options);
  }
}

/** The service-account token file cannot be read. */
export class TokenUnavailableError extends PullprobeError {
  override readonly name = 'TokenUnavailableError';
  readonly code = ERROR_CODES.kubeToken;
  constructor(file: string, cause: unknown) {
    super(`cannot read service-account token ${file}: ${codeOf(cause)}`, { cause });
  }
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'read error';
}
