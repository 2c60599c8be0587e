/**
 * Runs INSIDE a lab node (via lab.exec): `total` GETs of one URL with at most
 * `concurrency` in flight (keep-alive sockets), all started at once. Prints
 * one JSON line: {"answers":200,"seconds":0.41,"statuses":{"200":200},"errors":0,
 * "latency":{"median":…,"p90":…,"max":…}} (seconds).
 *
 *   node --import tsx bench/inner-burst.ts URL TOTAL CONCURRENCY
 */
import http from 'node:http';
import { median, p90 } from './report.js';

export interface BurstResult {
  answers: number;
  seconds: number;
  statuses: Record<string, number>;
  errors: number;
  latency: { median: number; p90: number; max: number };
}

function get(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function main(): Promise<number> {
  const [url, totalArg, concArg] = process.argv.slice(2);
  if (!url) {
    process.stderr.write('usage: inner-burst.ts URL TOTAL CONCURRENCY\n');
    return 2;
  }
  const total = Number(totalArg ?? 200);
  const concurrency = Number(concArg ?? 50);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      const s = performance.now();
      try {
        const code = await get(url, agent);
        statuses[String(code)] = (statuses[String(code)] ?? 0) + 1;
        latencies.push((performance.now() - s) / 1000);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  const out: BurstResult = {
    answers: latencies.length,
    seconds,
    statuses,
    errors,
    latency: { median: median(latencies), p90: p90(latencies), max: Math.max(0, ...latencies) },
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`inner-burst: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
