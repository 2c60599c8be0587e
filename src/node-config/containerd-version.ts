/**
 * Which containerd runs on the node, 1.x or 2.x: it decides where containerd
 * looks for registry hosts when config.toml (version 2) sets no config_path
 * and no mirrors (containerd-config.ts effectiveConfigPath): 1.x uses no
 * certs.d at all, 2.x its default roots.
 *
 * Read from the running binary (/proc/<pid>/exe, the file containerd was
 * started from even if it has been replaced since) by its Go build
 * information: containerd 2.x is the module github.com/containerd/containerd/v2.
 * Reading another process's exe needs root (or CAP_SYS_PTRACE) and hostPID;
 * when it cannot be read the version stays unknown and the caller says so.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { fdReader, goBuildInfo, type GoBuildInfo } from './go-buildinfo.js';

export interface ContainerdVersion {
  major: number;
  /** The module version ("v2.0.4"); "" when the build does not record one (distribution packages). */
  version: string;
  /** Where it was read: "/proc/812/exe". */
  from: string;
}

const MODULE = /^github\.com\/containerd\/containerd(?:\/v(\d+))?$/;
const COMMAND = /^github\.com\/containerd\/containerd(?:\/v(\d+))?\/cmd\/containerd$/;

/** containerd's major version from a binary's build information (pure); null when it does not say. */
export function containerdVersionOf(info: GoBuildInfo): { major: number; version: string } | null {
  // Before Go 1.18 the build information holds pointers, not text; containerd 2.x needs Go 1.22 or later.
  if (info.goVersion === null) return { major: 1, version: '' };
  const major = (m: RegExpExecArray): number => (m[1] === undefined ? 1 : Number(m[1]));
  const names = info.main ? [info.main, ...info.modules.keys()] : [...info.modules.keys()];
  for (const name of names) {
    const m = MODULE.exec(name);
    if (m) return { major: major(m), version: info.modules.get(name) ?? '' };
  }
  // Built outside module mode (Debian's package): only the main package's import path is recorded.
  const c = COMMAND.exec(info.path);
  return c ? { major: major(c), version: '' } : null;
}

export type ContainerdVersionResult = { ok: true; version: ContainerdVersion } | { ok: false; problem: string };

/** The last binary's answer, kept while the process and its exe are the same (a restart has a new pid). */
let last: { exe: string; stamp: string; result: ContainerdVersionResult } | null = null;

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'error';
}

/** The version of containerd process `pid` (proxy-env.ts findContainerdPid; null: none visible) in procRoot. */
export function containerdVersion(pid: number | null, procRoot = '/proc'): ContainerdVersionResult {
  if (pid === null) return { ok: false, problem: `no containerd process visible in ${procRoot}` };
  const exe = `${procRoot}/${pid}/exe`;
  let fd: number;
  try {
    fd = openSync(exe, 'r');
  } catch (err) {
    return { ok: false, problem: `cannot read ${exe} (${codeOf(err)}; it needs root and hostPID)` };
  }
  try {
    const st = fstatSync(fd);
    const stamp = `${st.dev}:${st.ino}:${st.mtimeMs}:${st.size}`;
    if (last?.exe === exe && last.stamp === stamp) return last.result;
    const info = goBuildInfo(fdReader(fd, st.size));
    const v = info ? containerdVersionOf(info) : null;
    const result: ContainerdVersionResult = v
      ? { ok: true, version: { ...v, from: exe } }
      : { ok: false, problem: `${exe} does not say which containerd it is` };
    last = { exe, stamp, result };
    return result;
  } catch (err) {
    return { ok: false, problem: `cannot read ${exe} (${codeOf(err)})` };
  } finally {
    closeSync(fd);
  }
}
