/**
 * Platform matching against an image index / manifest list, after
 * containerd's platforms package (Normalize + Only): arch aliases
 * (x86_64 → amd64, aarch64 → arm64, armhf → arm/v7), arm64 without a variant
 * is v8, arm without a variant is v7, and a node accepts older variants of
 * its arch (arm64 also runs 32-bit arm). Pure, except hostPlatform().
 */
import type { Platform } from './types.js';

export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let arch = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '' || variant === '8' || variant === 'v8.0') variant = 'v8';
      else if (/^\d/.test(variant)) variant = `v${variant}`;
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '') variant = 'v7';
      else if (/^\d$/.test(variant)) variant = `v${variant}`;
      break;
    default:
      break;
  }
  return variant ? { os, architecture: arch, variant } : { os, architecture: arch };
}

/** One OS, architecture or variant word: short, no spaces or control characters. */
const PLATFORM_WORD = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

/**
 * "linux/arm64/v8" → Platform; undefined when malformed or absurd (a word
 * over 32 characters, a variant number over 3 digits such as v999999999).
 */
export function parsePlatform(s: string): Platform | undefined {
  if (s.length > 100) return undefined;
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !PLATFORM_WORD.test(x))) return undefined;
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  if (variant !== undefined && /^v?\d{4,}/i.test(variant)) return undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

function variantNumber(v: string | undefined): number | undefined {
  const m = /^v(\d+)/.exec(v ?? '');
  return m ? Number(m[1]) : undefined;
}

/** "v7" → 7; anything else (no variant, "v8.2") → undefined. */
function exactVariantNumber(v: string | undefined): number | undefined {
  const m = /^v(\d{1,9})$/.exec(v ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * Where `entry` stands in the node's list of runnable platforms, best (0)
 * first — containerd's platformVector (the node's own platform, then older
 * variants of its arch, then plain amd64 / 32-bit arm) — or undefined when
 * the node cannot run it. Computed, not enumerated: O(1) whatever the variant.
 */
export function platformRank(node: Platform, entry: Platform): number | undefined {
  const p = normalizePlatform(node);
  const e = normalizePlatform(entry);
  if (same(p, e)) return 0;
  if (e.os !== p.os) return undefined;
  const n = variantNumber(p.variant);
  const m = exactVariantNumber(e.variant);
  if (p.architecture === 'amd64' && n !== undefined && e.architecture === 'amd64') {
    if (e.variant === undefined) return Math.max(0, n - 2) + 1;
    if (m !== undefined && m >= 2 && m < n) return n - m;
    return undefined;
  }
  if (p.architecture === 'arm64') {
    const top = n ?? 8;
    if (e.architecture === 'arm64' && m !== undefined && m >= 8 && m < top) return top - m;
    if (e.architecture === 'arm' && m !== undefined && m >= 5 && m <= 8) return Math.max(0, top - 8) + (8 - m) + 1;
    return undefined;
  }
  if (p.architecture === 'arm' && n !== undefined && e.architecture === 'arm' && m !== undefined && m >= 5 && m < n) return n - m;
  return undefined;
}

export interface IndexEntry {
  digest: string;
  mediaType?: string;
  platform: Platform;
}

/**
 * What the platform check keeps of an image index: each distinct platform
 * once (its first entry), at most MAX_KEPT_PLATFORMS of them, how many
 * distinct platforms the index listed, and — for an index with more than
 * that — the best entry over the whole index for the node platform(s) it
 * was read for. Small whatever the registry sent.
 */
export interface IndexSummary {
  entries: IndexEntry[];
  platformCount: number;
  /** `entries` holds every distinct platform of the index: any node platform can be matched from it. */
  complete: boolean;
  /** Formatted node platform → its best entry over the whole index (null: none), for platforms looked up when it was read. */
  matched: Map<string, IndexEntry | null>;
}

export const MAX_KEPT_PLATFORMS = 256;
/** Platforms named in a message or in the step detail. */
export const MAX_LISTED_PLATFORMS = 10;
const MAX_FIELD = 128;

export interface PlatformMatch {
  /** Best entry for the node, if any. */
  match?: IndexEntry;
  /** The first MAX_LISTED_PLATFORMS distinct platforms of the index ("linux/amd64", …), attestation entries (unknown/unknown) left out. */
  available: string[];
  /** How many distinct platforms the index lists in all. */
  platformCount: number;
}

const isField = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The summary of a parsed image index, in one pass; undefined when it is not
 * an index (no `manifests` array, or an entry that is not an object — Go's
 * json.Unmarshal into an ocispec.Index refuses those too). With `node`, its
 * best entry over every entry is recorded in `matched`.
 */
export function summarizeIndex(index: unknown, node?: Platform): IndexSummary | undefined {
  const manifests = isObject(index) ? index['manifests'] : undefined;
  if (!Array.isArray(manifests)) return undefined;
  const seen = new Set<string>();
  const entries: IndexEntry[] = [];
  let best: IndexEntry | null = null;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const m of manifests) {
    if (!isObject(m)) return undefined;
    const { digest, mediaType, platform } = m;
    if (!isField(digest) || !isObject(platform)) continue;
    const { os, architecture, variant } = platform;
    if (!isField(os) || !isField(architecture)) continue;
    if (os === 'unknown' && architecture === 'unknown') continue; // attestation manifests
    const p: Platform = isField(variant) ? { os, architecture, variant } : { os, architecture };
    const key = formatPlatform(p);
    if (seen.has(key)) continue;
    seen.add(key);
    const entry: IndexEntry = isField(mediaType) ? { digest, mediaType, platform: p } : { digest, platform: p };
    if (entries.length < MAX_KEPT_PLATFORMS) entries.push(entry);
    if (node && bestRank > 0) {
      const r = platformRank(node, p);
      if (r !== undefined && r < bestRank) {
        best = entry;
        bestRank = r;
      }
    }
  }
  const matched = new Map<string, IndexEntry | null>();
  if (node) matched.set(formatPlatform(node), best);
  return { entries, platformCount: seen.size, complete: seen.size <= entries.length, matched };
}

function same(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/**
 * Find the node's platform in a summary: one pass, best rank wins, the first
 * of equals. Undefined when the summary cannot tell (an index with more
 * platforms than were kept, read for another node platform).
 */
export function matchSummary(summary: IndexSummary, platform: Platform): PlatformMatch | undefined {
  const available = summary.entries.slice(0, MAX_LISTED_PLATFORMS).map((e) => formatPlatform(e.platform));
  const found = (best: IndexEntry | null | undefined): PlatformMatch =>
    best ? { match: best, available, platformCount: summary.platformCount } : { available, platformCount: summary.platformCount };
  const known = summary.matched.get(formatPlatform(platform));
  if (known !== undefined) return found(known);
  if (!summary.complete) return undefined;
  let best: IndexEntry | undefined;
  let bestRank = Number.POSITIVE_INFINITY;
  for (const e of summary.entries) {
    const r = platformRank(platform, e.platform);
    if (r !== undefined && r < bestRank) {
      best = e;
      bestRank = r;
      if (r === 0) break;
    }
  }
  return found(best);
}

/** Find the node's platform in an image index (parsed JSON, tolerant of junk). */
export function matchPlatform(index: unknown, platform: Platform): PlatformMatch {
  const summary = summarizeIndex(index, platform);
  return (summary && matchSummary(summary, platform)) ?? { available: [], platformCount: 0 };
}

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  const architecture = archMap[process.arch] ?? process.arch;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  if (architecture === 'arm') {
    const v = (process.config.variables as { arm_version?: string | number }).arm_version;
    return v ? { os, architecture, variant: `v${v}` } : { os, architecture };
  }
  return { os, architecture };
}
