/**
 * The manifest stage: `HEAD /v2/<repo>/manifests/<ref>` with containerd's
 * Accept list (pull-path-facts §1.7), read as the runtime would. A HEAD is a
 * free "version check" on Docker Hub; only the optional platform check GETs.
 * Auth reasons found here (401/403 on the manifest) are returned as they are:
 * the chain files the step under the reason's stage.
 */
import type { Dispatcher } from 'undici';
import { reasonInfo, type Reason } from '../../diagnosis/catalog.js';
import { remainingMs, stageTimer, type StageTimer } from '../../net/deadline.js';
import { classifyTransportError, type SendResult } from '../../net/dispatcher.js';
import {
  formatPlatform,
  matchSummary,
  MAX_LISTED_PLATFORMS,
  summarizeIndex,
  type IndexSummary,
  type PlatformMatch,
} from '../../model/platform.js';
import { parseBoundedJson } from '../../net/bounded-json.js';
import type { IndexCache } from '../index-cache.js';
import { sendFollowing, type FollowResult, type ReachHost } from '../manifest-fetch.js';
import { nearestTags } from '../tag-suggestions.js';
import { collectGarbage } from '../../shared/collect-garbage.js';
import { editDistance } from '../../shared/edit-distance.js';

export { editDistance, nearestTags };
import {
  firstHeader,
  headerValues,
  parseRegistryErrors,
  ratelimitFromHeaders,
  retryAfterSeconds,
  type RegistryError,
} from '../../net/registry-errors.js';
import { registryBase, statusLine } from './http.js';
import { apiPath, MANIFEST_ACCEPT, nsQuery } from '../registry-url.js';
import { refusedTokenVerdict } from './auth.js';
import { cleanRegistryText } from '../scrub.js';
import type { Platform, ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import { parseWwwAuthenticate } from '../www-authenticate.js';
import type { ManifestDetail } from '../../model/step-detail.js';
export type { ManifestDetail } from '../../model/step-detail.js';

export { MANIFEST_ACCEPT };

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
]);

/** containerd's MaxManifestSize. */
export const MAX_MANIFEST = 4 * 1048 * 1048;
/** An OCI index nests 4 levels (index → manifests → entry → platform → os.features); room to spare, never millions of arrays. */
const MAX_JSON_DEPTH = 8;
/** Longest digest header used as a cache key or in a URL (sha512 hex is 135 characters). */
const MAX_DIGEST = 200;

export interface ManifestInput {
  endpoint: string;
  repository: string;
  /** Tag or digest. */
  reference: string;
  authorization?: string;
  hasCredential: boolean;
  scheme?: 'https' | 'http';
  /** API path ("/v2" by default; an override_path endpoint's own). */
  path?: string;
  /** Namespace for `?ns=` (a host serving another registry's names). */
  ns?: string;
  /**
   * The http stage's answer to this same HEAD, sent with this same
   * `authorization`: read instead of asking again (a steady-state probe is
   * one request).
   */
  head?: FollowResult;
}

export interface ManifestOptions {
  dispatcher: Dispatcher;
  timeoutMs: number;
  platform: Platform;
  /** GET the index (by digest) to look for the node's platform. Default true. Costs a counted pull on Docker Hub. */
  checkPlatform?: boolean;
  /** Makes a redirect's new host reachable (the chain's DNS/TCP/TLS hop). Absent: dial it directly. */
  reach?: ReachHost;
  /** Platform summaries of indexes already read, by digest (the probe's caches). Absent: nothing remembered. */
  indexCache?: IndexCache;
}

export function isDigest(reference: string): boolean {
  return /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(reference);
}

function mediaTypeOf(res: SendResult): string | undefined {
  return firstHeader(res.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase() || undefined;
}

export const manifestStage = async function manifestStage(
  ctx: ProbeContext,
  input: ManifestInput,
  opts: ManifestOptions,
): Promise<StageOutcome<ManifestDetail>> {
  const t0 = ctx.clock.now();
  const seconds = (): number => (ctx.clock.now() - t0) / 1000;
  const host = input.endpoint;
  const path = apiPath(input.path);
  const q = nsQuery(input.ns);
  const base = `${registryBase(input.endpoint, input.scheme)}${path}/${input.repository}`;
  const headers: Record<string, string> = { accept: MANIFEST_ACCEPT.join(', ') };
  if (input.authorization) headers.authorization = input.authorization;
  const detail: ManifestDetail = {};
  const timer = stageTimer(ctx, opts.timeoutMs);
  const fail = (reason: Reason, message: string, hint?: string): StageOutcome<ManifestDetail> => {
    const out: StageOutcome<ManifestDetail> = { ok: false, reason, message, host, seconds: seconds(), detail };
    if (hint) out.hint = hint;
    return out;
  };
  let what = `HEAD ${path}/${input.repository}/manifests/${input.reference}${q}`;
  detail.request = what;
  const fetch = (method: 'GET' | 'HEAD', url: string, maxBody: number): Promise<FollowResult> =>
    sendFollowing(url, {
      method,
      headers,
      dispatcher: opts.dispatcher,
      signal: timer.signal,
      maxBody,
      ...(opts.reach ? { reach: opts.reach } : {}),
    });
  try {
    let res: SendResult;
    try {
      let got = input.head ?? (await fetch('HEAD', `${base}/manifests/${input.reference}${q}`, 0));
      if (input.head) detail.reused = true;
      if (got.kind === 'response' && got.res.status === 405) {
        // containerd retries a refused HEAD as GET (this one is a counted pull on Docker Hub).
        what = `GET ${path}/${input.repository}/manifests/${input.reference}${q}`;
        detail.request = what;
        got = await fetch('GET', `${base}/manifests/${input.reference}${q}`, MAX_MANIFEST);
      }
      if (got.redirects.length > 0) detail.redirects = got.redirects;
      if (got.kind === 'bad-redirect') return fail('http_status', `${what}: ${got.problem}`);
      if (got.kind === 'unreachable') return got.outcome;
      res = got.res;
    } catch (err) {
      const f = classifyTransportError(err, timer.timedOut(), what);
      if (f.code) detail.error = f.code;
      return fail(f.reason, f.message);
    }
    detail.status = res.status;
    const rl = ratelimitFromHeaders(res.headers);
    if (Object.keys(rl).length > 0) detail.ratelimit = rl;
    const errors = parseRegistryErrors(res.body);
    if (errors.length > 0) detail.errors = errors.map((e) => e.code);
    const has = (code: string): RegistryError | undefined => errors.find((e) => e.code === code);

    if (res.status === 200) {
      const header = firstHeader(res.headers, 'docker-content-digest');
      // A digest names the index in the GET's URL and in the cache: only a well-formed one is used.
      const digest = header !== undefined && header.length <= MAX_DIGEST && isDigest(header) ? header : undefined;
      if (digest) detail.digest = digest;
      const mt = mediaTypeOf(res);
      if (mt) detail.mediaType = mt;
      const len = Number(firstHeader(res.headers, 'content-length'));
      if (Number.isFinite(len) && firstHeader(res.headers, 'content-length') !== undefined) detail.contentLength = len;
      if (mt && INDEX_MEDIA_TYPES.has(mt) && (opts.checkPlatform ?? true)) {
        return await checkPlatform(ctx, input, opts, { base, q, headers, timer, detail, fail, seconds, digest });
      }
      return { ok: true, host, seconds: seconds(), detail };
    }

    const retry = retryAfterSeconds(res.headers, ctx.wallNow());
    if (res.status === 429 || has('TOOMANYREQUESTS')) {
      if (retry !== undefined) detail.retryAfterSeconds = retry;
      const said = cleanRegistryText(has('TOOMANYREQUESTS')?.message ?? '');
      return fail(
        'rate_limited',
        `toomanyrequests: ${said || 'rate limit reached'}${retry !== undefined ? ` (Retry-After: ${retry} s)` : ''}`,
      );
    }
    if (res.status === 401) {
      // A token the token service just issued, refused by the registry: not missing credentials.
      const refused = refusedTokenVerdict(headerValues(res.headers, 'www-authenticate'), {
        bearer: input.authorization?.startsWith('Bearer ') ?? false,
        credentialsSent: input.hasCredential,
        host,
        what,
      });
      if (refused) return fail(refused.reason, refused.message);
      if (!input.hasCredential) {
        return fail('auth_required', `unauthorized: authentication required (${what}: ${statusLine(401)}, no credentials)`);
      }
      const challenge = parseWwwAuthenticate(headerValues(res.headers, 'www-authenticate'))[0];
      const bearer = input.authorization?.startsWith('Bearer ') ?? false;
      if (challenge?.params.error === 'insufficient_scope' || bearer) {
        return fail(
          'access_denied',
          `pull access denied for ${input.repository}: the credentials were accepted but do not grant pull (${statusLine(401)})`,
        );
      }
      return fail('auth_rejected', `unauthorized: ${host} rejected the credentials (${statusLine(401)})`);
    }
    if (res.status === 403 || has('DENIED')) {
      return fail(
        'access_denied',
        `pull access denied for ${input.repository}, repository does not exist or may require authorization (${statusLine(res.status)})`,
      );
    }
    if (res.status === 404 || has('NAME_UNKNOWN') || has('MANIFEST_UNKNOWN')) {
      if (has('NAME_UNKNOWN')) return fail('name_unknown', `name unknown: repository ${input.repository} not found in ${host}`);
      return await tagsVerdict(input, opts, { base, q, headers, timer, detail, fail });
    }
    if (res.status === 400 && has('NAME_INVALID')) {
      return fail('name_unknown', `name invalid: repository ${input.repository} is not a valid name for ${host}`);
    }
    return fail(
      'http_status',
      `unexpected status from ${what.replace(/ .*/, '')} request to ${path}/${input.repository}/manifests/${input.reference}${q}: ${statusLine(res.status)}`,
    );
  } finally {
    timer.dispose();
  }
} satisfies StageFn<ManifestInput, ManifestOptions, ManifestDetail>;

interface Shared {
  base: string;
  /** "?ns=…" or "". */
  q: string;
  headers: Record<string, string>;
  timer: StageTimer;
  detail: ManifestDetail;
  fail: (reason: Reason, message: string, hint?: string) => StageOutcome<ManifestDetail>;
}

/**
 * 404 on the manifest. Registry 2.8 answers MANIFEST_UNKNOWN for an unknown
 * repository too (lab-notes gotcha 1), and a HEAD has no body anyway, so
 * tags/list decides: 200 → the tag is missing (nearest tags in the hint),
 * 404 → the repository is missing.
 */
async function tagsVerdict(input: ManifestInput, opts: ManifestOptions, s: Shared): Promise<StageOutcome<ManifestDetail>> {
  const missing = `manifest unknown: ${input.repository}${isDigest(input.reference) ? '@' : ':'}${input.reference} not found in ${input.endpoint}`;
  let res: SendResult;
  try {
    const got = await sendFollowing(`${s.base}/tags/list${s.q}`, {
      method: 'GET',
      headers: s.headers,
      dispatcher: opts.dispatcher,
      signal: s.timer.signal,
      maxBody: MAX_MANIFEST,
    });
    if (got.kind !== 'response') return s.fail('manifest_unknown', missing);
    res = got.res;
  } catch {
    return s.fail('manifest_unknown', missing); // could not tell more before the deadline
  }
  const errors = parseRegistryErrors(res.body);
  if (res.status === 404 || errors.some((e) => e.code === 'NAME_UNKNOWN')) {
    return s.fail('name_unknown', `name unknown: repository ${input.repository} not found in ${input.endpoint}`);
  }
  if (res.status !== 200 || isDigest(input.reference)) return s.fail('manifest_unknown', missing);
  const parsed = parseBoundedJson(res.body, { maxLength: MAX_MANIFEST, maxDepth: MAX_JSON_DEPTH });
  const tags = parsed.ok && Array.isArray(parsed.value['tags']) ? (parsed.value['tags'] as unknown[]) : [];
  const near = nearestTags(input.reference, tags);
  s.detail.nearestTags = near;
  const hint =
    near.length > 0
      ? `${reasonInfo('manifest_unknown').hint} Nearest existing tags: ${near.join(', ')}.`
      : `${reasonInfo('manifest_unknown').hint} ${tags.length > 0 ? 'No existing tag is close to it.' : 'The repository has no tags.'}`;
  return s.fail('manifest_unknown', missing, hint);
}

/** "[a, b, c, and 12 more]" */
function platformList(listed: string[], total: number): string {
  const more = total - listed.length;
  return `[${listed.join(', ')}${more > 0 ? `, and ${more} more` : ''}]`;
}

function platformVerdict(
  m: PlatformMatch,
  input: ManifestInput,
  s: Shared & { seconds: () => number },
  want: string,
): StageOutcome<ManifestDetail> {
  s.detail.platforms = m.available.slice(0, MAX_LISTED_PLATFORMS);
  s.detail.platformCount = m.platformCount;
  if (!m.match) {
    return s.fail(
      'platform_missing',
      `no match for platform in manifest: ${want} not in ${platformList(s.detail.platforms, m.platformCount)}`,
    );
  }
  s.detail.platformDigest = m.match.digest;
  return { ok: true, host: input.endpoint, seconds: s.seconds(), detail: s.detail };
}

/** An index body above this is collected at once after reading (see checkPlatform). */
const LARGE_INDEX_BYTES = 256 * 1024;

/**
 * The index was found; look for the node's platform in it. The first time a
 * digest is seen this GETs the index by digest (a counted pull on Docker
 * Hub, once per image version); later probes use the remembered summary.
 * What the registry sends is bounded: containerd's size limit, a nesting
 * limit before parsing, an index shape after, and the probe deadline.
 */
async function checkPlatform(
  ctx: ProbeContext,
  input: ManifestInput,
  opts: ManifestOptions,
  s: Shared & { seconds: () => number; digest: string | undefined },
): Promise<StageOutcome<ManifestDetail>> {
  const want = formatPlatform(opts.platform);
  s.detail.platform = want;
  const ref = s.digest ?? input.reference;
  const known = s.digest !== undefined ? opts.indexCache?.get(s.digest) : undefined;
  const knownMatch = known !== undefined ? matchSummary(known, opts.platform) : undefined;
  if (knownMatch !== undefined) {
    s.detail.indexCached = true;
    return platformVerdict(knownMatch, input, s, want);
  }
  const read = async (): Promise<StageOutcome<ManifestDetail>> => {
    const read = { bytes: 0 };
    const outcome = await readIndex(ctx, input, opts, s, ref, known, read);
    // A large body, its text and its parse tree are garbage now: collect them before the next
    // index is read. A small one is left to V8 (a full collection costs a CLI run ~20 ms).
    if (read.bytes > LARGE_INDEX_BYTES) collectGarbage();
    return outcome;
  };
  return opts.indexCache ? opts.indexCache.exclusive(read) : read();
}

/** GET the index by digest, check its size and shape, and match the node's platform. */
async function readIndex(
  ctx: ProbeContext,
  input: ManifestInput,
  opts: ManifestOptions,
  s: Shared & { seconds: () => number; digest: string | undefined },
  ref: string,
  known: IndexSummary | undefined,
  read: { bytes: number },
): Promise<StageOutcome<ManifestDetail>> {
  const want = formatPlatform(opts.platform);
  const what = `GET ${apiPath(input.path)}/${input.repository}/manifests/${ref}${s.q}`;
  s.detail.request = what;
  if (s.timer.signal.aborted) return s.fail('http_timeout', `${what}: context deadline exceeded`);
  let res: SendResult;
  try {
    // One byte over the limit tells "exactly at the limit" from "larger".
    const got = await sendFollowing(`${s.base}/manifests/${ref}${s.q}`, {
      method: 'GET',
      headers: s.headers,
      dispatcher: opts.dispatcher,
      signal: s.timer.signal,
      maxBody: MAX_MANIFEST + 1,
      ...(opts.reach ? { reach: opts.reach } : {}),
    });
    if (got.redirects.length > 0) s.detail.redirects = got.redirects;
    if (got.kind === 'bad-redirect') return s.fail('http_status', `${what}: ${got.problem}`);
    if (got.kind === 'unreachable') return got.outcome;
    res = got.res;
  } catch (err) {
    const f = classifyTransportError(err, s.timer.timedOut(), what);
    if (f.code) s.detail.error = f.code;
    return s.fail(f.reason, f.message);
  }
  if (res.status === 429) {
    const retry = retryAfterSeconds(res.headers, ctx.wallNow());
    if (retry !== undefined) s.detail.retryAfterSeconds = retry;
    return s.fail('rate_limited', `toomanyrequests: rate limit reached on ${what}`);
  }
  if (res.status >= 500)
    return s.fail(
      'http_status',
      `unexpected status from GET request to ${apiPath(input.path)}/${input.repository}/manifests/${ref}${s.q}: ${statusLine(res.status)}`,
    );
  // The HEAD already proved the image is there; another status here is not judged.
  if (res.status !== 200) return { ok: true, host: input.endpoint, seconds: s.seconds(), detail: s.detail };
  read.bytes = res.body.length;
  const declared = Number(firstHeader(res.headers, 'content-length'));
  if ((Number.isFinite(declared) && declared > MAX_MANIFEST) || Buffer.byteLength(res.body) > MAX_MANIFEST) {
    return s.fail(
      'http_status',
      `${what}: the registry sent an image index larger than ${MAX_MANIFEST} bytes, which containerd refuses (MaxManifestSize)`,
    );
  }
  const parsed = parseBoundedJson(res.body, { maxLength: MAX_MANIFEST, maxDepth: MAX_JSON_DEPTH });
  const summary = parsed.ok ? summarizeIndex(parsed.value, opts.platform) : undefined;
  if (summary === undefined) {
    const problem = parsed.ok ? 'no "manifests" list of objects' : parsed.problem;
    return s.fail(
      'http_status',
      `${what}: the registry answered with something that is not an image index (${problem}); containerd cannot read it either`,
    );
  }
  if (remainingMs(ctx) <= 0) return s.fail('http_timeout', `${what}: context deadline exceeded`);
  if (known) for (const [k, v] of known.matched) if (!summary.matched.has(k)) summary.matched.set(k, v);
  if (s.digest !== undefined) opts.indexCache?.set(s.digest, summary);
  return platformVerdict(matchSummary(summary, opts.platform) ?? { available: [], platformCount: 0 }, input, s, want);
}
