/**
 * YAML text → plain value for the config validator, with every YAML problem
 * as an error line `<source>:<line>:<col>: …` and no exception escaping.
 * Guards the yaml library's costly or throwing paths, each in one linear pass:
 * nesting deeper than any config needs (its composer recurses), duplicate
 * keys (its own check compares every key with every earlier one), unresolved
 * aliases (its toJS throws), keys that are lists or mappings (stringified at
 * a cost that grows with nesting), and alias bombs (toJS's alias budget).
 */
import { Composer, LineCounter, Parser, isAlias, isMap, isScalar, visit, type CST, type Document } from 'yaml';

/** Same as the yaml library's default: aliases may expand to at most this many nodes. */
export const MAX_ALIAS_COUNT = 100;
/** A config nests four levels deep (root, targets, a target, a list); this leaves ample room. */
export const MAX_YAML_DEPTH = 32;

const OPTIONS = { prettyErrors: false, uniqueKeys: false, strict: true, logLevel: 'error' } as const;

type Position = (offset: number) => string;

export interface YamlRead {
  /** The document as plain data; undefined when there are errors. */
  value: unknown;
  errors: string[];
}

function clip(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Where the CST first nests deeper than `max` collections (iterative: no recursion on hostile depth). */
function tooDeepAt(tokens: readonly CST.Token[], max: number): number | null {
  const stack: { tok: CST.Token; depth: number }[] = tokens.map((tok) => ({ tok, depth: 0 }));
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { tok, depth } = next;
    if (tok.type === 'document') {
      if (tok.value) stack.push({ tok: tok.value, depth });
      continue;
    }
    if (tok.type !== 'block-map' && tok.type !== 'block-seq' && tok.type !== 'flow-collection') continue;
    if (depth + 1 > max) return tok.offset;
    for (const item of tok.items) {
      if ('key' in item && item.key) stack.push({ tok: item.key, depth: depth + 1 });
      if (item.value) stack.push({ tok: item.value, depth: depth + 1 });
    }
  }
  return null;
}

/** Duplicate keys, keys that are not plain values, unresolved aliases. */
function structureErrors(doc: Document.Parsed, at: Position): string[] {
  const errors: string[] = [];
  const anchors = new Set<string>();
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) {
        if (!anchors.has(node.source)) {
          errors.push(
            `${at(node.range?.[0] ?? 0)}: unresolved alias *${clip(node.source)} (its anchor &${clip(node.source)} must come before it)`,
          );
        }
        return;
      }
      if (node.anchor) anchors.add(node.anchor);
      if (!isMap(node)) return;
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = pair.key;
        if (key === null || key === undefined) continue;
        if (!isScalar(key)) {
          const where = (key as { range?: [number, number, number] }).range?.[0] ?? node.range?.[0] ?? 0;
          errors.push(`${at(where)}: a key must be a plain value, not a list, a mapping or an alias`);
          continue;
        }
        if (seen.has(key.value))
          errors.push(`${at(key.range?.[0] ?? 0)}: Map keys must be unique (${clip(String(key.value))} is repeated)`);
        seen.add(key.value);
      }
    },
  });
  return errors;
}

/** The position of the first alias: where an alias bomb starts. */
function firstAlias(doc: Document.Parsed): number {
  let pos = 0;
  visit(doc, {
    Alias(_key, node) {
      pos = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return pos;
}

const MAX_SYNTAX_ERRORS = 20;

/** Parse one YAML document. Never throws. */
export function readYaml(text: string, source: string): YamlRead {
  const lineCounter = new LineCounter();
  const at: Position = (offset) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${source}:${line}:${col}`;
  };
  try {
    // Stop at the first few syntax errors: the yaml library spends ~20 µs on each one, and a
    // file of nothing but `]` (or binary junk) has one per byte.
    const tokens: CST.Token[] = [];
    let syntaxErrors = 0;
    for (const token of new Parser(lineCounter.addNewLine).parse(text)) {
      tokens.push(token);
      if (token.type === 'error' && ++syntaxErrors >= MAX_SYNTAX_ERRORS) {
        return {
          value: undefined,
          errors: [`${at(token.offset)}: not a YAML configuration (${MAX_SYNTAX_ERRORS} syntax errors by here: ${clip(token.message)})`],
        };
      }
    }
    const deep = tooDeepAt(tokens, MAX_YAML_DEPTH);
    if (deep !== null) return { value: undefined, errors: [`${at(deep)}: nested more than ${MAX_YAML_DEPTH} levels deep`] };
    let doc: Document.Parsed | null = null;
    const errors: string[] = [];
    for (const d of new Composer(OPTIONS).compose(tokens, true, text.length)) {
      if (doc) {
        errors.push(`${at(d.range[0])}: more than one YAML document in the file (remove the "---" separator)`);
        break;
      }
      doc = d;
    }
    if (!doc) return { value: undefined, errors: [`${source}: no YAML document`] };
    errors.unshift(...[...doc.errors, ...doc.warnings].map((e) => `${at(e.pos[0])}: ${e.message}`));
    errors.push(...structureErrors(doc, at));
    if (errors.length) return { value: undefined, errors };
    try {
      return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), errors };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const why = /alias count/i.test(msg)
        ? `aliases expand to too many values (at most ${MAX_ALIAS_COUNT}); write the values out instead`
        : `cannot read this YAML: ${clip(msg)}`;
      return { value: undefined, errors: [`${at(firstAlias(doc))}: ${why}`] };
    }
  } catch (err) {
    return { value: undefined, errors: [`${source}: cannot read this YAML: ${clip(err instanceof Error ? err.message : String(err))}`] };
  }
}
