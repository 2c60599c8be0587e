/**
 * A loopback HTTPS stand-in for the Kubernetes API server, doing what the real
 * one does for the agent's four calls: bearer token checked against the
 * CURRENT content of a token file (rotate the file and the old token gets
 * 401), PATCH content types enforced (415 otherwise), RFC 7386 merge patch on
 * nodes, strategic merge on nodes/status (conditions and addresses merged by
 * `type`), events stored, and fault injection (403/409/429/500 or a hang) for
 * the next N requests. Every request is recorded for assertions.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { CertPair, TestCA } from './certs.js';
import type { KubeNode } from '../../src/kube/client.js';

export type Fault = { status: 403 | 409 | 429 | 500; retryAfterSeconds?: number; message?: string } | { hang: true };

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | null;
  /** The bearer token presented (test-only record). */
  token: string | null;
  status: number;
  body: unknown;
}

type Json = unknown;
const isObj = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  const out: Record<string, Json> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const MERGE_KEYS: Record<string, string> = { 'status.conditions': 'type', 'status.addresses': 'type' };

/** Strategic merge for the fields the agent touches: lists with a merge key merge by it. */
export function strategicMerge(target: Json, patch: Json, path = ''): Json {
  if (!isObj(patch)) return clone(patch);
  const out: Record<string, Json> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    const p = path ? `${path}.${k}` : k;
    const key = MERGE_KEYS[p];
    if (v === null) delete out[k];
    else if (key && Array.isArray(v)) out[k] = mergeList(Array.isArray(out[k]) ? (out[k] as Json[]) : [], v, key);
    else out[k] = strategicMerge(out[k], v, p);
  }
  return out;
}

function mergeList(orig: Json[], patch: Json[], key: string): Json[] {
  const out = orig.map(clone);
  for (const item of patch) {
    if (!isObj(item)) continue;
    const idx = out.findIndex((o) => isObj(o) && o[key] === item[key]);
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
    } else if (idx >= 0) out[idx] = mergePatch(out[idx], item);
    else out.push(clone(item));
  }
  return out;
}

function status(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

const REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict',
  415: 'UnsupportedMediaType', 429: 'TooManyRequests', 500: 'InternalError',
};

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  readonly events: Record<string, Json>[] = [];
  private readonly nodes = new Map<string, KubeNode>();
  private readonly faults: Fault[] = [];
  private readonly hung: ServerResponse[] = [];
  private rv = 100;
  url = '';

  private constructor(private readonly server: Server, private readonly tokenFile: string, nodes: KubeNode[]) {
    for (const n of nodes) this.nodes.set(n.metadata.name, clone(n));
  }

  /** `leaf`: a certificate for 127.0.0.1 to reuse across servers (issuing one costs an RSA keygen). */
  static async start(opts: { ca: TestCA; tokenFile: string; nodes: KubeNode[]; leaf?: CertPair }): Promise<FakeApiServer> {
    const leaf = opts.leaf ?? opts.ca.issue(`apiserver-${process.pid}-${Date.now()}`, { sans: ['127.0.0.1', 'localhost'] });
    let self: FakeApiServer | null = null;
    const server = createServer({ key: leaf.key, cert: leaf.cert }, (req, res) => { void self?.handle(req, res); });
    self = new FakeApiServer(server, opts.tokenFile, opts.nodes);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return self;
  }

  /** A deep copy of the stored node. */
  node(name: string): KubeNode | undefined {
    const n = this.nodes.get(name);
    return n ? clone(n) : undefined;
  }

  /** The next `count` requests get `fault` (in order after any already queued). */
  inject(count: number, fault: Fault): void {
    for (let i = 0; i < count; i++) this.faults.push(fault);
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Requests matching method and path suffix that the server answered with 2xx. */
  succeeded(method: string, pathEnd: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.endsWith(pathEnd) && r.status >= 200 && r.status < 300);
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const auth = req.headers.authorization ?? '';
    const rec: RecordedRequest = {
      method: req.method ?? '', path: (req.url ?? '').split('?')[0] ?? '',
      contentType: req.headers['content-type']?.split(';')[0]?.trim() ?? null,
      token: auth.startsWith('Bearer ') ? auth.slice(7) : null, status: 0, body: null,
    };
    try { rec.body = text ? JSON.parse(text) : null; } catch { rec.body = text; }
    this.requests.push(rec);
    const send = (code: number, body: object, headers: Record<string, string> = {}): void => {
      rec.status = code;
      res.writeHead(code, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const fail = (code: number, message: string, headers?: Record<string, string>): void =>
      send(code, status(code, REASONS[code] ?? 'Unknown', message), headers);

    let current = '';
    try { current = readFileSync(this.tokenFile, 'utf8').trim(); } catch { current = ''; }
    if (rec.token === null || current === '' || rec.token !== current) return fail(401, 'Unauthorized');

    const fault = this.faults.shift();
    if (fault) {
      if ('hang' in fault) { this.hung.push(res); return; }
      const headers: Record<string, string> = fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
      return fail(fault.status, fault.message ?? `injected ${fault.status}`, headers);
    }

    const nodeMatch = /^\/api\/v1\/nodes\/([^/]+)(\/status)?$/.exec(rec.path);
    const eventMatch = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(rec.path);
    if (nodeMatch?.[1]) {
      const name = decodeURIComponent(nodeMatch[1]);
      const node = this.nodes.get(name);
      if (!node) return fail(404, `nodes "${name}" not found`);
      const sub = nodeMatch[2] === '/status';
      if (req.method === 'GET') return send(200, node);
      if (req.method !== 'PATCH') return fail(405, 'method not allowed');
      const want = sub ? 'application/strategic-merge-patch+json' : 'application/merge-patch+json';
      if (rec.contentType !== want) return fail(415, `the body of the request was in an unknown format - accepted media types include: ${want}`);
      if (!isObj(rec.body)) return fail(400, 'invalid patch body');
      const patched = (sub ? strategicMerge(node, rec.body) : mergePatch(node, rec.body)) as KubeNode;
      // The main resource ignores status; the status subresource ignores spec.
      if (sub) patched.spec = clone(node.spec);
      else if (node.status) patched.status = clone(node.status);
      else delete patched.status;
      patched.metadata = { ...patched.metadata, name, resourceVersion: String(++this.rv) };
      if (node.metadata.uid) patched.metadata.uid = node.metadata.uid;
      this.nodes.set(name, patched);
      return send(200, patched);
    }
    if (eventMatch?.[1] && req.method === 'POST') {
      if (rec.contentType !== 'application/json') return fail(415, 'unsupported media type');
      if (!isObj(rec.body) || !isObj(rec.body.metadata) || typeof rec.body.metadata.name !== 'string') {
        return fail(400, 'event needs metadata.name');
      }
      const ns = decodeURIComponent(eventMatch[1]);
      const name = rec.body.metadata.name;
      if (this.events.some((e) => isObj(e.metadata) && e.metadata.name === name && e.metadata.namespace === ns)) {
        return fail(409, `events "${name}" already exists`);
      }
      const stored = { ...rec.body, metadata: { ...rec.body.metadata, namespace: ns } };
      this.events.push(stored);
      return send(201, stored);
    }
    return fail(404, 'the server could not find the requested resource');
  }
}
