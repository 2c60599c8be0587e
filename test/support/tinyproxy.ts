/**
 * A real tinyproxy (Debian package) on 127.0.0.1 for unit tests: foreground
 * (-d), a temp config, stopped by stop() (the test's `after`). Ready when it
 * logs that it accepts connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

export interface Tinyproxy {
  port: number;
  /** Its log so far (for assertion messages). */
  log(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** Start tinyproxy with these extra config lines (ConnectPort, BasicAuth…). */
export async function startTinyproxy(extra: string[], readyMs = 10_000): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'pullprobe-tinyproxy-'));
  const port = await freePort();
  const conf = join(dir, 'tinyproxy.conf');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 10',
      'LogLevel Info',
      'MaxClients 20',
      'Allow 127.0.0.1',
      'DisableViaHeader Yes',
      ...extra,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = once(child, 'exit');
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tinyproxy did not start within ${readyMs} ms:\n${out}`)), readyMs);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.includes('Accepting connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`tinyproxy exited:\n${out}`));
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, log: () => out, stop };
}
