/**
 * What the endpoint walk and its connection steps share: the walk's state,
 * a failed stage, and turning a stage outcome into a result step.
 */
import { REASONS, stageOf, type Stage } from '../diagnosis/catalog.js';
import type { Credential, ProbeContext, StageOutcome, StepDetails, StepOf, StepResult } from '../model/types.js';
import type { ProbeEnvironment } from '../node-config/environment.js';
import type { SecureContextCache } from '../node-config/trust.js';
import type { IndexCache } from './index-cache.js';
import type { Secrets } from './scrub.js';
import type { TokenCache } from './token-cache.js';

export interface WalkOptions {
  timeoutMs: number;
  connectTimeoutMs?: number;
  dnsPort?: number;
  checkPlatform: boolean;
  tokenCache: TokenCache;
  /** Index summaries remembered between probes; absent: none. */
  indexCache?: IndexCache;
  /** TLS contexts by trust set; absent: built per connection. */
  secureContexts?: SecureContextCache;
  credential?: Credential;
  /** Every credential and token sent during this probe, for scrubbing the result. */
  secrets?: Secrets;
  /** The proxy containerd's environment sends a host through (proxy-env.ts proxyFor); absent or null: direct. For the token service and redirect hops. */
  proxyFor?: (scheme: 'https' | 'http', host: string, port: number) => URL | null;
}

export interface Walk {
  ctx: ProbeContext;
  env: ProbeEnvironment;
  opts: WalkOptions;
  steps: StepResult[];
  /** The stage in progress, for the deadline safety net. */
  current: { stage: Stage; host?: string };
}

export interface Failure {
  outcome: StageOutcome<object>;
  stage: Stage;
}

export function round(s: number): number {
  return Math.round(s * 1e6) / 1e6;
}

/**
 * The step for a stage's outcome, filed under the reason's stage (a manifest
 * request that timed out is an http step). StepDetails admits the producing
 * stage's detail under every stage its reasons belong to.
 */
export function toStep<S extends Stage>(stage: S, o: StageOutcome<StepDetails[S]>): StepResult {
  const step: { -readonly [K in keyof StepOf<Stage>]: StepOf<Stage>[K] } = {
    stage: o.ok || !o.reason ? stage : (stageOf(o.reason) ?? stage),
    ok: o.ok,
    seconds: round(o.seconds),
  };
  if (o.host !== undefined) step.host = o.host;
  if (!o.ok && o.reason) {
    step.reason = o.reason;
    step.message = o.message ?? REASONS[o.reason].message;
  }
  if (o.degraded) step.degraded = true;
  step.detail = roundSeconds(o.detail);
  return step as StepResult;
}

/** Round every `seconds` field in a detail tree to microseconds (clock subtraction leaves float noise). */
function roundSeconds<T>(v: T): T {
  return roundTree(v) as T;
}

function roundTree(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(roundTree);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = k === 'seconds' && typeof x === 'number' ? round(x) : roundTree(x);
  return out;
}

/** Split "host:port" / "[v6]:port" into parts. */
export function splitHostPort(endpoint: string, defaultPort = 443): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(endpoint);
  if (v6) return { host: v6[1] ?? '', port: v6[2] ? Number(v6[2]) : defaultPort };
  const i = endpoint.lastIndexOf(':');
  if (i > 0 && /^\d+$/.test(endpoint.slice(i + 1))) {
    return { host: endpoint.slice(0, i), port: Number(endpoint.slice(i + 1)) };
  }
  return { host: endpoint, port: defaultPort };
}
