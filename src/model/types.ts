/**
 * Shapes shared by every stage and by everything downstream of the probe
 * (CLI, metrics, node writer, /probe). ProbeResult is the design's public
 * JSON contract: change it only on purpose, with design.md and the README.
 */
import type { Cause, Reason, Stage } from '../diagnosis/catalog.js';
import type { StepDetails } from './step-detail.js';

export type * from './step-detail.js';

/** Monotonic milliseconds (performance.now by default). Injected so tests control time. */
export interface Clock {
  now(): number;
}

export const realClock: Clock = { now: () => performance.now() };

/** Minimal structured logger (pino's Logger satisfies it). */
export interface Log {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * What every stage function receives first. `signal` aborts at the overall
 * probe deadline; a stage derives its own shorter timeout with
 * `stageSignal(ctx, ms)` from deadline.ts.
 */
export interface ProbeContext {
  readonly signal: AbortSignal;
  /** Clock reading (ms) at which the whole probe must be over. */
  readonly deadlineAt: number;
  readonly clock: Clock;
  readonly log: Log;
  /** Wall clock (epoch ms), for certificate expiry and token lifetimes. */
  readonly wallNow: () => number;
  /** Timer functions for stage timeouts (real, unref'd timers when absent). */
  readonly timers?: import('../shared/timers.js').Timers;
}

/** One stage's classified outcome. Never a bare boolean (house style 2). */
export interface StageOutcome<D extends object = Record<string, unknown>> {
  ok: boolean;
  /** Set when ok is false; from the closed set in catalog.ts. */
  reason?: Reason;
  /** Specific message; defaults to the catalog's seed wording. */
  message?: string;
  /** Specific fix; defaults to the catalog's hint. */
  hint?: string;
  /** Endpoint involved ("host" or "host:port"). */
  host?: string;
  /** ok, but part of this stage's path is broken (a nameserver, an address). */
  degraded?: boolean;
  seconds: number;
  detail: D;
}

/**
 * The one signature every stage function has (house style 1, blackbox
 * exporter's `ProbeFn`): the probe context first, then what to probe, then
 * the stage's own options; it resolves to a classified outcome and never
 * throws for a network fault. Each stage in src/probe/stages/ `satisfies` it.
 */
export type StageFn<I, O, D extends object> = (ctx: ProbeContext, input: I, opts: O) => Promise<StageOutcome<D>>;

/** A step filed under stage S: its detail is typed by the stage (step-detail.ts). */
export interface StepOf<S extends Stage> {
  stage: S;
  ok: boolean;
  seconds: number;
  host?: string;
  reason?: Reason;
  degraded?: boolean;
  message?: string;
  detail?: StepDetails[S];
}

/** One entry of ProbeResult.steps: a union keyed on `stage`. */
export type StepResult = { [S in Stage]: StepOf<S> }[Stage];

/** design.md "ProbeResult" — the `--json` output is an array of these. */
export interface ProbeResult {
  target: string;
  image: string | null;
  registry: string | null;
  ok: boolean;
  stage: Stage | null;
  reason: Reason | null;
  cause: Cause | null;
  host: string | null;
  message: string | null;
  hint: string | null;
  degraded: boolean;
  seconds: number;
  /**
   * Second round: who supplied the credentials the probe sent (null: anonymous).
   * The chain always sets it; optional only so hand-built results in tests stay short.
   */
  credentials?: ResultCredentials | null;
  /** The proxy the registry requests went through, without userinfo; null: direct. Always set by the chain. */
  proxy?: string | null;
  steps: StepResult[];
}

/** design.md ProbeResult `credentials`: the source, never the secret. */
export interface ResultCredentials {
  source: CredentialSourceKind;
  /** File path or plugin name. */
  name: string;
  /** RFC 3339, when knowable. */
  expiresAt: string | null;
}

/** The node's platform, as in an OCI index entry. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The credential sources the kubelet and containerd use (design.md ProbeResult `credentials.source`). */
export type CredentialSourceKind = 'docker-config' | 'containerd-config' | 'credential-provider' | 'pull-secret';

/** Where a credential came from, as the result reports it: never the secret. */
export interface CredentialOrigin {
  source: CredentialSourceKind;
  /** The file path or the plugin name. */
  name: string;
  /** When the credential stops working (epoch ms), when knowable; null otherwise. */
  expiresAt: number | null;
}

/** Credentials for one registry host, from a docker config or other source. */
export interface Credential {
  username: string;
  password: string;
  /** Where it came from (file path and key), for messages; never the secret. */
  source: string;
  /** The source as the result's `credentials` field names it. */
  origin?: CredentialOrigin;
  /** `password` is an identity (refresh) token and `username` is empty: the OAuth POST uses grant_type=refresh_token. */
  identityToken?: boolean;
}
