/**
 * Process figures from /proc for the benchmark: CPU time of every thread of a
 * process in nanoseconds (schedstat: exact, unlike the 10 ms ticks of
 * /proc/<pid>/stat, which matters for an idle process), RSS and its peak,
 * and finding a lab daemon by its command line. Reads only.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** CPU seconds used so far by all threads of `pid` (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  let ns = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const t of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      /* thread ended */
    }
  }
  return ns / 1e9;
}

/**
 * VmRSS and VmHWM in KiB, the anonymous part of RSS, and the resident pages of
 * the executable itself (the node binary's code and data, shared with every
 * process that runs it).
 */
export function memory(pid: number): { rssKb: number; hwmKb: number; anonKb: number; binaryKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (text: string, k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  let anonKb = Number.NaN;
  try {
    anonKb = kb(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Anonymous');
  } catch {
    /* older kernel */
  }
  let binaryKb = Number.NaN;
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    binaryKb = 0;
    let inExe = false;
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) inExe = head[1] === exe;
      else if (inExe && line.startsWith('Rss:')) binaryKb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
    }
  } catch {
    /* gone */
  }
  return { rssKb: kb(status, 'VmRSS'), hwmKb: kb(status, 'VmHWM'), anonKb, binaryKb };
}

/** The first of `pids` whose command line contains every one of `needles`. */
export function findPid(pids: readonly number[], ...needles: string[]): number | undefined {
  for (const pid of pids) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (needles.every((n) => cmd.includes(n))) return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** The direct and indirect children of `pid` (for a daemon started through `ip netns exec` / sh). */
export function descendants(pid: number, depth = 4): number[] {
  const out: number[] = [];
  let frontier = [pid];
  const all = readdirSync('/proc').filter((x) => /^\d+$/.test(x));
  for (let d = 0; d < depth && frontier.length > 0; d++) {
    const kids: number[] = [];
    for (const p of all) {
      try {
        const s = readFileSync(`/proc/${p}/stat`, 'utf8');
        if (frontier.includes(Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]))) kids.push(Number(p));
      } catch {
        /* raced */
      }
    }
    out.push(...kids);
    frontier = kids;
  }
  return out;
}
