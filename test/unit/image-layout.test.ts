/**
 * The container image, tested without a container engine (none runs here):
 * - the Dockerfile's shape: Node 24 LTS build stage, distroless Node 24
 *   runtime as uid 65532, OCI labels, only production pieces copied;
 * - the build stage's production install (its RUN line, run verbatim as
 *   shell, npm offline: the packages come from npm's cache, which CI's
 *   `npm ci` fills) gives every dependency and no dev dependency;
 * - the runtime layout (/app: dist, production node_modules, package.json)
 *   started as uid 65532 with nothing but the image's ENV, in a private
 *   mount namespace whose root and app directory are read-only:
 *   `--version` and `probe --help` work, and nothing can be written.
 * Not tested here: the image build itself, the base images, Node 24 (the
 * tests run on the machine's Node, >= 20.18 like the code).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  scripts: { build: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | null;
  steps: Instruction[];
}

/** The Dockerfile's stages and instructions (comments dropped, `\` continuations joined). */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = (m[1] ?? '').toUpperCase();
    const args = m[2] ?? '';
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: f?.[1] ?? args, name: f?.[2] ?? null, steps: [] });
    } else {
      stages.at(-1)?.steps.push({ op, args });
    }
  }
  return stages;
}

const dockerfileText = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfileText);
const [build, runtime] = stages as [Stage, Stage];
const steps = (s: Stage, op: string): string[] => s.steps.filter((i) => i.op === op).map((i) => i.args);

const work = mkdtempSync(join(tmpdir(), 'pullprobe-image-'));
chmodSync(work, 0o755);
after(() => {
  spawnSync('chmod', ['-R', 'u+w', work]);
  rmSync(work, { recursive: true, force: true });
});

test('Dockerfile: Node 24 build stage, distroless Node 24 runtime as uid 65532, OCI labels, digest refresh documented', () => {
  assert.equal(stages.length, 2);
  assert.match(build.from, /^node:24-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/);
  assert.equal(build.name, 'build');
  assert.match(runtime.from, /^gcr\.io\/distroless\/nodejs24-debian12:nonroot(@sha256:[0-9a-f]{64})?$/);
  assert.deepEqual(steps(runtime, 'USER'), ['65532:65532']);
  const labels = steps(runtime, 'LABEL').join(' ');
  for (const l of ['title', 'description', 'version', 'revision', 'licenses']) {
    assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${l}=`), l);
  }
  assert.match(dockerfileText, /imagetools inspect node:24/, 'how to look a digest up');
  assert.deepEqual(
    steps(runtime, 'COPY'),
    ['--from=build /prod/node_modules ./node_modules', '--from=build /src/dist ./dist', '--from=build /src/package.json ./'],
    'the runtime gets production node_modules, dist and package.json, nothing else',
  );
  assert.deepEqual(steps(runtime, 'ENTRYPOINT'), ['["/nodejs/bin/node", "/app/dist/cli.js"]']);
  assert.deepEqual(steps(runtime, 'CMD'), ['["agent", "--config", "/etc/pullprobe/config.yaml"]']);
  const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8');
  for (const c of steps(build, 'COPY')) {
    for (const src of c.split(/\s+/).slice(0, -1))
      assert.match(ignore, new RegExp(`^!${src.replace('.', '\\.')}`, 'm'), `${src} is let through .dockerignore`);
  }
  // npm run build's own files (scripts/build.mjs) are copied into the build stage.
  const copied = steps(build, 'COPY').flatMap((c) => c.split(/\s+/).slice(0, -1));
  for (const file of pkg.scripts.build.match(/\bscripts\/[\w.-]+/g) ?? []) {
    assert.ok(
      copied.some((src) => file === src || file.startsWith(`${src}/`)),
      `${file} (npm run build) is copied into the build stage`,
    );
  }
});

/** Build-stage paths (/src, /prod) mapped into the work directory. */
const inWork = (s: string): string => s.replace(/(^|[\s=])\/(src|prod)\b/g, `$1${work}/$2`);

test("the build stage's production install, run as shell: every dependency, no dev dependency", () => {
  assert.equal(steps(build, 'WORKDIR')[0], '/src');
  mkdirSync(join(work, 'src'));
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(REPO, f), join(work, 'src', f));
  const run = steps(build, 'RUN').find((r) => r.includes('--omit=dev'));
  assert.ok(run, 'a RUN line installs production dependencies');
  const r = spawnSync('sh', ['-c', inWork(run)], {
    cwd: join(work, 'src'),
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/root', npm_config_offline: 'true' },
  });
  assert.equal(r.status, 0, `${run}\n${r.stderr}`);
  const installed = new Set(
    readdirSync(join(work, 'prod', 'node_modules')).flatMap((n) =>
      n.startsWith('@') ? readdirSync(join(work, 'prod', 'node_modules', n)).map((s) => `${n}/${s}`) : [n],
    ),
  );
  for (const d of Object.keys(pkg.dependencies)) assert.ok(installed.has(d), `dependency ${d} installed`);
  // A dev dependency that a production dependency also needs (lock entry not marked dev, e.g. @types/node
  // through @grpc/grpc-js → protobufjs) is rightly installed; every dev-only one must be left out.
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const d of Object.keys(pkg.devDependencies)) {
    if (lock.packages[`node_modules/${d}`]?.dev !== true) continue;
    assert.ok(!installed.has(d), `dev dependency ${d} left out`);
  }
});

test('the runtime layout starts as uid 65532 with only the image ENV and a read-only root: --version, probe --help', () => {
  const dist = join(REPO, 'dist', 'cli.js');
  assert.ok(existsSync(dist), 'dist/cli.js is missing: run `npm run build` first (npm test does)');
  assert.ok(existsSync(join(work, 'prod', 'node_modules')), 'needs the production install of the previous test');
  const app = join(work, 'app');
  mkdirSync(app);
  cpSync(join(work, 'prod', 'node_modules'), join(app, 'node_modules'), { recursive: true });
  cpSync(join(REPO, 'dist'), join(app, 'dist'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(app, 'package.json'));
  execFileSync('chmod', ['-R', 'a+rX,a-w', app]);
  const env = steps(runtime, 'ENV').map((e) => e.replace(/\s+/, '='));
  assert.deepEqual(env, ['NODE_ENV=production']);
  const start = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const inner = [
      'mount -o remount,bind,ro /',
      `mount --bind "${work}" "${work}"`,
      `mount -o remount,bind,ro "${work}"`,
      `exec env -i ${env.join(' ')} setpriv --reuid 65532 --regid 65532 --clear-groups --no-new-privs "$@"`,
    ].join(' && ');
    return spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', inner, 'sh', process.execPath, ...args], {
      encoding: 'utf8',
    });
  };
  const probe = [
    'const fs = require("node:fs");',
    `const tries = ["${app}/x", "/x", "/tmp/pullprobe-image-write-check"].map((p) => { try { fs.writeFileSync(p, "1"); return "written"; } catch (e) { return e.code; } });`,
    'console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), env: Object.keys(process.env), tries }));',
  ].join(' ');
  const seen = start(['-e', probe]);
  assert.equal(seen.status, 0, seen.stderr);
  const facts = JSON.parse(seen.stdout) as { uid: number; gid: number; env: string[]; tries: string[] };
  assert.deepEqual(facts, { uid: 65532, gid: 65532, env: ['NODE_ENV'], tries: ['EROFS', 'EROFS', 'EROFS'] });

  const version = start([join(app, 'dist', 'cli.js'), '--version']);
  assert.equal(version.status, 0, version.stderr);
  assert.match(version.stdout, new RegExp(pkg.version.replace(/\./g, '\\.')));
  const help = start([join(app, 'dist', 'cli.js'), 'probe', '--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /probe/);
  assert.equal(help.stderr, '');
});
