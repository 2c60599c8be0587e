/**
 * The agent as deployed: `node dist/cli.js agent` inside each lab node
 * namespace (as a hostNetwork DaemonSet pod sees the node's network), with
 * its service-account directory mounted where the kubelet projects it and a
 * fake API server (no real one can run here) in the same namespace. A fault
 * on subnet A must show in A's metrics, annotation, condition and events
 * within one interval plus timeout, once, and clear after the fault is
 * removed; node B's agent never changes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { Lab, labTestOptions, NODES, type NodeName, type ExecResult } from './support/lab.js';
import { REPO_ROOT } from './support/daemons.js';
import type { ProbeResult } from '../../src/model/types.js';

const CLI = join(REPO_ROOT, 'dist', 'cli.js');
const APISERVER = join(REPO_ROOT, 'test', 'lab', 'support', 'apiserver-main.ts');
const INTERVAL_S = 2;
const TIMEOUT_S = 1.5;
const IMAGE = 'registry.lab.test/lab/probe:v1';
const ZONES: Record<NodeName, string> = { nodeA: 'lab-zone-a', nodeB: 'lab-zone-b' };
/** The kubelet projects the service-account volume here; tmpfs over /run exists only in the agent's mount namespace. */
const SA_MOUNT =
  'mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io && ln -s "$1" /run/secrets/kubernetes.io/serviceaccount && shift && exec "$@"';

interface Running {
  child: ChildProcess | undefined;
  done: Promise<ExecResult>;
}

interface ApiState {
  node: {
    metadata: { annotations?: Record<string, string> };
    status: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
  };
  events: Array<{ reason: string; type: string; message: string; involvedObject: { name: string } }>;
  requests: Array<{ method: string; path: string; status: number; body: unknown }>;
}

let lab: Lab;
const agents: Partial<Record<NodeName, Running>> = {};
const apis: Partial<Record<NodeName, Running>> = {};
const apiDir = (n: NodeName): string => join(lab.dir, 'apiserver', n);

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
  const until = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? String(err) : inspect(err);
    }
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function http(node: NodeName, path: string): Promise<{ code: number; body: string }> {
  const r = await lab.exec(node, ['curl', '-s', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:9808${path}`], { timeoutMs: 20_000 });
  const i = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

function api(node: NodeName): ApiState {
  return JSON.parse(readFileSync(join(apiDir(node), 'state.json'), 'utf8')) as ApiState;
}

interface StatusAnnotation {
  subnet: string;
  zone: string;
  registries: Record<string, { ok: boolean; reason?: string; stage?: string; cause?: string }>;
}

function annotation(node: NodeName): StatusAnnotation | undefined {
  const v = api(node).node.metadata.annotations?.['pullprobe.dev/status'];
  return v ? (JSON.parse(v) as StatusAnnotation) : undefined;
}

function condition(node: NodeName): { status: string; reason: string; message: string } | undefined {
  return api(node).node.status.conditions?.find((c) => c.type === 'RegistryReachable');
}

function annotationPatches(node: NodeName): number {
  return api(node).requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/nodes/lab-${node}`) && r.status < 300).length;
}

describe('agent in the network lab', labTestOptions(), () => {
  before(async () => {
    lab = await Lab.up();
    for (const node of ['nodeA', 'nodeB'] as const) {
      mkdirSync(apiDir(node), { recursive: true });
      apis[node] = start(node, ['node', '--import', 'tsx', APISERVER, apiDir(node), `lab-${node}`, NODES[node].address, ZONES[node]]);
      const ready = await waitFor(
        `apiserver in ${node}`,
        () =>
          existsSync(join(apiDir(node), 'ready.json'))
            ? (JSON.parse(readFileSync(join(apiDir(node), 'ready.json'), 'utf8')) as { url: string })
            : undefined,
        20_000,
      );
      const port = new URL(ready.url).port;
      const config = join(lab.dir, `agent-${node}.yaml`);
      writeFileSync(
        config,
        [
          'listen: "127.0.0.1:9808"',
          `interval: ${INTERVAL_S}s`,
          `timeout: ${TIMEOUT_S * 1000}ms`,
          'jitter: 0.2',
          'targets:',
          `  - image: ${IMAGE}`,
          '  - registry: basic.lab.test',
          'dns:',
          `  resolvConf: ${lab.paths.resolvConf[node]}`,
          `  hosts: ${lab.paths.hosts[node]}`,
          'tls:',
          `  caFiles: [${lab.paths.caFile}]`,
          '',
        ].join('\n'),
      );
      agents[node] = start(node, ['sh', '-c', SA_MOUNT, 'sh', join(apiDir(node), 'sa'), 'node', CLI, 'agent', '--config', config], {
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: port,
        NODE_NAME: `lab-${node}`,
        HOST_IP: NODES[node].address,
        LOG_LEVEL: 'info',
      });
    }
    try {
      for (const node of ['nodeA', 'nodeB'] as const) {
        await waitFor(`${node} agent ready`, async () => ((await http(node, '/readyz')).code === 200 ? true : undefined), 20_000);
        await waitFor(
          `${node} node status written`,
          () => (annotation(node) && condition(node)?.status === 'True' ? true : undefined),
          10_000,
        );
      }
    } catch (err) {
      // Say why: the agents' own logs and the API server's view.
      let logs = '';
      for (const node of ['nodeA', 'nodeB'] as const) {
        agents[node]?.child?.kill('SIGKILL');
        const r = await agents[node]?.done;
        let state = '';
        try {
          state = JSON.stringify(api(node).requests.map((q) => `${q.method} ${q.path} ${q.status}`));
        } catch {
          state = '(no API server state)';
        }
        logs += `\n--- ${node} agent exit ${r?.code} ${r?.signal}\nstdout: ${r?.stdout.slice(-3000)}\nstderr: ${r?.stderr.slice(-2000)}\napi: ${state}`;
      }
      throw new Error(`${(err as Error).message}${logs}`);
    }
  });

  after(async () => {
    for (const r of [...Object.values(agents), ...Object.values(apis)]) {
      if (r.child?.exitCode === null) r.child.kill('SIGKILL');
    }
    await (lab as Lab | undefined)?.down(); // unset when before() failed
  });

  test('healthy: registry_up, node_info with subnet and zone, annotation and condition True on both nodes', async () => {
    for (const node of ['nodeA', 'nodeB'] as const) {
      const m = (await http(node, '/metrics')).body;
      assert.match(m, new RegExp(`pullprobe_registry_up\\{registry="registry.lab.test",target="${IMAGE}"\\} 1`));
      assert.match(m, /pullprobe_registry_up\{registry="basic.lab.test",target="basic.lab.test"\} 1/);
      const subnet = node === 'nodeA' ? '10.231.1.0/24' : '10.231.2.0/24';
      assert.match(m, new RegExp(`pullprobe_node_info\\{node="lab-${node}",subnet="${subnet}",zone="${ZONES[node]}"\\} 1`));
      assert.doesNotMatch(m, /pullprobe_failure_info\{/);
      const ann = annotation(node);
      assert.ok(ann, `${node}: status annotation`);
      assert.equal(ann.subnet, subnet);
      assert.equal(ann.zone, ZONES[node]);
      assert.equal(ann.registries['registry.lab.test']?.ok, true);
      assert.equal(condition(node)?.status, 'True');
    }
  });

  test('a fault on subnet A shows on A within one interval + timeout, once; B never changes; all clears after', async () => {
    const patchesBefore = { nodeA: annotationPatches('nodeA'), nodeB: annotationPatches('nodeB') };
    const eventsBefore = api('nodeB').events.length;
    lab.fault('reject-443', { subnet: 'A', host: 'registry.lab.test' });
    const t0 = Date.now();
    try {
      const metrics = await waitFor(
        'failure_info on nodeA',
        async () => {
          const m = (await http('nodeA', '/metrics')).body;
          return /pullprobe_failure_info\{[^}]*reason="tcp_refused"/.test(m) ? m : undefined;
        },
        15_000,
      );
      const seen = (Date.now() - t0) / 1000;
      // Polling adds up to a few hundred ms on top of interval + timeout.
      assert.ok(seen <= INTERVAL_S + TIMEOUT_S + 1.5, `failure visible after ${seen}s`);
      assert.match(
        metrics,
        new RegExp(
          `pullprobe_failure_info\\{registry="registry.lab.test",target="${IMAGE}",stage="tcp",reason="tcp_refused",cause="network"\\} 1`,
        ),
      );
      assert.match(metrics, new RegExp(`pullprobe_registry_up\\{registry="registry.lab.test",target="${IMAGE}"\\} 0`));
      assert.match(
        metrics,
        /pullprobe_registry_up\{registry="basic.lab.test",target="basic.lab.test"\} 1/,
        'the fault hit only registry.lab.test',
      );

      await waitFor(
        'annotation and condition on nodeA',
        () =>
          annotation('nodeA')?.registries['registry.lab.test']?.ok === false && condition('nodeA')?.status === 'False' ? true : undefined,
        5_000,
      );
      const ann = annotation('nodeA');
      assert.deepEqual(
        { ...ann?.registries['registry.lab.test'], since: undefined },
        { ok: false, stage: 'tcp', reason: 'tcp_refused', cause: 'network', since: undefined },
      );
      assert.equal(condition('nodeA')?.reason, 'TcpRefused');
      assert.match(condition('nodeA')?.message ?? '', /registry\.lab\.test/);
      await waitFor(
        'RegistryUnreachable event',
        () => api('nodeA').events.find((e) => e.reason === 'RegistryUnreachable' && /registry\.lab\.test/.test(e.message)),
        5_000,
      );

      // The per-subnet report over the annotations both agents wrote (kubectl get nodes -o json).
      const nodeList = JSON.stringify({ kind: 'NodeList', items: [api('nodeA').node, api('nodeB').node] });
      const rep = spawnSync(process.execPath, [CLI, 'report', '--json'], { input: nodeList, encoding: 'utf8' });
      assert.equal(rep.status, 1, rep.stderr);
      const rows = (
        JSON.parse(rep.stdout) as Array<{
          subnet: string;
          registry: string;
          verdict: string;
          reason: string | null;
          failingNodes: string[];
        }>
      )
        .filter((r) => r.registry === 'registry.lab.test')
        .map((r) => [r.subnet, r.verdict, r.reason, r.failingNodes]);
      assert.deepEqual(rows, [
        ['10.231.1.0/24', 'subnet-wide', 'tcp_refused', ['lab-nodeA']],
        ['10.231.2.0/24', 'ok', null, []],
      ]);

      // On-demand probe in the node's context agrees, fresh.
      const fresh = await http('nodeA', '/probe?registry=registry.lab.test&format=json');
      assert.equal(fresh.code, 200);
      assert.equal((JSON.parse(fresh.body) as ProbeResult).reason, 'tcp_refused');
      // The endpoint is not a way to make the node connect anywhere.
      assert.equal((await http('nodeA', '/probe?registry=10.231.100.99:22')).code, 403);

      // Three more cycles of the same failure: no further annotation writes (changes only).
      const afterFirst = annotationPatches('nodeA');
      await new Promise((r) => setTimeout(r, 3 * INTERVAL_S * 1000));
      assert.equal(annotationPatches('nodeA'), afterFirst, 'annotation patched once per verdict change');
      assert.equal(afterFirst - patchesBefore.nodeA, 1, 'exactly one annotation patch for the transition');
      assert.equal(api('nodeA').events.filter((e) => e.reason === 'RegistryUnreachable').length, 1);

      // The control never changed.
      assert.equal(annotationPatches('nodeB'), patchesBefore.nodeB);
      assert.equal(api('nodeB').events.length, eventsBefore);
      assert.doesNotMatch((await http('nodeB', '/metrics')).body, /pullprobe_failure_info\{/);
    } finally {
      lab.clear();
    }

    await waitFor(
      'nodeA recovers',
      async () => {
        const m = (await http('nodeA', '/metrics')).body;
        return !/pullprobe_failure_info\{/.test(m) &&
          annotation('nodeA')?.registries['registry.lab.test']?.ok === true &&
          condition('nodeA')?.status === 'True'
          ? true
          : undefined;
      },
      15_000,
    );
    await waitFor('RegistryReachable event', () => api('nodeA').events.find((e) => e.reason === 'RegistryReachable'), 5_000);
    assert.equal(annotationPatches('nodeB'), patchesBefore.nodeB, 'node B untouched throughout');
  });

  test('status page and recent failures survive recovery', async () => {
    const page = await http('nodeA', '/');
    assert.equal(page.code, 200);
    assert.match(page.body, /registry\.lab\.test/);
    assert.match(page.body, /tcp_refused/, 'the cleared failure is still listed');
  });

  test('SIGHUP with an invalid config: the old config stays, said in the log and the metric', async () => {
    const config = join(lab.dir, 'agent-nodeA.yaml');
    const good = readFileSync(config, 'utf8');
    writeFileSync(config, `${good}colour: blue\n`);
    try {
      agents.nodeA?.child?.kill('SIGHUP');
      const m = await waitFor(
        'reload failure metric',
        async () => {
          const body = (await http('nodeA', '/metrics')).body;
          return /pullprobe_config_reload_success 0/.test(body) ? body : undefined;
        },
        10_000,
      );
      assert.match(
        m,
        new RegExp(`pullprobe_registry_up\\{registry="registry.lab.test",target="${IMAGE}"\\} 1`),
        'still probing the old targets',
      );
    } finally {
      writeFileSync(config, good);
    }
    agents.nodeA?.child?.kill('SIGHUP');
    await waitFor(
      'reload success metric',
      async () => (/pullprobe_config_reload_success 1/.test((await http('nodeA', '/metrics')).body) ? true : undefined),
      10_000,
    );
  });

  test('SIGTERM: agents stop cleanly with exit 0', async () => {
    for (const node of ['nodeA', 'nodeB'] as const) {
      const a = agents[node];
      assert.ok(a?.child);
      a.child.kill('SIGTERM');
      const r = await a.done;
      assert.equal(r.code, 0, `agent ${node} exit: ${r.stderr.slice(-500)}`);
      // Logs are JSON lines; never a credential.
      for (const line of r.stdout.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
      assert.match(r.stdout, /"msg":"agent stopped"/);
      if (node === 'nodeA') assert.match(r.stdout, /config reload failed; keeping the previous config/);
    }
  });
});
