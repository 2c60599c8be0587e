/**
 * The whole agent across reloads, on loopback only: a target removed while
 * its probe is in flight leaves no ghost; an alias bomb or an unreadable
 * file on reload keeps the previous config (said in the log and the metric)
 * and nothing escapes to the process.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Agent } from '../../src/agent/agent.js';
import { within } from '../support/within.js';

let dir: string;
let hang: Server;
let hangPort: number;
const held: Socket[] = [];
let accepted = 0;
let closedPort: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pullprobe-agent-reload-'));
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n');
  // Accepts and never answers: a probe of it stays in flight until its timeout.
  hang = createServer((s) => {
    accepted++;
    held.push(s);
    s.on('error', () => undefined);
  });
  await within(new Promise<void>((r) => hang.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
  hangPort = (hang.address() as { port: number }).port;
  closedPort = await freePort();
});
after(async () => {
  for (const s of held) s.destroy();
  await within(new Promise<void>((r) => hang.close(() => r())), 5000, 'the server to close');
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await within(new Promise<void>((r) => s.listen(0, '127.0.0.1', r)), 5000, 'the server to listen');
  const port = (s.address() as { port: number }).port;
  await within(new Promise<void>((r) => s.close(() => r())), 5000, 'the server to close');
  return port;
}

function config(port: number, targets: string[], timeout = '900ms'): string {
  return [
    `listen: "127.0.0.1:${port}"`,
    'interval: 1s',
    `timeout: ${timeout}`,
    'jitter: 0',
    'targets:',
    ...targets.map((t) => `  - registry: "${t}"`),
    'dns:',
    `  resolvConf: ${join(dir, 'resolv.conf')}`,
    `  hosts: ${join(dir, 'hosts')}`,
    'containerd:',
    '  configPath: ""',
    '',
  ].join('\n');
}

function logTo(lines: string[]) {
  return pino(
    { level: 'debug' },
    new Writable({
      write(c, _e, cb) {
        lines.push(String(c));
        cb();
      },
    }),
  );
}

async function get(port: number, path: string): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}${path}`)).text();
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 6000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function watchProcess(t: TestContext): unknown[] {
  const escaped: unknown[] = [];
  const on = (err: unknown): void => {
    escaped.push(err);
  };
  process.on('unhandledRejection', on);
  process.on('uncaughtException', on);
  t.after(() => {
    process.off('unhandledRejection', on);
    process.off('uncaughtException', on);
  });
  return escaped;
}

const inClusterOff = { env: {} as Record<string, string | undefined> };

test('a target removed by reload while its probe is in flight does not come back in /metrics or the status page', async () => {
  const port = await freePort();
  const path = join(dir, 'ghost.yaml');
  const ghost = `127.0.0.1:${hangPort}`;
  const stays = `127.0.0.1:${closedPort}`;
  writeFileSync(path, config(port, [ghost, stays]));
  const lines: string[] = [];
  const acceptedBefore = accepted;
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-g' },
    processEnv: {},
    inCluster: inClusterOff,
    log: logTo(lines),
    reloadCheckMs: 0,
    stopGraceMs: 2000,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  const agent = r.agent;
  try {
    await until('the probe of the hanging registry is in flight', () => accepted > acceptedBefore);
    writeFileSync(path, config(port, [stays]));
    assert.deepEqual(await agent.reload(), { ok: true });
    assert.doesNotMatch(await get(port, '/metrics'), new RegExp(`target="${ghost}"`));
    // The in-flight probe times out (900 ms) after the reload; whatever the agent does with its result is logged.
    const ended = (l: string): boolean => l.includes(ghost) && /result dropped|target failing|target reachable/.test(l);
    await until('the in-flight probe ended', () => lines.some(ended));
    const metrics = await get(port, '/metrics');
    assert.doesNotMatch(metrics, new RegExp(`target="${ghost}"`), 'no ghost series (pullprobe_failure_info would alert forever)');
    assert.match(metrics, new RegExp(`pullprobe_registry_up\\{registry="${stays}",target="${stays}"\\} 0`));
    assert.deepEqual(
      agent.store.snapshot().targets.map((t) => t.target),
      [stays],
    );
    assert.ok(!(await get(port, '/')).includes(ghost), 'not on the status page');
    assert.ok(lines.some((l) => l.includes('result dropped: target no longer configured')));
  } finally {
    await agent.stop();
  }
});

test('an alias bomb written to the watched file: the poll keeps the old config, no unhandled rejection', async (t) => {
  const escaped = watchProcess(t);
  const port = await freePort();
  const path = join(dir, 'bomb.yaml');
  const stays = `127.0.0.1:${closedPort}`;
  writeFileSync(path, config(port, [stays]));
  const lines: string[] = [];
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-b' },
    processEnv: {},
    inCluster: inClusterOff,
    log: logTo(lines),
    reloadCheckMs: 50,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  try {
    await new Promise((res) => setTimeout(res, 150)); // the poll records the current text
    let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i <= 8; i++)
      bomb += `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]\n`;
    writeFileSync(path, bomb + config(port, [stays]));
    await until('the failed reload is reported', async () => /pullprobe_config_reload_success 0/.test(await get(port, '/metrics')), 3000);
    assert.deepEqual(escaped, []);
    const failed = lines
      .map((l) => JSON.parse(l) as { msg: string; errors?: string[] })
      .find((l) => l.msg === 'config reload failed; keeping the previous config');
    assert.match(failed?.errors?.[0] ?? '', new RegExp(`^${path.replace(/[.]/g, '\\.')}:2:\\d+: aliases expand to too many values`));
    assert.deepEqual(
      r.agent.config.targets.map((x) => x.target),
      [stays],
    );
  } finally {
    await r.agent.stop();
  }
});

test('a reload whose reader throws keeps the previous config and says so', async (t) => {
  const escaped = watchProcess(t);
  const port = await freePort();
  const path = join(dir, 'reader.yaml');
  const stays = `127.0.0.1:${closedPort}`;
  writeFileSync(path, config(port, [stays]));
  let calls = 0;
  const readConfig = (p: string): Promise<string> => {
    calls++;
    if (calls > 1) throw Object.assign(new Error('I/O error'), { code: 'EIO' });
    return readFile(p, 'utf8');
  };
  const lines: string[] = [];
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-r' },
    processEnv: {},
    inCluster: inClusterOff,
    log: logTo(lines),
    reloadCheckMs: 0,
    readConfig,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  try {
    const res = await r.agent.reload();
    assert.equal(res.ok, false);
    assert.deepEqual(res.errors, [`${path}: cannot read: EIO`]);
    assert.ok(calls > 1, 'the injected reader was used');
    assert.match(await get(port, '/metrics'), /pullprobe_config_reload_success 0/);
    assert.ok(lines.some((l) => l.includes('config reload failed; keeping the previous config')));
    assert.deepEqual(
      r.agent.config.targets.map((x) => x.target),
      [stays],
    );
    await new Promise((res2) => setTimeout(res2, 20));
    assert.deepEqual(escaped, []);
  } finally {
    await r.agent.stop();
  }
});

test('anything thrown while applying a reload is logged; reload() resolves, never rejects', async (t) => {
  const escaped = watchProcess(t);
  const port = await freePort();
  const path = join(dir, 'apply.yaml');
  const stays = `127.0.0.1:${closedPort}`;
  writeFileSync(path, config(port, [stays]));
  const lines: string[] = [];
  const log = pino(
    {
      level: 'info',
      hooks: {
        logMethod(args, method) {
          if (args.includes('config reloaded')) throw new Error('log sink broken');
          method.apply(this, args);
        },
      },
    },
    new Writable({
      write(c, _e, cb) {
        lines.push(String(c));
        cb();
      },
    }),
  );
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-x' },
    processEnv: {},
    inCluster: inClusterOff,
    log,
    reloadCheckMs: 0,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  try {
    writeFileSync(path, config(port, [stays], '800ms'));
    const res = await r.agent.reload();
    assert.equal(res.ok, false);
    assert.match(res.errors?.[0] ?? '', /^internal error while reloading .*apply\.yaml: log sink broken$/);
    assert.match(await get(port, '/metrics'), /pullprobe_config_reload_success 0/);
    assert.ok(lines.some((l) => l.includes('config reload failed after the new config was accepted')));
    assert.deepEqual(escaped, []);
  } finally {
    await r.agent.stop();
  }
});

test('each target is parsed once: probes and metrics get the same Target object, kept across a reload that keeps it', async () => {
  const port = await freePort();
  const path = join(dir, 'parsed.yaml');
  const a = `127.0.0.1:${closedPort}`;
  const b = `localhost:${closedPort}`;
  writeFileSync(path, config(port, [a, b], '300ms'));
  const r = await Agent.start({
    configPath: path,
    env: { hostname: 'node-p' },
    processEnv: {},
    inCluster: inClusterOff,
    log: logTo([]),
    reloadCheckMs: 0,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  const agent = r.agent;
  try {
    const first = agent.parsedTarget(a);
    assert.equal(first?.kind, 'registry');
    assert.equal(first.input, a);
    assert.equal(agent.parsedTarget(b)?.kind, 'registry');
    const c = `127.0.0.2:${closedPort}`;
    writeFileSync(path, config(port, [a, c], '300ms'));
    assert.deepEqual(await agent.reload(), { ok: true });
    assert.equal(agent.parsedTarget(a), first, 'a kept target is not parsed again');
    assert.equal(agent.parsedTarget(b), undefined, 'a removed target is forgotten');
    assert.equal(agent.parsedTarget(c)?.input, c);
  } finally {
    await agent.stop();
  }
});
