// npm run build: src/ bundled by esbuild into dist/ (or the directory given as
// the first argument), one ES module per command (loaded lazily by cli.js) and
// shared chunks.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { argv } from 'node:process';
import { build } from 'esbuild';

/**
 * Node's built-in modules are loaded with require(), not as ES modules.
 * Importing a built-in as an ES module builds its namespace, which reads every
 * export and so runs the module's lazy getters: `node:crypto` loads WebCrypto,
 * `node:net` BlockList and SocketAddress, and on Node 24 `node:http` loads
 * Node's own bundled undici and web streams (~50 ms and ~2.9 MiB of live heap,
 * issue 10). require() hands over the exports object and nothing else runs.
 * The bundle's `require` is the banner's createRequire.
 */
const builtinsThroughRequire = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === 'import-statement' || args.kind === 'dynamic-import'
        ? { path: args.path, namespace: 'node-builtin' }
        : { path: args.path, external: true },
    );
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/**
 * undici's client.js loads client-h2.js, and with it Node's http2 (~15 ms of a
 * CLI run on Node 24, and its code in the agent's heap), when it is loaded.
 * HTTP/2 is used only on a connection that negotiates h2, which pullprobe never
 * offers (undici's allowH2 is off): the require moves into a function, so
 * client-h2.js loads on the first such connection. If undici's line changes,
 * the build stops here rather than bundle it unchanged.
 */
const UNDICI_H2 = "const connectH2 = require('./client-h2.js')";
const lazyUndiciH2 = {
  name: 'lazy-undici-h2',
  setup(b) {
    b.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(UNDICI_H2)) {
        throw new Error(`${args.path} no longer has "${UNDICI_H2}": update lazyUndiciH2 in scripts/build.mjs`);
      }
      const lazy = "let connectH2Module\nconst connectH2 = (...args) => (connectH2Module ??= require('./client-h2.js'))(...args)";
      return { contents: text.replace(UNDICI_H2, lazy), loader: 'js' };
    });
  },
};

const outdir = argv[2] ?? 'dist';
/**
 * An output file's text as pure ASCII. V8 keeps a script's source for as long as
 * its functions live, one byte per character only when every character fits
 * in Latin-1: a single "…" left in a comment (esbuild escapes strings, not the
 * comments it keeps) makes the 770 KB probe chunk take 1.5 MB of heap in the
 * agent and in every CLI run. Escaping each remaining code unit as \uXXXX
 * means the same in a comment, a string, a template, a regular expression or
 * an identifier.
 */
function asciiOnly(text) {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

rmSync(outdir, { recursive: true, force: true });
const { outputFiles } = await build({
  entryPoints: ['src/cli.ts', 'src/kubectl-pullprobe.ts'],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir,
  external: ['pino', 'prom-client', '@grpc/grpc-js', 'yaml', './cli.js'],
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __pullprobeRequire } from 'node:module'; const require = __pullprobeRequire(import.meta.url);",
  },
  plugins: [builtinsThroughRequire, lazyUndiciH2],
  write: false,
});
for (const file of outputFiles) {
  mkdirSync(dirname(file.path), { recursive: true });
  if (!file.path.endsWith('.js')) writeFileSync(file.path, file.contents);
  // An entry with a #! line is executable, as esbuild writes it itself.
  else writeFileSync(file.path, asciiOnly(file.text), { mode: file.text.startsWith('#!') ? 0o755 : 0o644 });
}
