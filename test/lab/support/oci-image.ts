/**
 * Deterministic tiny OCI images for the lab (pure: same bytes every run).
 *   lab/probe:v1      OCI index: linux/amd64 + linux/arm64
 *   lab/amd64only:v1  OCI index with only linux/s390x (platform_missing for amd64/arm64 nodes)
 *   lab/single:v1     plain OCI image manifest (no index), linux/amd64
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  data: Buffer;
}
export interface LabImage {
  repository: string;
  tag: string;
  /** Digest of what the tag points at (index or manifest). */
  digest: string;
  mediaType: string;
  /** Blobs (configs, layers) to upload first. */
  blobs: Blob[];
  /** Manifests to PUT by digest before the tag (children of an index). */
  children: Blob[];
  /** The tagged document. */
  top: Blob;
  platforms: string[];
}

function blob(mediaType: string, data: Buffer): Blob {
  return { mediaType, data, size: data.length, digest: `sha256:${createHash('sha256').update(data).digest('hex')}` };
}

function json(mediaType: string, v: unknown): Blob {
  return blob(mediaType, Buffer.from(JSON.stringify(v)));
}

/** A ustar archive with one regular file (mtime 0, root-owned). */
export function tarOneFile(name: string, content: Buffer): Buffer {
  const h = Buffer.alloc(512, 0);
  const put = (s: string, off: number, len: number): void => {
    h.write(s.slice(0, len), off, 'ascii');
  };
  const oct = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0';
  put(name, 0, 100);
  put(oct(0o644, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(content.length, 12), 124, 12);
  put(oct(0, 12), 136, 12);
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512, 0);
  return Buffer.concat([h, content, pad, Buffer.alloc(1024, 0)]);
}

function platformManifest(os: string, arch: string): { config: Blob; layer: Blob; manifest: Blob } {
  const tar = tarOneFile('hello.txt', Buffer.from(`pullprobe lab image ${os}/${arch}\n`));
  const layer = blob(MT.layer, gzipSync(tar, { level: 9 }));
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const config = json(MT.config, {
    architecture: arch,
    os,
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: ['/hello.txt'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
  });
  const desc = (b: Blob): object => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });
  const manifest = json(MT.manifest, { schemaVersion: 2, mediaType: MT.manifest, config: desc(config), layers: [desc(layer)] });
  return { config, layer, manifest };
}

function indexImage(repository: string, tag: string, platforms: Array<[string, string]>): LabImage {
  const parts = platforms.map(([os, arch]) => ({ os, arch, ...platformManifest(os, arch) }));
  const top = json(MT.index, {
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: parts.map((p) => ({
      mediaType: MT.manifest,
      digest: p.manifest.digest,
      size: p.manifest.size,
      platform: { architecture: p.arch, os: p.os },
    })),
  });
  return {
    repository,
    tag,
    digest: top.digest,
    mediaType: MT.index,
    top,
    blobs: parts.flatMap((p) => [p.config, p.layer]),
    children: parts.map((p) => p.manifest),
    platforms: platforms.map(([os, arch]) => `${os}/${arch}`),
  };
}

export function labImages(): LabImage[] {
  const single = platformManifest('linux', 'amd64');
  return [
    indexImage('lab/probe', 'v1', [
      ['linux', 'amd64'],
      ['linux', 'arm64'],
    ]),
    indexImage('lab/amd64only', 'v1', [['linux', 's390x']]),
    {
      repository: 'lab/single',
      tag: 'v1',
      digest: single.manifest.digest,
      mediaType: MT.manifest,
      top: single.manifest,
      blobs: [single.config, single.layer],
      children: [],
      platforms: ['linux/amd64'],
    },
  ];
}
