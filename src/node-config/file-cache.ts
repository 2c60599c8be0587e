/**
 * The node's files read again only when they changed. A file's version is
 * its stamp: device, inode, size, modification and change time (ns), taken
 * with one stat that allocates no error object when the file is missing
 * (`throwIfNoEntry: false`). A file whose stamp is the one seen at the last
 * read is answered from memory; a new inode (a ConfigMap's symlink swap, an
 * editor's rename), a new size or a new time means a new read.
 *
 * A file modified less than RACY_MS before it was read may change again
 * within the same timestamp tick without its stamp changing (Linux takes
 * file times from a coarse clock): such a "racy" entry is read again until
 * it is old enough, as git does with its index.
 *
 * Nothing here is module-level: the owner (the agent, one CLI run, a test)
 * keeps a FileCache as long as it wants, and it is bounded (oldest dropped).
 */
import fs from 'node:fs';
import type { HostFs } from './host-root.js';
import type { HostsFs } from './hosts-toml.js';

/** The parts of a stat result a stamp is made of (bigint stats in production, numbers in tests). */
export interface FileStat {
  dev?: number | bigint;
  ino: number | bigint;
  size: number | bigint;
  mtimeMs: number | bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** File access (injected in tests). stat/lstat return undefined when nothing is there (ENOENT) and throw other errors. */
export interface CacheFs {
  stat(path: string): FileStat | undefined;
  lstat(path: string): FileStat | undefined;
  readFile(path: string): string;
  readlink(path: string): string;
  /** Entries with their kind (a link to a directory counts as a non-directory, as nodeHostsFs does). */
  readdir(path: string): Array<{ name: string; isDirectory(): boolean }>;
}

export const realCacheFs: CacheFs = {
  stat: (p) => fs.statSync(p, { bigint: true, throwIfNoEntry: false }),
  lstat: (p) => fs.lstatSync(p, { bigint: true, throwIfNoEntry: false }),
  readFile: (p) => fs.readFileSync(p, 'utf8'),
  readlink: (p) => fs.readlinkSync(p, 'utf8'),
  readdir: (p) => fs.readdirSync(p, { withFileTypes: true }),
};

/** A file changed this recently may change again unseen (coarse file times): read it again. */
export const RACY_MS = 2000;

const MISSING = '-ENOENT';

/** A stamp: the file's identity and version, or "-CODE" when it cannot be stat'ed. */
function stampOf(st: FileStat | undefined): string {
  if (st === undefined) return MISSING;
  const kind = st.isSymbolicLink() ? 'l' : st.isDirectory() ? 'd' : 'f';
  return `${kind}:${String(st.dev ?? '')}:${String(st.ino)}:${String(st.size)}:${String(st.mtimeNs ?? st.mtimeMs)}:${String(st.ctimeNs ?? '')}`;
}

function codeOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'EIO';
}

function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: cannot ${syscall} '${path}'`), { code, syscall, path });
}

interface Entry {
  stamp: string;
  racy: boolean;
  text?: string;
  names?: string[];
  /** The error a read failed with, kept so a missing file costs no new error object until it changes. */
  error?: NodeJS.ErrnoException;
}

/** A synchronous answer as a promise (a throw becomes a rejection). */
function settle<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Which version of each file a result was built from: "s:" stat (links followed) or "l:" lstat keys → stamp. */
export type Deps = Map<string, string>;

export interface FileCacheOptions {
  fs?: CacheFs;
  /** Wall clock in ms (for the racy check). */
  now?: () => number;
  /** Files (and directories) remembered; the oldest is dropped beyond it. Default 256. */
  maxEntries?: number;
}

export class FileCache {
  readonly #fs: CacheFs;
  readonly #now: () => number;
  readonly #max: number;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: FileCacheOptions = {}) {
    this.#fs = opts.fs ?? realCacheFs;
    this.#now = opts.now ?? Date.now;
    this.#max = Math.max(1, opts.maxEntries ?? 256);
  }

  /** Entries remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /** The current stamp of what `path` leads to ("-ENOENT" when missing). Never throws. */
  stamp(path: string): string {
    try {
      return stampOf(this.#fs.stat(path));
    } catch (err) {
      return `-${codeOf(err)}`;
    }
  }

  /** The current stamp of `path` itself (a link is not followed). Never throws. */
  lstamp(path: string): string {
    try {
      return stampOf(this.#fs.lstat(path));
    } catch (err) {
      return `-${codeOf(err)}`;
    }
  }

  #isRacy(st: FileStat | undefined): boolean {
    return st !== undefined && this.#now() - Number(st.mtimeMs) < RACY_MS;
  }

  #statEntry(key: string, path: string): { entry: Entry | undefined; st: FileStat | undefined; stamp: string } {
    let st: FileStat | undefined;
    let stamp: string;
    try {
      st = this.#fs.stat(path);
      stamp = stampOf(st);
    } catch (err) {
      stamp = `-${codeOf(err)}`;
    }
    const entry = this.#entries.get(key);
    if (entry && (entry.stamp !== stamp || entry.racy)) return { entry: undefined, st, stamp };
    return { entry, st, stamp };
  }

  #remember(key: string, entry: Entry): Entry {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
    return entry;
  }

  /** A file's text, read again only when its stamp changed. Throws an fs error (with `code`) when it cannot be read. */
  read(path: string): string {
    const key = `f:${path}`;
    const { entry, st, stamp } = this.#statEntry(key, path);
    let e = entry;
    if (!e) {
      if (stamp === MISSING) e = { stamp, racy: false, error: fsError('ENOENT', 'open', path) };
      else {
        try {
          e = { stamp, racy: this.#isRacy(st), text: this.#fs.readFile(path) };
        } catch (err) {
          e = { stamp, racy: false, error: err as NodeJS.ErrnoException };
        }
      }
      this.#remember(key, e);
    }
    if (e.error) throw e.error;
    return e.text ?? '';
  }

  /** Names of a directory's non-directory entries, read again only when the directory changed; [] when it does not exist. */
  list(path: string): string[] {
    const key = `d:${path}`;
    const { entry, st, stamp } = this.#statEntry(key, path);
    let e = entry;
    if (!e) {
      if (stamp === MISSING) e = { stamp, racy: false, names: [] };
      else {
        try {
          const names = this.#fs
            .readdir(path)
            .filter((d) => !d.isDirectory())
            .map((d) => d.name);
          e = { stamp, racy: this.#isRacy(st), names };
        } catch (err) {
          e = { stamp, racy: false, error: err as NodeJS.ErrnoException };
        }
      }
      this.#remember(key, e);
    }
    if (e.error) throw e.error;
    return e.names ?? [];
  }

  /** True when `path` exists (links followed); false for ENOENT and ENOTDIR, other errors throw. */
  exists(path: string): boolean {
    const stamp = this.stamp(path);
    if (stamp === MISSING || stamp === '-ENOTDIR') return false;
    if (stamp.startsWith('-')) throw fsError(stamp.slice(1), 'stat', path);
    return true;
  }

  /** True when a file in `deps` changed since they were recorded, or was racy then. */
  changed(deps: Deps): boolean {
    for (const [key, stamp] of deps) {
      const path = key.slice(2);
      const now = key.startsWith('l:') ? this.lstamp(path) : this.stamp(path);
      if (now !== stamp) return true;
      if (key.startsWith('s:') && this.#entries.get(`f:${path}`)?.racy === true) return true;
    }
    return false;
  }

  /**
   * A HostFs (host-root.ts) reading through this cache and recording in `deps`
   * the version of every path it looked at, missing ones included, so that
   * `changed(deps)` later says whether a result built through it is stale.
   */
  recordingHostFs(deps: Deps): HostFs {
    return {
      isLink: (p) => {
        const stamp = this.lstamp(p);
        deps.set(`l:${p}`, stamp);
        if (stamp.startsWith('-')) throw fsError(stamp.slice(1), 'lstat', p);
        return stamp.startsWith('l:');
      },
      readlink: (p) => {
        deps.set(`l:${p}`, this.lstamp(p));
        return this.#fs.readlink(p);
      },
      readFile: (p) => {
        deps.set(`s:${p}`, this.stamp(p));
        return this.read(p);
      },
    };
  }

  /** The HostsFs of hosts-toml.ts (certs.d lookups) through this cache: no re-read, and no error object for a missing directory. */
  hostsFs(): HostsFs {
    return {
      readFile: (p) => settle(() => this.read(p)),
      readdir: (p) => settle(() => this.list(p)),
      exists: (p) => settle(() => this.exists(p)),
    };
  }
}
