/**
 * The build information a Go program carries (what `go version -m` prints):
 * the Go version and the module lines, read from the ELF file's
 * `.go.buildinfo` section (or, without section headers, the first 64 KiB of
 * its first writable segment), as Go's debug/buildinfo reads them. Reads a
 * few KiB at known offsets, never the whole binary.
 *
 * Used to tell containerd 1.x from 2.x on a node (containerd-version.ts):
 * 2.x is the module github.com/containerd/containerd/v2.
 */
import { readSync } from 'node:fs';

export interface GoBuildInfo {
  /** "go1.22.5"; null for the pre-1.18 layout (pointers into the binary, not read here). */
  goVersion: string | null;
  /** The main package's import path ("github.com/containerd/containerd/v2/cmd/containerd"); "" when absent. */
  path: string;
  /** The main module and every dependency: path → version ("v2.0.4", "(devel)"), replacements applied. */
  modules: Map<string, string>;
  /** The main module's path ("" when built outside module mode). */
  main: string;
}

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const SEARCH_BYTES = 64 * 1024;

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
export type ReadAt = (offset: number, length: number) => Buffer;

/** A ReadAt on an open file of `size` bytes. */
export function fdReader(fd: number, size: number): ReadAt {
  return (offset, length) => {
    const n = Math.max(0, Math.min(length, size - offset));
    const b = Buffer.alloc(n);
    let got = 0;
    while (got < n) {
      const r = readSync(fd, b, got, n - got, offset + got);
      if (r === 0) break;
      got += r;
    }
    return b.subarray(0, got);
  };
}

/** The build information from an ELF file read through `readAt` (pure given readAt); null when there is none. */
export function goBuildInfo(readAt: ReadAt): GoBuildInfo | null {
  const region = buildInfoRegion(readAt);
  if (region === null) return null;
  for (let at = 0; at + 32 <= region.length; at += 16) {
    if (region.subarray(at, at + MAGIC.length).equals(MAGIC)) return parseHeader(region.subarray(at));
  }
  return null;
}

/** The bytes where the build information lies: the .go.buildinfo section, else the first writable PT_LOAD's start. */
function buildInfoRegion(readAt: ReadAt): Buffer | null {
  const h = readAt(0, 64);
  if (h.length < 52 || h.readUInt32BE(0) !== 0x7f454c46) return null;
  const is64 = h[4] === 2;
  if (h[5] !== 1 || (!is64 && h[4] !== 1) || (is64 && h.length < 64)) return null; // little-endian ELF32/ELF64 only
  const word = (b: Buffer, o: number): number => (is64 ? Number(b.readBigUInt64LE(o)) : b.readUInt32LE(o));
  const shoff = word(h, is64 ? 0x28 : 0x20);
  const shentsize = h.readUInt16LE(is64 ? 0x3a : 0x2e);
  const shnum = h.readUInt16LE(is64 ? 0x3c : 0x30);
  const shstrndx = h.readUInt16LE(is64 ? 0x3e : 0x32);
  if (shoff > 0 && shnum > 0 && shnum < 4096 && shentsize >= (is64 ? 64 : 40) && shstrndx < shnum) {
    const table = readAt(shoff, shnum * shentsize);
    const section = (i: number): { name: number; offset: number; size: number } | null => {
      const o = i * shentsize;
      if (o + shentsize > table.length) return null;
      return {
        name: table.readUInt32LE(o),
        offset: word(table, o + (is64 ? 24 : 16)),
        size: word(table, o + (is64 ? 32 : 20)),
      };
    };
    const strtab = section(shstrndx);
    if (strtab !== null) {
      const names = readAt(strtab.offset, Math.min(strtab.size, SEARCH_BYTES));
      for (let i = 0; i < shnum; i++) {
        const s = section(i);
        if (s === null) break;
        const end = names.indexOf(0, s.name);
        if (end > s.name && names.toString('latin1', s.name, end) === '.go.buildinfo')
          return readAt(s.offset, Math.min(s.size, SEARCH_BYTES));
      }
    }
  }
  // No section headers (or no .go.buildinfo): Go's reader looks in the first writable loadable segment.
  const phoff = word(h, is64 ? 0x20 : 0x1c);
  const phentsize = h.readUInt16LE(is64 ? 0x36 : 0x2a);
  const phnum = h.readUInt16LE(is64 ? 0x38 : 0x2c);
  if (phoff === 0 || phnum === 0 || phnum > 1024 || phentsize < (is64 ? 56 : 32)) return null;
  const ph = readAt(phoff, phnum * phentsize);
  for (let i = 0; i < phnum && (i + 1) * phentsize <= ph.length; i++) {
    const o = i * phentsize;
    const type = ph.readUInt32LE(o);
    const flags = ph.readUInt32LE(is64 ? o + 4 : o + 24);
    if (type === 1 && (flags & 2) !== 0) {
      const offset = word(ph, is64 ? o + 8 : o + 4);
      const filesz = word(ph, is64 ? o + 32 : o + 16);
      return readAt(offset, Math.min(filesz, SEARCH_BYTES));
    }
  }
  return null;
}

/** The 32-byte header and, in Go 1.18+'s inline layout, the two length-prefixed strings after it. */
function parseHeader(b: Buffer): GoBuildInfo | null {
  const flags = b[15] ?? 0;
  if ((flags & 2) === 0) return { goVersion: null, path: '', modules: new Map(), main: '' };
  let pos = 32;
  const str = (): string | null => {
    let n = 0;
    let shift = 0;
    for (;;) {
      const byte = b[pos++];
      if (byte === undefined || shift > 28) return null;
      n |= (byte & 0x7f) << shift;
      if (byte < 0x80) break;
      shift += 7;
    }
    if (pos + n > b.length) return null;
    const s = b.toString('utf8', pos, pos + n);
    pos += n;
    return s;
  };
  const goVersion = str();
  let mod = str();
  if (goVersion === null || mod === null) return null;
  // The module text sits between two 16-byte sentinels (Go's debug/buildinfo strips them the same way).
  mod = mod.length >= 33 && mod[mod.length - 17] === '\n' ? mod.slice(16, -16) : '';
  return parseModInfo(goVersion, mod);
}

/** `go version -m` lines: path, mod, dep, and "=>" for a replacement of the line before. */
export function parseModInfo(goVersion: string | null, text: string): GoBuildInfo {
  const info: GoBuildInfo = { goVersion, path: '', modules: new Map(), main: '' };
  let last: string | null = null;
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'path' && f[1] !== undefined) info.path = f[1];
    else if ((f[0] === 'mod' || f[0] === 'dep') && f[1] !== undefined) {
      info.modules.set(f[1], f[2] ?? '');
      if (f[0] === 'mod') info.main = f[1];
      last = f[1];
    } else if (f[0] === '=>' && last !== null && f[1] !== undefined) {
      // A replacement: the code built is the replacement's; its path keeps the module's major.
      info.modules.set(last, f[2] ?? info.modules.get(last) ?? '');
    }
  }
  return info;
}
