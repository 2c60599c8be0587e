/**
 * A V8 heap snapshot (.heapsnapshot JSON, as written by v8.writeHeapSnapshot
 * or `node --heapsnapshot-signal`) summarised: total self size, then the
 * biggest groups of objects by constructor (or node type for strings, code,
 * arrays and other internals) with their counts. Counts show what survives a
 * cycle (e.g. 600 TLSSockets after 600 probes is per-probe garbage kept
 * alive). Pure apart from reading the file; prints nothing itself.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  /** Constructor name, or "(type)" for V8 internals: (string), (code), (array), (closure: name) … */
  name: string;
  count: number;
  selfBytes: number;
}

export interface HeapSummary {
  totalBytes: number;
  nodes: number;
  groups: HeapGroup[];
}

/** Group key of one node: objects by constructor name; strings, code, arrays and the like by type. */
function groupName(type: string, name: string): string {
  switch (type) {
    case 'object':
    case 'native':
      return name || `(${type})`;
    case 'closure':
      return '(closure)';
    case 'string':
    case 'concatenated string':
    case 'sliced string':
      return '(string)';
    default:
      return `(${type})`;
  }
}

export function summariseSnapshot(text: string, top = 15): HeapSummary {
  const s = JSON.parse(text) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const groups = new Map<string, HeapGroup>();
  let totalBytes = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType] ?? 0] ?? '?';
    const name = s.strings[s.nodes[i + iName] ?? 0] ?? '';
    const size = s.nodes[i + iSize] ?? 0;
    totalBytes += size;
    const key = groupName(type, name);
    const g = groups.get(key);
    if (g) {
      g.count++;
      g.selfBytes += size;
    } else groups.set(key, { name: key, count: 1, selfBytes: size });
  }
  const sorted = [...groups.values()].sort((a, b) => b.selfBytes - a.selfBytes);
  return { totalBytes, nodes: s.nodes.length / width, groups: sorted.slice(0, top) };
}

export function summariseSnapshotFile(path: string, top = 15): HeapSummary {
  return summariseSnapshot(readFileSync(path, 'utf8'), top);
}
