/**
 * Pod discovery in the network lab: each node's agent runs inside its node
 * namespace next to a fake API server that also serves Pods (the test writes
 * them to DIR/pods.json). With registry.lab.test refused from subnet A, a pod
 * bound to nodeA whose image pull fails gets exactly one PullProbeDiagnosis
 * Warning naming tcp_refused; the same kind of pod on the control node (B)
 * gets no Warning; the registry shows in /metrics as discovered and leaves
 * when the pods go.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { Lab, labTestOptions, NODES, type NodeName, type ExecResult } from './support/lab.js';
import { REPO_ROOT } from './support/daemons.js';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const APISERVER = join(REPO_ROOT, 'test', 'lab', 'support', 'apiserver-main.ts');
const IMAGE = 'registry.lab.test/lab/probe:v1';
const SA_MOUNT =
  'mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io && ln -s "$1" /run/secrets/kubernetes.io/serviceaccount && shift && exec "$@"';
const NODE_LIST = ['nodeA', 'nodeB'] as const;

interface Running {
  child: ChildProcess | undefined;
  done: Promise<ExecResult>;
}
interface ApiEvent {
  reason: string;
  type: string;
  message: string;
  involvedObject: { kind: string; name: string };
}

let lab: Lab;
const agents: Partial<Record<NodeName, Running>> = {};
const apis: Partial<Record<NodeName, Running>> = {};
const apiDir = (n: NodeName): string => join(lab.dir, 'apiserver-pods', n);

function start(node: NodeName, argv: string[], env: Record<string, string> = {}): Running {
  const r: Running = { child: undefined, done: Promise.resolve() as unknown as Promise<ExecResult> };
  r.done = lab.exec(node, argv, {
    timeoutMs: 300_000,
    env,
    onSpawn: (c) => {
      r.child = c;
    },
  });
  return r;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? String(err) : inspect(err);
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function metrics(node: NodeName): Promise<string> {
  return (await lab.exec(node, ['curl', '-s', 'http://127.0.0.1:9808/metrics'], { timeoutMs: 20_000 })).stdout;
}

function events(node: NodeName): ApiEvent[] {
  return (JSON.parse(readFileSync(join(apiDir(node), 'state.json'), 'utf8')) as { events: ApiEvent[] }).events;
}

function failingPod(name: string, node: NodeName): object {
  return {
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid: `uid-${name}` },
    spec: { nodeName: `lab-${node}`, containers: [{ name: 'app', image: IMAGE }] },
    status: {
      containerStatuses: [
        {
          name: 'app',
          image: IMAGE,
          state: {
            waiting: {
              reason: 'ErrImagePull',
              message: `failed to pull and unpack image "${IMAGE}": failed to resolve reference "${IMAGE}": failed to do request: Head "https://registry.lab.test/v2/lab/probe/manifests/v1": dial tcp 10.231.100.10:443: connect: connection refused`,
            },
          },
        },
      ],
    },
  };
}

/** Both API servers hold both pods, as a real cluster's one API server would. */
function setPods(pods: object[]): void {
  for (const node of NODE_LIST) writeFileSync(join(apiDir(node), 'pods.json'), JSON.stringify(pods));
}

describe('pod discovery in the network lab', labTestOptions(), () => {
  before(async () => {
    lab = await Lab.up();
    for (const node of NODE_LIST) {
      mkdirSync(apiDir(node), { recursive: true });
      apis[node] = start(node, ['node', '--import', 'tsx', APISERVER, apiDir(node), `lab-${node}`, NODES[node].address, `zone-${node}`]);
      const ready = await waitFor(
        `apiserver in ${node}`,
        () =>
          existsSync(join(apiDir(node), 'ready.json'))
            ? (JSON.parse(readFileSync(join(apiDir(node), 'ready.json'), 'utf8')) as { url: string })
            : undefined,
        20_000,
      );
      const config = join(lab.dir, `discovery-${node}.yaml`);
      writeFileSync(
        config,
        [
          'listen: "127.0.0.1:9808"',
          'interval: 2s',
          'timeout: 1500ms',
          'jitter: 0.2',
          'targets:',
          '  - registry: basic.lab.test',
          'dns:',
          `  resolvConf: ${lab.paths.resolvConf[node]}`,
          `  hosts: ${lab.paths.hosts[node]}`,
          'tls:',
          `  caFiles: [${lab.paths.caFile}]`,
          'discover:',
          '  pods: true',
          '',
        ].join('\n'),
      );
      agents[node] = start(node, ['sh', '-c', SA_MOUNT, 'sh', join(apiDir(node), 'sa'), 'node', CLI, 'agent', '--config', config], {
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: new URL(ready.url).port,
        NODE_NAME: `lab-${node}`,
        HOST_IP: NODES[node].address,
        LOG_LEVEL: 'info',
      });
    }
    try {
      for (const node of NODE_LIST) {
        await waitFor(
          `${node} agent ready`,
          async () => (/pullprobe_registry_up\{registry="basic.lab.test"/.test(await metrics(node)) ? true : undefined),
          20_000,
        );
      }
    } catch (err) {
      let logs = '';
      for (const node of NODE_LIST) {
        agents[node]?.child?.kill('SIGKILL');
        const r = await agents[node]?.done;
        logs += `\n--- ${node} agent exit ${r?.code}\nstdout: ${r?.stdout.slice(-3000)}\nstderr: ${r?.stderr.slice(-2000)}`;
      }
      throw new Error(`${(err as Error).message}${logs}`);
    }
  });

  after(async () => {
    for (const r of [...Object.values(agents), ...Object.values(apis)]) {
      if (r.child?.exitCode === null) r.child.kill('SIGKILL');
    }
    await (lab as Lab | undefined)?.down();
  });

  test('the faulted node tells its failing pod why, once; the control node does not blame the network; discovered registries come and go', async () => {
    lab.fault('reject-443', { subnet: 'A', host: 'registry.lab.test' });
    try {
      setPods([failingPod('web-a', 'nodeA'), failingPod('web-b', 'nodeB')]);
      const ev = await waitFor('PullProbeDiagnosis on web-a', () => events('nodeA').find((e) => e.reason === 'PullProbeDiagnosis'), 20_000);
      for (const node of NODE_LIST) {
        await waitFor(
          `${node} discovered registry.lab.test`,
          async () => (/pullprobe_discovered_images\{registry="registry.lab.test"\} 1/.test(await metrics(node)) ? true : undefined),
          10_000,
        );
      }
      // Several more intervals and watch updates of the same failure.
      setPods([
        { ...failingPod('web-a', 'nodeA'), metadata: { name: 'web-a', namespace: 'shop', uid: 'uid-web-a', labels: { touched: '1' } } },
        failingPod('web-b', 'nodeB'),
      ]);
      await new Promise((r) => setTimeout(r, 6000));
      const onA = events('nodeA').filter((e) => e.reason === 'PullProbeDiagnosis');
      assert.equal(onA.length, 1, JSON.stringify(onA));
      assert.equal(ev.type, 'Warning');
      assert.deepEqual(ev.involvedObject.kind, 'Pod');
      assert.equal(ev.involvedObject.name, 'web-a');
      assert.match(ev.message, /tcp_refused/);
      assert.match(ev.message, /10\.231\.1\.0\/24/);
      const onB = events('nodeB').filter((e) => e.reason === 'PullProbeDiagnosis');
      assert.ok(
        onB.every((e) => e.type === 'Normal' && e.involvedObject.name === 'web-b'),
        JSON.stringify(onB),
      );
      assert.ok(onB.every((e) => /network is not the cause/.test(e.message)));
    } finally {
      lab.clear();
    }
    setPods([]);
    for (const node of NODE_LIST) {
      await waitFor(
        `${node}: registry.lab.test leaves /metrics`,
        async () => {
          const m = await metrics(node);
          return !/pullprobe_discovered_images\{/.test(m) && !/target="registry.lab.test"/.test(m) ? true : undefined;
        },
        10_000,
      );
    }
  });
});
