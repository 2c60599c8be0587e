/**
 * Pure /etc/hosts parser and lookup, as glibc's files backend reads it:
 * `#` starts a comment anywhere on a line, fields are separated by blanks,
 * the first field is an IPv4 or IPv6 address, the rest are the canonical
 * name and aliases, matched case-insensitively. Every matching line counts.
 */
import { isIP } from 'node:net';

export interface HostsEntry {
  address: string;
  /** Canonical name first, then aliases, lowercased. */
  names: string[];
  line: number;
}

export interface HostsTable {
  entries: HostsEntry[];
  warnings: string[];
}

export function parseHosts(text: string): HostsTable {
  const table: HostsTable = { entries: [], warnings: [] };
  text.split('\n').forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const line = hash >= 0 ? raw.slice(0, hash) : raw;
    const fields = line.split(/[ \t\r]+/).filter((f) => f.length > 0);
    if (fields.length === 0) return;
    const [address, ...names] = fields as [string, ...string[]];
    if (isIP(address.split('%')[0] ?? '') === 0) {
      table.warnings.push(`line ${i + 1}: not an IP address: ${address.slice(0, 60)}`);
      return;
    }
    if (names.length === 0) {
      table.warnings.push(`line ${i + 1}: address without a host name`);
      return;
    }
    table.entries.push({ address, names: names.map((n) => n.toLowerCase()), line: i + 1 });
  });
  return table;
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Addresses for `name` (canonical or alias), IPv4 first then IPv6, each in
 * file order, without duplicates. Empty when the name is not in the table.
 */
export function lookupHosts(table: HostsTable, name: string): string[] {
  const wanted = normalise(name);
  const v4: string[] = [];
  const v6: string[] = [];
  for (const entry of table.entries) {
    if (!entry.names.some((n) => normalise(n) === wanted)) continue;
    const list = isIP(entry.address.split('%')[0] ?? '') === 4 ? v4 : v6;
    if (!list.includes(entry.address)) list.push(entry.address);
  }
  return [...v4, ...v6];
}
