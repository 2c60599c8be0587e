/**
 * The CLI as a child process, compiled the way `npm run build` compiles it, so
 * a test measures the CLI's own memory rather than a TypeScript loader's
 * (`node --import tsx` alone holds ~100 MiB; plain node ~40 MiB).
 *
 * prepareCli() transpiles src/ file by file with the project's TypeScript into
 * node_modules/.cache (so bare imports resolve to the project's packages) and
 * writes a preload that, on exit, writes the process's peak resident set size
 * in KiB to the file named by PULLPROBE_TEST_RSS_FILE. The child is then
 * `node --import <preload> <cache>/src/cli.js probe …`, the same entry as
 * `node dist/cli.js`.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

const ROOT = new URL('../../', import.meta.url).pathname;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Node arguments that run the CLI (append the command and its flags). */
export function prepareCli(): string[] {
  const out = join(ROOT, 'node_modules/.cache/pullprobe-test-cli');
  for (const file of tsFiles(join(ROOT, 'src'))) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
    }).outputText;
    const dest = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  const preload = join(out, 'peak-rss.mjs');
  writeFileSync(
    preload,
    [
      "import { writeFileSync } from 'node:fs';",
      'const file = process.env.PULLPROBE_TEST_RSS_FILE;',
      "if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));",
      '',
    ].join('\n'),
  );
  return ['--import', preload, join(out, 'src/cli.js')];
}
