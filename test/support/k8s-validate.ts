/**
 * Validates rendered Kubernetes objects against the Kubernetes API schema,
 * strict on unknown fields, with no cluster and no download: the
 * `kubernetes-models` package (generated from the Kubernetes OpenAPI spec)
 * provides both
 * - a JSON-schema validator per kind (`validate()`: types, required fields,
 *   enums, formats), and
 * - a TypeScript interface per kind, against which the objects are
 *   type-checked as object literals by the TypeScript compiler, whose
 *   excess-property check rejects every field the API does not define, at
 *   every depth (the OpenAPI schema itself allows unknown fields; the API
 *   server's strict field validation does not).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A loosely typed rendered object (test data). */
export type K8sObject = Record<string, unknown> & { apiVersion?: unknown; kind?: unknown };

/** `kubernetes-models` module for an apiVersion + kind, e.g. apps/v1 DaemonSet → kubernetes-models/apps/v1/DaemonSet. */
export function modelPath(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

function name(o: K8sObject): string {
  const meta = (o['metadata'] ?? {}) as { name?: unknown; namespace?: unknown };
  return `${String(o.kind)}/${String(meta.name)}`;
}

/** Runs the schema validator of each object's kind; returns one line per problem. */
export function schemaErrors(objects: readonly K8sObject[]): string[] {
  const errors: string[] = [];
  for (const o of objects) {
    let Model: ModelClass;
    try {
      const mod = require(modelPath(String(o.apiVersion), String(o.kind))) as Record<string, ModelClass>;
      const found = mod[String(o.kind)];
      if (!found) throw new Error('no such export');
      Model = found;
    } catch {
      errors.push(`${name(o)}: ${String(o.apiVersion)} ${String(o.kind)} is not a Kubernetes API kind`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (err) {
      errors.push(`${name(o)}: ${(err as Error).message}`);
    }
  }
  return errors;
}

/** Type-checks each object against its kind's interface; unknown fields (at any depth) and wrong types are errors. */
export function unknownFieldErrors(objects: readonly K8sObject[]): string[] {
  const lines: string[] = [];
  const owner: string[] = [];
  objects.forEach((o, i) => {
    const kind = String(o.kind);
    lines.push(`import type { I${kind} as T${i} } from ${JSON.stringify(modelPath(String(o.apiVersion), kind))};`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(o)};`);
    owner.push(name(o), name(o));
  });
  const file = `${ROOT}test/support/rendered-objects.virtual.ts`;
  const text = lines.join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (f === file ? ts.createSourceFile(f, text, lang) : getSourceFile(f, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => f === file || fileExists(f);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file?.fileName !== file || d.start === undefined) return msg;
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    return `${owner[line] ?? '?'}: ${msg}`;
  });
}
