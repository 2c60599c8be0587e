/**
 * Manual lab control (also used by the benchmark):
 *   node --import tsx test/lab/support/lab-cli.ts up [--containerd]   # prints the run id and paths (JSON)
 *   node --import tsx test/lab/support/lab-cli.ts status
 *   node --import tsx test/lab/support/lab-cli.ts fault NAME [nodeA|nodeB|A|B|all] [registry-host]
 *   node --import tsx test/lab/support/lab-cli.ts clear
 *   node --import tsx test/lab/support/lab-cli.ts exec nodeA -- CMD ARGS...
 *   node --import tsx test/lab/support/lab-cli.ts down        # removes every pp-* namespace
 * The current run id is kept in <state root>/current (DEFAULT_STATE_ROOT in lab.ts).
 */
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { NODES, REGISTRIES, type NodeName, type RegistryHost, type SubnetName } from './addresses.js';
import { cleanupStale, DEFAULT_STATE_ROOT, FAULTS, Lab, type FaultName } from './lab.js';
import { isAlive, listLabNamespaces } from './netns.js';

const CURRENT = join(DEFAULT_STATE_ROOT, 'current');

function current(): Lab {
  if (!existsSync(CURRENT)) throw new Error('no lab is up (run `up` first)');
  return Lab.attach(readFileSync(CURRENT, 'utf8').trim());
}

function subnetOf(arg: string | undefined): SubnetName | 'all' {
  if (arg === undefined) return 'A';
  if (arg === 'A' || arg === 'B' || arg === 'all') return arg;
  if (arg in NODES) return NODES[arg as NodeName].subnet;
  throw new Error(`unknown node or subnet ${arg}`);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up': {
      const t0 = performance.now();
      const lab = await Lab.up({ persistent: true, containerd: rest.includes('--containerd') });
      writeFileSync(CURRENT, lab.run + '\n');
      console.log(
        JSON.stringify(
          {
            run: lab.run,
            seconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
            ns: lab.ns,
            paths: lab.paths,
            images: lab.images,
          },
          null,
          2,
        ),
      );
      return 0;
    }
    case 'down': {
      const removed = cleanupStale(DEFAULT_STATE_ROOT, true);
      rmSync(CURRENT, { force: true });
      console.log(`removed runs: ${removed.join(' ') || '(none)'}`);
      return 0;
    }
    case 'status': {
      const names = listLabNamespaces();
      console.log(names.length ? names.join('\n') : '(no pp-* namespaces)');
      if (existsSync(CURRENT)) {
        const lab = current();
        const st = JSON.parse(readFileSync(join(lab.dir, 'state.json'), 'utf8')) as { pids: Record<string, number> };
        for (const [n, p] of Object.entries(st.pids)) console.log(`${n.padEnd(20)} ${p} ${isAlive(p) ? 'up' : 'DEAD'}`);
        console.log(lab.rules());
      }
      return 0;
    }
    case 'fault': {
      const name = rest[0] as FaultName | undefined;
      if (!name || !(FAULTS as readonly string[]).includes(name)) {
        console.error(`usage: fault NAME [node|A|B|all] [registry-host]; names: ${FAULTS.join(' ')}`);
        return 2;
      }
      const host = rest[2];
      if (host !== undefined && !(host in REGISTRIES)) throw new Error(`unknown registry ${host}`);
      current().fault(name, { subnet: subnetOf(rest[1]), ...(host ? { host: host as RegistryHost } : {}) });
      return 0;
    }
    case 'clear':
      current().clear();
      return 0;
    case 'exec': {
      const node = rest[0] as NodeName;
      const args = rest.slice(rest[1] === '--' ? 2 : 1);
      if (!(node in NODES) || args.length === 0) {
        console.error('usage: exec nodeA|nodeB -- CMD ARGS...');
        return 2;
      }
      const r = await current().exec(node, args, { timeoutMs: 120_000 });
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      return r.code ?? 1;
    }
    default:
      console.error('usage: lab-cli.ts up [--containerd]|down|status|fault NAME [node]|clear|exec NODE -- CMD...');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
