/**
 * Reading the node's own files from inside a container that mounts the
 * node's filesystem (or parts of it) under a host root such as /host.
 *
 * A link like /host/etc/resolv.conf → /run/systemd/resolve/stub-resolv.conf
 * names a path on the node: followed from inside the container it dangles.
 * Paths under the host root are therefore resolved component by component
 * inside that root (absolute targets restart at the root, `..` never climbs
 * above it, at most MAX_LINKS links as Linux allows), the way the node
 * itself would read them. Paths outside the host root, or with no host root
 * (""/"/"), are read as they are.
 */
import fs from 'node:fs';

/** File access used here (injected in tests, the real filesystem by default). */
export interface HostFs {
  /** True when `p` itself is a symbolic link; throws when it does not exist. */
  isLink(p: string): boolean;
  readlink(p: string): string;
  readFile(p: string): string;
}

export const realHostFs: HostFs = {
  isLink: (p) => fs.lstatSync(p).isSymbolicLink(),
  readlink: (p) => fs.readlinkSync(p, 'utf8'),
  readFile: (p) => fs.readFileSync(p, 'utf8'),
};

/** Linux MAXSYMLINKS. */
export const MAX_LINKS = 40;

/** "" for no host root ("" or "/"), else the root without trailing slashes. */
export function normaliseRoot(root: string | undefined): string {
  let r = root ?? '';
  while (r.endsWith('/')) r = r.slice(0, -1);
  return r;
}

/** The path as seen inside the host root ("/etc/resolv.conf"), or null when `file` is not under it. */
function insideRoot(file: string, root: string): string | null {
  if (root === '') return null;
  if (file === root) return '/';
  return file.startsWith(`${root}/`) ? file.slice(root.length) : null;
}

export interface Resolved {
  /** The path to open (under the host root when `file` was). */
  path: string;
  /** Set when the links loop or chain too long (ELOOP). */
  error?: string;
}

/** Where `file` leads on the node: links under the host root followed inside it. */
export function resolveInHostRoot(file: string, hostRoot: string | undefined, hfs: HostFs = realHostFs): Resolved {
  const root = normaliseRoot(hostRoot);
  const inside = insideRoot(file, root);
  if (inside === null) return { path: file };
  const todo = inside
    .split('/')
    .filter((c) => c !== '' && c !== '.')
    .reverse();
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const c = todo.pop() as string;
    if (c === '..') {
      done.pop();
      continue;
    }
    const here = `${root}/${[...done, c].join('/')}`;
    let target: string | undefined;
    try {
      if (hfs.isLink(here)) target = hfs.readlink(here);
    } catch {
      // Missing or unreadable: keep the name; opening it reports why.
    }
    if (target === undefined) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) return { path: here, error: 'ELOOP' };
    if (target.startsWith('/')) done.length = 0;
    todo.push(
      ...target
        .split('/')
        .filter((x) => x !== '' && x !== '.')
        .reverse(),
    );
  }
  return { path: `${root}/${done.join('/')}` };
}

export type NodeFileRead = { ok: true; text: string; path: string } | { ok: false; code: string; path: string };

/** Read one of the node's files; never throws. `path` is the file actually opened. */
export function readNodeFile(file: string, hostRoot: string | undefined, hfs: HostFs = realHostFs): NodeFileRead {
  const resolved = resolveInHostRoot(file, hostRoot, hfs);
  if (resolved.error !== undefined) return { ok: false, code: resolved.error, path: resolved.path };
  try {
    return { ok: true, text: hfs.readFile(resolved.path), path: resolved.path };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { ok: false, code: typeof code === 'string' ? code : 'error', path: resolved.path };
  }
}

/** "FILE: cannot read (CODE)", naming the link target too when it differs. */
export function cannotRead(file: string, r: { code: string; path: string }): string {
  return `${file}: cannot read (${r.code})${r.path !== file ? ` (it leads to ${r.path})` : ''}`;
}
