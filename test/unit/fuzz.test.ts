/**
 * Fuzz test for every pure parser (issue 6, "Done when"): at least 100,000
 * inputs each, generated from a fixed seed (printed) by mutating realistic
 * texts (test fixtures, the upstream conformance tables, the parsers' own unit
 * test strings) plus random bytes, long repetitions and structure-aware
 * tricks (deep nesting, YAML aliases, huge numbers, control characters).
 * Each parser must throw nothing but its documented named error, and no
 * single input may take more than 100 ms of CPU. A failure prints the input
 * index and a JSON-escaped excerpt; `FUZZ_SEED=n` reruns with another seed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { filesUnder, fuzz, int, isNamedError, jsonStrings, pick, type Corpus, type FuzzReport, type Rng } from '../support/fuzz.js';
import { parseImageReference, parseTarget } from '../../src/model/reference.js';
import { parseScope, parseWwwAuthenticate } from '../../src/probe/www-authenticate.js';
import { parseResolvConf, usedNameservers } from '../../src/node-config/resolv-conf.js';
import { lookupHosts, parseHosts } from '../../src/node-config/hosts-file.js';
import { HostsTomlError, parseHostsToml } from '../../src/node-config/hosts-toml.js';
import { ConfigError, credentialFor, parseDockerConfig } from '../../src/node-config/docker-config.js';
import { parseConfig } from '../../src/agent/config.js';
import { explainMessage } from '../../src/diagnosis/explain.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20_240_606);
const RUNS = 100_000;
const LIMIT_MS = 100;
/** CPU time per parser, a safety stop: the 8 parsers take well under 60 s in all. */
const BUDGET_MS = 25_000;

console.log(`fuzz: seed ${SEED}, ${RUNS} inputs per parser, limit ${LIMIT_MS} ms CPU per input (FUZZ_SEED=${SEED} to reproduce)`);

const ROOT = new URL('../../', import.meta.url).pathname;

function conformance(...files: string[]): string[] {
  const out: string[] = [];
  // the project's own copies of the upstream tables: the corpus is the repository's, the same on every machine
  for (const f of files) {
    try {
      out.push(...jsonStrings(JSON.parse(readFileSync(join(ROOT, 'test/fixtures/conformance', f), 'utf8'))));
    } catch {
      /* a table this parser has no copy of */
    }
  }
  return out.filter((s) => s.length < 4000);
}

/** String literals of a unit test file: the parser's own examples. */
function testStrings(file: string): string[] {
  let src: string;
  try {
    src = readFileSync(join(ROOT, 'test/unit', file), 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const m of src.matchAll(/'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\$]|\\.)*)`/g)) {
    const raw = m[1] ?? m[2] ?? m[3] ?? '';
    try {
      out.push(JSON.parse(`"${raw.replace(/\\'/g, "'").replace(/\\`/g, '`').replace(/"/g, '\\"').replace(/\\\\"/g, '\\"')}"`) as string);
    } catch {
      out.push(raw);
    }
  }
  return out;
}

const fixtures = (dir: string, keep: (n: string) => boolean): string[] => filesUnder(join(ROOT, 'test/fixtures', dir), keep);
const deep = (open: string, close: string, n: number): string => open.repeat(n) + close.repeat(n);
const rep = (rng: Rng, unit: string, max: number): string => unit.repeat(1 + int(rng, Math.max(1, Math.floor(max / unit.length))));

function check(name: string, r: FuzzReport, budgetMs: number): void {
  console.log(
    `fuzz ${name}: ${r.runs} inputs in ${(r.cpuMs / 1000).toFixed(1)} s CPU (${(r.wallMs / 1000).toFixed(1)} s wall); slowest #${r.slowest.index} ${r.slowest.ms.toFixed(1)} ms CPU (${r.slowest.length} chars) ${r.slowest.excerpt}`,
  );
  const lines = [
    ...r.failures.map((f) => `input #${f.index} (seed ${SEED}) threw ${f.error}\n    input: ${f.excerpt}`),
    ...r.slow.map((s) => `input #${s.index} (seed ${SEED}) took ${s.ms.toFixed(0)} ms CPU (${s.length} chars)\n    input: ${s.excerpt}`),
  ];
  if (r.outOfTime) lines.push(`only ${r.runs} inputs within the ${budgetMs / 1000} s CPU budget`);
  assert.equal(lines.length, 0, `${name}:\n  ${lines.join('\n  ')}`);
  assert.ok(r.runs >= RUNS, `${name}: ${r.runs} inputs, want ${RUNS}`);
}

function run(
  name: string,
  corpus: Corpus,
  call: (input: string, rng: Rng) => void,
  allowed: (e: unknown) => boolean,
  fixed: string[] = [],
  budgetMs = BUDGET_MS,
): void {
  test(`${name}: ${RUNS} inputs, only named errors, none over ${LIMIT_MS} ms`, () => {
    assert.ok(corpus.seeds.length > 0, `${name}: no seed texts found`);
    check(name, fuzz({ seed: SEED, runs: RUNS, corpus, call, allowed, limitMs: LIMIT_MS, budgetMs, fixed }), budgetMs);
  });
}

const never = (): boolean => false;

describe(`fuzz (seed ${SEED})`, () => {
  run(
    'image reference',
    {
      seeds: [
        ...conformance('distribution-reference.json'),
        ...testStrings('reference.test.ts'),
        'nginx',
        'registry.example.com:5000/team/app:v1.2.3',
        `ghcr.io/a/b@sha256:${'a'.repeat(64)}`,
        'localhost/x:y',
        '[::1]:5000/a/b:c',
      ],
      tokens: ['/', ':', '@', 'sha256:', '.', '-', '_', '__', 'localhost', 'docker.io', '[::1]', ':65536', 'A'],
      tricks: [
        (g) => rep(g, 'a/', 6000),
        (g) => `a:${rep(g, 'b', 6000)}`,
        (g) => `a@sha256:${rep(g, 'f', 6000)}`,
        (g) => `${rep(g, 'a.', 4000)}com/x`,
        (g) => rep(g, 'a-_.', 6000),
        (g) => `${'a'.repeat(int(g, 300))}/${'b'.repeat(int(g, 300))}:${'9'.repeat(int(g, 200))}`,
      ],
      maxLen: 300,
    },
    (s, g) => {
      parseImageReference(s);
      parseTarget(s, pick(g, [undefined, 'image', 'registry'] as const));
    },
    never,
    ['a/'.repeat(50_000), `${'a'.repeat(100_000)}:tag`, 'a-'.repeat(50_000) + '!'],
  );

  run(
    'WWW-Authenticate',
    {
      seeds: [
        ...conformance('distribution-challenge.json', 'containerd-auth-parse.json'),
        ...testStrings('www-authenticate.test.ts'),
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
        'Basic realm="x"',
      ],
      tokens: ['Bearer ', 'Basic ', 'Digest ', 'realm=', 'service=', 'scope=', 'error=', '"', '\\"', ',', ', ', '=', ' '],
      tricks: [
        (g) => `Bearer ${rep(g, 'a=b,', 6000)}`,
        (g) => `Bearer realm="${rep(g, '\\"', 6000)}`,
        (g) => rep(g, 'Bearer ', 6000),
        (g) => `Bearer realm=${rep(g, '"', 6000)}`,
        (g) => rep(g, ',', 6000),
        (g) => `Bearer scope="${rep(g, 'repository:a:pull ', 6000)}"`,
      ],
      maxLen: 400,
    },
    (s, g) => {
      const parts = g() < 0.3 ? s.split('\n') : [s];
      for (const c of parseWwwAuthenticate(parts)) parseScope(c.params['scope'] ?? '');
      parseScope(s);
    },
    never,
    [`Bearer ${'a=b,'.repeat(25_000)}`, `Bearer realm="${'\\'.repeat(100_000)}`],
  );

  run(
    'resolv.conf',
    {
      seeds: [
        ...conformance('glibc-resolv.json'),
        ...fixtures('resolv', (n) => n.endsWith('.conf')),
        ...testStrings('resolv-conf.test.ts'),
        'nameserver 10.0.0.2\nsearch ec2.internal svc.cluster.local\noptions ndots:5 timeout:2 attempts:3 rotate\n',
      ],
      tokens: [
        'nameserver ',
        'search ',
        'domain ',
        'options ',
        'ndots:',
        'timeout:',
        'attempts:',
        'rotate',
        'edns0',
        '\n',
        '#',
        ';',
        '::1',
        'fe80::1%eth0',
        '1.2.3.4',
      ],
      tricks: [
        (g) => rep(g, 'nameserver 10.0.0.1\n', 8000),
        (g) => `search ${rep(g, 'a.b ', 8000)}`,
        (g) => `options ndots:${rep(g, '9', 6000)}`,
        (g) => rep(g, 'options rotate ', 8000),
        (g) => rep(g, ' ', 8000),
      ],
      maxLen: 400,
    },
    (s) => {
      usedNameservers(parseResolvConf(s));
    },
    never,
    ['nameserver 1.1.1.1\n'.repeat(5000), `search ${'x.y '.repeat(25_000)}`],
  );

  run(
    'hosts file',
    {
      seeds: [
        ...fixtures('resolv', (n) => n === 'hosts'),
        ...testStrings('hosts-file.test.ts'),
        '127.0.0.1 localhost\n::1 localhost ip6-localhost\n10.0.0.5 registry.lab.test reg # comment\n',
      ],
      tokens: [' ', '\t', '\n', '#', '127.0.0.1', '::1', 'fe80::1%lo', 'localhost', 'registry.lab.test', '.'],
      tricks: [(g) => `10.0.0.1 ${rep(g, 'a ', 8000)}`, (g) => rep(g, '10.0.0.1 a\n', 8000), (g) => rep(g, '#', 8000)],
      maxLen: 400,
    },
    (s) => {
      const t = parseHosts(s);
      lookupHosts(t, 'registry.lab.test');
      lookupHosts(t, 'localhost');
    },
    never,
    [`10.0.0.1 ${'a '.repeat(50_000)}`],
  );

  const hostsTomlSeeds = [
    ...fixtures('certs.d', (n) => n.endsWith('.toml')),
    ...conformance('containerd-hosts-1.7.json', 'containerd-hosts-2.x.json'),
  ];
  run(
    'hosts.toml',
    {
      seeds: [
        ...hostsTomlSeeds,
        ...testStrings('hosts-toml.test.ts').filter((s) => s.includes('=') || s.includes('[')),
        'server = "https://registry-1.docker.io"\n\n[host."https://mirror.example"]\n  capabilities = ["pull", "resolve"]\n  ca = ["/etc/ca.crt"]\n  skip_verify = false\n  dial_timeout = "1s"\n  [host."https://mirror.example".header]\n    x-token = ["abc"]\n',
      ],
      tokens: [
        '[host."https://m"]\n',
        'server = ',
        'capabilities = ',
        'ca = ',
        'client = ',
        'skip_verify = ',
        'override_path = ',
        'dial_timeout = ',
        '"',
        '[',
        ']',
        '[[',
        '=',
        '\n',
        'true',
        '"1s"',
        '"referrers"',
      ],
      tricks: [
        (g) => `[host."https://m"]\ndial_timeout = "${rep(g, '1s', 6000)}"\n`,
        (g) => `[host."https://m"]\ndial_timeout = "${rep(g, '1', 6000)}s"\n`,
        (g) => `a = ${deep('[', ']', 1 + int(g, 5000))}\n`,
        (g) => `a = ${deep('{b = ', '}', 1 + int(g, 3000))}\n`,
        (g) => rep(g, '[host."https://m"]\n', 6000),
        (g) => `[host."${rep(g, 'x', 6000)}"]\n`,
        (g) => `capabilities = [${rep(g, '"pull",', 6000)}]\n`,
        (g) => `n = ${rep(g, '9', 4000)}\n`,
      ],
      maxLen: 600,
    },
    (s) => {
      parseHostsToml(s, '/etc/containerd/certs.d/fuzz.test/hosts.toml');
    },
    (e) => e instanceof HostsTomlError && isNamedError(e),
    [`[host."https://m"]\ndial_timeout = "${'1s'.repeat(50_000)}"\n`, `a = ${deep('[', ']', 20_000)}\n`],
  );

  const globHost = `${'a'.repeat(40)}.example`;
  run(
    'docker config',
    {
      seeds: [
        ...conformance('kubelet-dockerconfig.json', 'kubelet-keyring.json').filter((s) => s.length > 2),
        ...testStrings('docker-config.test.ts'),
        '{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"reg.io:5000":{"username":"u","password":"p"},"*.example.com/team":{"identitytoken":"t"}}}',
      ],
      tokens: [
        '{',
        '}',
        '[',
        ']',
        '"auths"',
        '"auth"',
        '"username"',
        '"password"',
        '"identitytoken"',
        ':',
        ',',
        '"*"',
        '"*.a"',
        '"dXNlcjpwYXNz"',
        '"',
        '\\u0000',
        'null',
        '1e308',
      ],
      tricks: [
        (g) => JSON.stringify({ auths: { [`${rep(g, '*a', 40)}*b.example`]: { auth: 'dXNlcjpwYXNz' } } }),
        (g) => JSON.stringify({ auths: { [`${rep(g, '*', 60)}.example`]: { auth: 'dXNlcjpwYXNz' } } }),
        (g) => deep('[', ']', 1 + int(g, 20_000)),
        (g) => `{"auths":${deep('{"a":', '}', 1 + int(g, 5000))}}`,
        (g) => JSON.stringify({ auths: { 'reg.io': { auth: rep(g, 'QUFB', 6000) } } }),
        (g) =>
          JSON.stringify({
            auths: Object.fromEntries(Array.from({ length: 1 + int(g, 1000) }, (_, i) => [`r${i}.io`, { auth: 'dXNlcjpwYXNz' }])),
          }),
      ],
      maxLen: 600,
    },
    (s, g) => {
      const auths = parseDockerConfig(s, '/root/.docker/config.json');
      credentialFor(auths, pick(g, [globHost, 'docker.io', 'reg.io:5000', 'a.example.com', 'registry-1.docker.io']), 'team/app');
    },
    (e) => e instanceof ConfigError && isNamedError(e),
    [JSON.stringify({ auths: { '*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b.example': { auth: 'dXNlcjpwYXNz' } } }), deep('[', ']', 20_000)],
  );

  const env = { hostname: 'node-1', NODE_NAME: 'node-1' };
  const yamlSeeds = fixtures('config', (n) => n.endsWith('.yaml'));
  run(
    'agent YAML config',
    {
      seeds: [...yamlSeeds, ...testStrings('config.test.ts').filter((s) => s.includes(':'))],
      tokens: [
        'targets:\n',
        '  - image: ',
        '  - registry: ',
        'interval: ',
        'timeout: ',
        'jitter: ',
        'concurrency: ',
        '&a ',
        '*a',
        '<<: *a',
        '!!binary ',
        '!!str ',
        '? ',
        '- ',
        ': ',
        '{',
        '}',
        '[',
        ']',
        '|',
        '>',
        '---\n',
        '...\n',
        '%YAML 1.2\n',
        '"',
        "'",
        '\n  ',
        '1e308',
        '60s',
        '1h1h1h',
      ],
      tricks: [
        (g) => {
          // billion laughs
          const n = 2 + int(g, 8);
          let s = 'a0: &a0 [x, x, x, x, x, x, x, x, x]\n';
          for (let i = 1; i <= n; i++)
            s += `a${i}: &a${i} [${Array(9)
              .fill(`*a${i - 1}`)
              .join(', ')}]\n`;
          return `${s}targets: *a${n}\n`;
        },
        (g) => `${rep(g, '- &x x\n', 1500)}- *y\n`,
        (g) => `targets: *${rep(g, 'u', 100)}\n`,
        (g) => `a: ${deep('[', ']', 1 + int(g, 1000))}\n`,
        (g) => `a: ${deep('{b: ', '}', 1 + int(g, 300))}\n`,
        (g) => rep(g, 'interval: 1s\n', 2000),
        (g) => `interval: ${rep(g, '1h', 2000)}\n`,
        (g) => `concurrency: ${rep(g, '9', 2000)}\ntargets:\n  - registry: r.io\n`,
        (g) => `targets:\n${rep(g, '  - image: nginx\n', 2000)}`,
        (g) => Array.from({ length: 1 + int(g, 300) }, (_, i) => `k${i % 50}: v`).join('\n'),
      ],
      maxLen: 400,
    },
    (s) => {
      const r = parseConfig(s, 'config.yaml', env);
      assert.ok(r.ok || (Array.isArray(r.errors) && r.errors.length > 0), 'a failed parse must say why');
      if (!r.ok) assert.ok(r.errors.length <= 1000, `${r.errors.length} errors: the list must be capped`);
    },
    never,
    [
      `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ntargets: *f\n`,
      'targets: *nowhere\n',
      // 1,500 distinct keys (~13 KB): the yaml library alone costs ~2 µs a byte, so 4,000
      // keys sat right at the 100 ms bound; the duplicate-key check itself is linear.
      `${Array.from({ length: 1500 }, (_, i) => `k${i}: v`).join('\n')}\n`,
      Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 131) % 256)).toString('latin1'),
      `a: ${'{b: '.repeat(2000)}${'}'.repeat(2000)}\n`,
    ],
    60_000,
  ); // the yaml library costs ~0.3 ms for even a small document

  run(
    'explain',
    {
      seeds: [...testStrings('explain.test.ts'), ...testStrings('../fixtures/explain/cases.ts')]
        .filter((s) => s.length > 8)
        .concat([
          'Failed to pull image "reg.io/a:b": rpc error: code = Unknown desc = failed to resolve reference "reg.io/a:b": failed to do request: Head "https://reg.io/v2/a/manifests/b": dial tcp: lookup reg.io on 10.0.0.2:53: no such host',
          'Warning  Failed     12s   kubelet  Failed to pull image "nginx:lates": rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nginx:lates": failed to resolve reference "docker.io/library/nginx:lates": docker.io/library/nginx:lates: not found',
          '{"items":[{"reason":"Failed","message":"Failed to pull image \\"a\\": rpc error: code = Unknown desc = failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized"}]}',
          'Back-off pulling image "x"',
          'ErrImageNeverPull',
          'InvalidImageName',
          'read: connection reset by peer',
          'x509: certificate signed by unknown authority',
          'toomanyrequests: You have reached your pull rate limit',
          'no space left on device',
          'unexpected status code 503 Service Unavailable',
        ]),
      tokens: [
        'lookup ',
        ' on ',
        ':53',
        'no such host',
        'dial tcp ',
        'i/o timeout',
        'x509: ',
        'Head "https://',
        '": ',
        'rpc error: code = ',
        'desc = ',
        '401 Unauthorized',
        'denied',
        'not found',
        '\\"',
        '"',
        '\n',
        ' ',
      ],
      tricks: [
        (g) => rep(g, 'lookup ', 6000),
        (g) => `lookup ${rep(g, 'a.', 6000)} on`,
        (g) => rep(g, 'lookup a on 1:53: ', 4000),
        (g) => rep(g, 'dial tcp ', 6000),
        (g) => rep(g, '": ', 6000),
        (g) => rep(g, 'Failed to pull image "', 5000),
        (g) => rep(g, ' ', 8000) + 'x',
        (g) => rep(g, 'x509: certificate ', 4000),
      ],
      maxLen: 600,
    },
    (s) => {
      explainMessage(s);
    },
    never,
    ['lookup '.repeat(15_000), `lookup ${'a '.repeat(50_000)}`, 'Failed to pull image "'.repeat(5000)],
  );
});

// Keep the seed directories honest: a fixture folder that vanished would silently shrink a corpus.
test('fuzz seed folders exist', () => {
  for (const d of ['resolv', 'certs.d', 'config']) assert.ok(readdirSync(join(ROOT, 'test/fixtures', d)).length > 0, d);
});
