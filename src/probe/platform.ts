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
    case 'i386': arch = '386'; variant = ''; break;
    case 'x86_64': case 'x86-64': case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64': case 'arm64':
      arch = 'arm64';
      if (variant === '' || variant === '8' || variant === 'v8.0') variant = 'v8';
      else if (/^\d/.test(variant)) variant = `v${variant}`;
      break;
    case 'armhf': arch = 'arm'; variant = 'v7'; break;
    case 'armel': arch = 'arm'; variant = 'v6'; break;
    case 'arm':
      if (variant === '') variant = 'v7';
      else if (/^\d$/.test(variant)) variant = `v${variant}`;
      break;
    default: break;
  }
  return variant ? { os, architecture: arch, variant } : { os, architecture: arch };
}

/** "linux/arm64/v8" → Platform; undefined when malformed. */
export function parsePlatform(s: string): Platform | undefined {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '')) return undefined;
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

function variantNumber(v: string | undefined): number | undefined {
  const m = /^v(\d+)/.exec(v ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Platforms the node can run, best first (containerd platformVector). */
export function compatiblePlatforms(node: Platform): Platform[] {
  const p = normalizePlatform(node);
  const out: Platform[] = [p];
  const n = variantNumber(p.variant);
  if (p.architecture === 'amd64' && n !== undefined) {
    for (let v = n - 1; v >= 2; v--) out.push({ os: p.os, architecture: 'amd64', variant: `v${v}` });
    out.push({ os: p.os, architecture: 'amd64' });
  } else if (p.architecture === 'arm64') {
    for (let v = (n ?? 8) - 1; v >= 8; v--) out.push({ os: p.os, architecture: 'arm64', variant: `v${v}` });
    for (let v = 8; v >= 5; v--) out.push({ os: p.os, architecture: 'arm', variant: `v${v}` });
  } else if (p.architecture === 'arm' && n !== undefined) {
    for (let v = n - 1; v >= 5; v--) out.push({ os: p.os, architecture: 'arm', variant: `v${v}` });
  }
  return out;
}

export interface IndexEntry {
  digest: string;
  mediaType?: string;
  platform: Platform;
}

export interface PlatformMatch {
  /** Best entry for the node, if any. */
  match?: IndexEntry;
  /** Every platform in the index ("linux/amd64", …), attestation entries (unknown/unknown) left out. */
  available: string[];
}

function entriesOf(index: unknown): IndexEntry[] {
  const manifests = index && typeof index === 'object' ? (index as { manifests?: unknown }).manifests : undefined;
  if (!Array.isArray(manifests)) return [];
  const out: IndexEntry[] = [];
  for (const m of manifests) {
    if (!m || typeof m !== 'object') continue;
    const { digest, mediaType, platform } = m as { digest?: unknown; mediaType?: unknown; platform?: unknown };
    if (typeof digest !== 'string' || !platform || typeof platform !== 'object') continue;
    const { os, architecture, variant } = platform as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof os !== 'string' || typeof architecture !== 'string') continue;
    const p: Platform = typeof variant === 'string' && variant !== '' ? { os, architecture, variant } : { os, architecture };
    out.push(typeof mediaType === 'string' ? { digest, mediaType, platform: p } : { digest, platform: p });
  }
  return out;
}

function same(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** Find the node's platform in an image index (parsed JSON, tolerant of junk). */
export function matchPlatform(index: unknown, platform: Platform): PlatformMatch {
  const entries = entriesOf(index);
  const available: string[] = [];
  for (const e of entries) {
    if (e.platform.os === 'unknown' && e.platform.architecture === 'unknown') continue;
    const s = formatPlatform(e.platform);
    if (!available.includes(s)) available.push(s);
  }
  for (const want of compatiblePlatforms(platform)) {
    const hit = entries.find((e) => same(normalizePlatform(e.platform), want));
    if (hit) return { match: hit, available };
  }
  return { available };
}

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): Platform {
  const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const architecture = archMap[process.arch] ?? process.arch;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  if (architecture === 'arm') {
    const v = (process.config.variables as { arm_version?: string | number }).arm_version;
    return v ? { os, architecture, variant: `v${v}` } : { os, architecture };
  }
  return { os, architecture };
}
