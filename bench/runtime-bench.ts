/**
 * Benchmark (D, issue 8; `--runtime`, needs the lab's containerd): how long
 * pullprobe takes to a verdict beside a real CRI pull through nodeA's
 * containerd 1.6, on a dropped registry port and on a token service that
 * never answers (containerd: its 30 s dial timeout, and no deadline of its
 * own on the token request — the CRI caller's deadline, 60 s here, ends
 * it); and what a credential-provider plugin exec costs per probe, with and
 * without the provider cache. Prints figures, asserts nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, FaultName } from '../test/lab/support/lab.js';
import { REPO_ROOT } from '../test/lab/support/daemons.js';
import { criErrorText, criPull, criRemoveImage } from '../test/lab/support/cri-pull.js';
import { writeProviders } from '../test/lab/support/providers.js';
import { CredentialProviders, parseCredentialProviderConfig } from '../src/node-config/credential-provider.js';
import { heading, median, ms, num, table } from './report.js';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const CRI_DEADLINE_MS = 60_000;

interface Case {
  fault: FaultName;
  image: string;
}

async function pullprobeVerdict(lab: Lab, image: string): Promise<{ seconds: number; verdict: string }> {
  const t0 = performance.now();
  const r = await lab.exec(
    'nodeA',
    [
      'node',
      CLI,
      'probe',
      '--json',
      '--ca-file',
      lab.paths.caFile,
      '--resolv-conf',
      lab.paths.resolvConf.nodeA,
      '--hosts',
      lab.paths.hosts.nodeA,
      image,
    ],
    { timeoutMs: 60_000 },
  );
  const seconds = (performance.now() - t0) / 1000;
  try {
    const [res] = JSON.parse(r.stdout) as Array<{ ok: boolean; stage: string | null; reason: string | null }>;
    return { seconds, verdict: res ? (res.ok ? 'ok' : `${res.stage ?? '?'}/${res.reason ?? '?'}`) : 'no result' };
  } catch {
    return { seconds, verdict: `exit ${r.code ?? r.signal}: ${r.stderr.replace(/\s+/g, ' ').slice(0, 80)}` };
  }
}

export async function runtimeBench(lab: Lab): Promise<string> {
  const out: string[] = [heading('(D) time to verdict beside a real CRI pull (nodeA containerd 1.6), and credential-provider cost')];
  const socket = lab.paths.containerd?.nodeA.socket;
  if (!socket) return [...out, '!! the lab has no containerd (Lab.up({ containerd: true })): skipped'].join('\n');
  const cases: Case[] = [
    { fault: 'drop-443', image: 'registry.lab.test/lab/probe:v1' },
    { fault: 'token-hang', image: 'token.lab.test/lab/probe:v1' },
  ];
  const rows: string[][] = [];
  for (const c of cases) {
    await criRemoveImage(socket, c.image).catch(() => undefined);
    lab.fault(c.fault, { subnet: 'A' });
    try {
      const [pp, cri] = await Promise.all([pullprobeVerdict(lab, c.image), criPull(socket, c.image, undefined, CRI_DEADLINE_MS)]);
      const criText = cri.ok
        ? 'pulled'
        : cri.deadline
          ? `no answer by the caller's ${CRI_DEADLINE_MS / 1000} s deadline`
          : criErrorText(cri);
      rows.push([c.fault, c.image, ms(pp.seconds), pp.verdict, ms(cri.seconds), criText.replace(/\s+/g, ' ').slice(0, 90)]);
    } finally {
      lab.clear();
    }
  }
  out.push(table(['fault (subnet A)', 'image', 'pullprobe (ms)', 'pullprobe verdict', 'CRI pull (ms)', 'containerd says'], rows));

  // Credential provider: the lab's good plugin (a shell script answering basic.lab.test's credentials, cacheDuration 10m).
  const providers = writeProviders(join(lab.dir, 'bench-providers'), lab.credentials, ['basic.lab.test', 'token.lab.test']);
  const config = parseCredentialProviderConfig(readFileSync(providers.config.good, 'utf8'), providers.config.good);
  const image = 'basic.lab.test/lab/probe';
  const ctx = (): { signal: AbortSignal; deadlineMs: number } => ({ signal: AbortSignal.timeout(30_000), deadlineMs: 30_000 });
  const cold: number[] = [];
  for (let i = 0; i < 10; i++) {
    const p = new CredentialProviders(config, providers.binDir);
    const t = performance.now();
    await p.lookup(image, ctx());
    cold.push((performance.now() - t) / 1000);
  }
  const warm: number[] = [];
  const shared = new CredentialProviders(config, providers.binDir);
  await shared.lookup(image, ctx());
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await shared.lookup(image, ctx());
    warm.push((performance.now() - t) / 1000);
  }
  out.push(
    '',
    table(
      ['credential provider lookup', 'median (ms)', 'max (ms)', 'plugin execs'],
      [
        ['without cache (a fresh provider set per probe: one exec each)', ms(median(cold)), ms(Math.max(...cold)), '10'],
        ['with cache (cacheDuration 10m)', ms(median(warm)), ms(Math.max(...warm)), num(shared.stats.execs)],
      ],
    ),
  );
  return out.join('\n');
}
