/**
 * Pure /etc/hosts parser and lookup, as glibc's files backend reads it:
 * `#` starts a comment anywhere on a line, fields are separated by blanks,
 * the first field is an IPv4 or IPv6 address, the rest are the canonical
 * name and aliases, matched case-insensitively. Every matching line counts.
 *
 * Linear in the input (one pass, no regular expressions, bounded warnings):
 * ad-blocking hosts files of hundreds of thousands of lines are real.
 */
import { forEachLine, ipFamily, WarningList } from './resolv-conf.js';

export interface HostsEntry {
  address: string;
  /**
   * Canonical name first, then aliases, lowercased, as the line's text
   * (blank-separated): one string per line keeps a 10 MB file cheap to hold.
   */
  names: string;
  line: number;
}

export interface HostsTable {
  entries: HostsEntry[];
  warnings: string[];
}

/** space, \t, \v, \f, \r */
const isSep = (c: number): boolean => c === 32 || (c >= 9 && c <= 13 && c !== 10);

export function parseHosts(text: string): HostsTable {
  const entries: HostsEntry[] = [];
  const warnings = new WarningList();
  forEachLine(text, (line, n) => {
    const hash = line.indexOf('#');
    const end = hash >= 0 ? hash : line.length;
    let i = 0;
    while (i < end && isSep(line.charCodeAt(i))) i++;
    if (i === end) return;
    const start = i;
    while (i < end && !isSep(line.charCodeAt(i))) i++;
    const address = line.slice(start, i);
    if (ipFamily(address) === 0) {
      if (warnings.want()) warnings.add(`line ${n}: not an IP address: ${address.slice(0, 60)}`);
      return;
    }
    while (i < end && isSep(line.charCodeAt(i))) i++;
    if (i === end) {
      if (warnings.want()) warnings.add(`line ${n}: address without a host name`);
      return;
    }
    const names = line.slice(i, end).toLowerCase();
    entries.push({ address, names, line: n });
  });
  return { entries, warnings: warnings.done() };
}

function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** True when `names` holds `wanted` as a whole blank-separated word (a trailing dot allowed). */
function hasName(names: string, wanted: string): boolean {
  for (let at = names.indexOf(wanted); at >= 0; at = names.indexOf(wanted, at + 1)) {
    if (at > 0 && !isSep(names.charCodeAt(at - 1))) continue;
    let end = at + wanted.length;
    if (names.charCodeAt(end) === 46 /* . */) end++;
    if (end >= names.length || isSep(names.charCodeAt(end))) return true;
  }
  return false;
}

/**
 * Addresses for `name` (canonical or alias), IPv4 first then IPv6, each in
 * file order, without duplicates. Empty when the name is not in the table.
 */
export function lookupHosts(table: HostsTable, name: string): string[] {
  const wanted = normalise(name);
  if (wanted === '') return [];
  for (let i = 0; i < wanted.length; i++) if (isSep(wanted.charCodeAt(i))) return [];
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const entry of table.entries) {
    if (!hasName(entry.names, wanted)) continue;
    (ipFamily(entry.address) === 4 ? v4 : v6).add(entry.address);
  }
  return [...v4, ...v6];
}
