/**
 * Runs INSIDE a lab node (via lab.exec): plays Prometheus for
 * blackbox_exporter — every `intervalMs`, one GET /probe?module=…&target=URL
 * per URL, spread evenly over the interval — for `seconds`. Prints one JSON
 * line: {"probes":100,"success":100}.
 *
 *   node --import tsx bench/inner-drive.ts '{"base":"http://127.0.0.1:9115","module":"head","urls":[…],"intervalMs":1000,"seconds":20}'
 */
import http from 'node:http';

export interface InnerDriveArgs {
  base: string;
  module: string;
  urls: string[];
  intervalMs: number;
  seconds: number;
}

function probe(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(/^probe_success 1$/m.test(body)));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function main(): Promise<number> {
  const a = JSON.parse(process.argv[2] ?? '{}') as InnerDriveArgs;
  const pending: Array<Promise<boolean>> = [];
  const t0 = performance.now();
  const step = a.intervalMs / Math.max(1, a.urls.length);
  for (let k = 0; ; k++) {
    const at = k * step;
    if (at >= a.seconds * 1000) break;
    const wait = t0 + at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const target = a.urls[k % a.urls.length] ?? '';
    pending.push(probe(`${a.base}/probe?module=${encodeURIComponent(a.module)}&target=${encodeURIComponent(target)}`));
  }
  const results = await Promise.all(pending);
  process.stdout.write(JSON.stringify({ probes: results.length, success: results.filter(Boolean).length }) + '\n');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`inner-drive: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
