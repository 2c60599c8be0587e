/**
 * `pullprobe why POD [-n NAMESPACE] [--all] [--json] [--probe] [--kubectl PATH] [--context NAME]`
 * (also `kubectl pullprobe why …`): the troubleshooting guide's whole
 * diagnostic sequence for one pod, through the user's own kubectl.
 * Exit 0 no container is failing to pull, 1 a failing container was
 * diagnosed, 2 usage or kubectl errors (message on stderr, nothing on stdout).
 * No secret value reaches stdout or stderr: every output string is checked
 * against the secrets decoded on the way, and masked if one ever were there.
 */
import { parseArgs } from 'node:util';
import { UsageError, type Io } from './io.js';
import { diagnosePod, type ImageProber } from '../why/diagnose.js';
import { kubectlRunner, type Kubectl } from '../why/kubectl.js';
import { formatWhy } from '../why/format.js';
import { PULL_FAILURE_STATES } from '../why/types.js';
import { parseDuration } from '../shared/duration.js';

export interface WhyOptions {
  kubectl?: Kubectl;
  now?: () => number;
  probe?: ImageProber;
}

export type WhyIo = Io & WhyOptions;

const SYNOPSIS = 'usage: pullprobe why POD [-n NAMESPACE] [--all] [--json] [--probe] [--timeout 10s] [--kubectl PATH] [--context NAME]';

/** Replace any secret string that found its way into the text (defence in depth: none should). */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...new Set(secrets)].filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join('***');
  }
  return out;
}

async function defaultProber(timeoutMs: number): Promise<ImageProber> {
  const { loadEnvironment } = await import('../node-config/environment.js');
  const { probeTarget } = await import('../probe/chain.js');
  const env = loadEnvironment({ dockerConfigPath: null });
  return (image, auths) => probeTarget(image, { ...env, auths, dockerConfigPath: null }, { timeoutMs, kind: 'image' });
}

const HELP = `${SYNOPSIS.replace('usage: ', 'Usage: ')}

The troubleshooting sequence for one pod, through your kubectl (KUBECONFIG, --context honoured):
image string, kubelet message and events, pull secrets (pod and service account) in the pod's
namespace, the node's pullprobe verdict and its subnet's, then one conclusion with the fix.

  -n, --namespace NS   the pod's namespace (default: kubectl's current namespace)
  --all                every container, not only those failing to pull
  --json               one JSON object (see the README)
  --probe              also probe the image from here with the pod's pull secrets (in memory)
  --timeout DURATION   --probe deadline (default 10s)
  --kubectl PATH       kubectl to run (default: kubectl on PATH)
  --context NAME       kubeconfig context

Exit 0 no container is failing to pull, 1 a failing container was diagnosed, 2 usage or kubectl errors.`;

export async function runWhyCommand(argv: string[], io: WhyIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      probe: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '10s' },
      kubectl: { type: 'string', default: 'kubectl' },
      context: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] === '') throw new UsageError(`why: give exactly one POD (${SYNOPSIS})`);
  if (values.kubectl === '') throw new UsageError('why: --kubectl PATH is empty');
  if (values.namespace === '') throw new UsageError('why: --namespace is empty');
  const timeoutMs = parseDuration(values.timeout);
  if (timeoutMs === null || timeoutMs <= 0)
    throw new UsageError(`why: --timeout "${values.timeout}" is not a positive duration (e.g. 10s)`);
  const kubectl =
    io.kubectl ??
    kubectlRunner({ file: values.kubectl, ...(values.context !== undefined ? { context: values.context } : {}), env: io.env });
  const now = io.now ?? Date.now;
  const nowMs = now();
  const probe = values.probe ? (io.probe ?? (await defaultProber(timeoutMs))) : undefined;
  let outcome;
  try {
    outcome = await diagnosePod({
      pod: positionals[0] as string,
      namespace: values.namespace ?? null,
      all: values.all,
      kubectl,
      nowMs,
      ...(probe ? { probe } : {}),
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'PULLPROBE_CONFIG') {
      io.stderr(`pullprobe: why: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
  const secrets = outcome.secretValues;
  if (values.json) {
    io.stdout(maskSecrets(JSON.stringify(outcome.report, null, 2), secrets) + '\n');
    for (const w of outcome.warnings) io.stderr(maskSecrets(`pullprobe: why: ${w}\n`, secrets));
  } else {
    io.stdout(maskSecrets(formatWhy(outcome, nowMs), secrets));
  }
  const failing = PULL_FAILURE_STATES as readonly string[];
  return outcome.report.containers.some((c) => failing.includes(c.state)) ? 1 : 0;
}
