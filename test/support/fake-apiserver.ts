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

export type Fault =
  | { status: 403 | 409 | 429 | 500; retryAfterSeconds?: number; message?: string }
  | { hang: true }
  /** Answer normally, but only after `delayMs` (a slow server). */
  | { delayMs: number };

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
  const out = new Map(Object.entries(isObj(target) ? target : {}));
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) out.delete(k);
    else out.set(k, mergePatch(out.get(k), v));
  }
  return Object.fromEntries(out);
}

const MERGE_KEYS: Record<string, string> = { 'status.conditions': 'type', 'status.addresses': 'type' };

/** Strategic merge for the fields the agent touches: lists with a merge key merge by it. */
export function strategicMerge(target: Json, patch: Json, path = ''): Json {
  if (!isObj(patch)) return clone(patch);
  const out = new Map(Object.entries(isObj(target) ? target : {}));
  for (const [k, v] of Object.entries(patch)) {
    const p = path ? `${path}.${k}` : k;
    const key = MERGE_KEYS[p];
    const orig = out.get(k);
    if (v === null) out.delete(k);
    else if (key && Array.isArray(v)) out.set(k, mergeList(Array.isArray(orig) ? (orig as Json[]) : [], v, key));
    else out.set(k, strategicMerge(orig, v, p));
  }
  return Object.fromEntries(out);
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
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  500: 'InternalError',
};

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  readonly events: Record<string, Json>[] = [];
  private readonly nodes = new Map<string, KubeNode>();
  private readonly faults: Fault[] = [];
  private readonly hung: ServerResponse[] = [];
  /** Read-only objects kubectl asks for (pods, events, secrets, serviceaccounts), by `plural/namespace/name`. */
  private readonly objects = new Map<string, Record<string, Json>>();
  private readonly denied: Array<{ method: string; path: RegExp }> = [];
  private rv = 100;
  /** Pod changes for watches (`?watch=1`), in resourceVersion order. */
  private readonly podLog: Array<{ rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Record<string, Json> }> = [];
  /** Watches from a resourceVersion below this get a 410 Gone (the history was compacted). */
  private compactedBefore = 0;
  private readonly watchers = new Set<{ res: ServerResponse; selector: string | null }>();
  url = '';

  private constructor(
    private readonly server: Server,
    private readonly tokenFile: string,
    nodes: KubeNode[],
  ) {
    for (const n of nodes) this.nodes.set(n.metadata.name, clone(n));
  }

  /** `leaf`: a certificate for 127.0.0.1 to reuse across servers (issuing one costs an RSA keygen). */
  static async start(opts: { ca: TestCA; tokenFile: string; nodes: KubeNode[]; leaf?: CertPair }): Promise<FakeApiServer> {
    const leaf = opts.leaf ?? opts.ca.issue(`apiserver-${process.pid}-${Date.now()}`, { sans: ['127.0.0.1', 'localhost'] });
    let self: FakeApiServer | null = null;
    const server = createServer({ key: leaf.key, cert: leaf.cert }, (req, res) => {
      void self?.handle(req, res);
    });
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

  /**
   * Store a Pod, Event, Secret or ServiceAccount (namespaced; served to GET
   * the way the API server does) or a Node. Replaces an object of the same name.
   */
  put(obj: Record<string, Json>): void {
    const kind = typeof obj.kind === 'string' ? obj.kind : '';
    const meta = isObj(obj.metadata) ? obj.metadata : {};
    const name = typeof meta.name === 'string' ? meta.name : '';
    if (kind === 'Node') {
      this.nodes.set(name, clone(obj) as unknown as KubeNode);
      return;
    }
    const plural = PLURALS[kind];
    if (!plural || name === '') throw new Error(`fake apiserver: cannot store kind ${kind} named "${name}"`);
    const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default';
    const key = `${plural}/${ns}/${name}`;
    const existed = this.objects.has(key);
    const stored = { apiVersion: 'v1', ...clone(obj), metadata: { ...clone(meta), namespace: ns, resourceVersion: String(++this.rv) } };
    this.objects.set(key, stored);
    if (plural === 'pods') this.podChanged(existed ? 'MODIFIED' : 'ADDED', stored);
  }

  /** Delete a Pod (watchers see DELETED). */
  deletePod(namespace: string, name: string): void {
    const key = `pods/${namespace}/${name}`;
    const obj = this.objects.get(key);
    if (!obj) return;
    this.objects.delete(key);
    this.podChanged('DELETED', {
      ...clone(obj),
      metadata: { ...(isObj(obj.metadata) ? obj.metadata : {}), resourceVersion: String(++this.rv) },
    });
  }

  /** Forget the pod history so far: a watch from an older resourceVersion gets 410 Gone. */
  compactPods(): void {
    this.compactedBefore = this.rv;
    this.podLog.length = 0;
  }

  /** End every open watch (as the API server does at its timeout); clients re-watch. */
  closeWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Watches currently open. */
  get openWatches(): number {
    return this.watchers.size;
  }

  private podChanged(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Record<string, Json>): void {
    const entry = { rv: this.rv, type, object: { kind: 'Pod', ...clone(object) } };
    this.podLog.push(entry);
    for (const w of this.watchers) {
      if (filterBy([entry.object], w.selector).length) w.res.write(`${JSON.stringify({ type, object: entry.object })}\n`);
    }
  }

  private watchPods(query: URLSearchParams, rec: RecordedRequest, res: ServerResponse): void {
    const selector = query.get('fieldSelector');
    const from = Number(query.get('resourceVersion') ?? '0') || 0;
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'application/json' });
    if (from !== 0 && from < this.compactedBefore) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from}`) })}\n`);
      return;
    }
    for (const e of this.podLog) {
      if (e.rv > from && filterBy([e.object], selector).length) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
    }
    const w = { res, selector };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }

  /** Requests whose method and path (without query) match get 403 Forbidden, as RBAC would answer. */
  deny(method: string, path: RegExp): void {
    this.denied.push({ method, path });
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
      method: req.method ?? '',
      path: (req.url ?? '').split('?')[0] ?? '',
      contentType: req.headers['content-type']?.split(';')[0]?.trim() ?? null,
      token: auth.startsWith('Bearer ') ? auth.slice(7) : null,
      status: 0,
      body: null,
    };
    try {
      rec.body = text ? JSON.parse(text) : null;
    } catch {
      rec.body = text;
    }
    this.requests.push(rec);
    const send = (code: number, body: object, headers: Record<string, string> = {}): void => {
      rec.status = code;
      res.writeHead(code, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const fail = (code: number, message: string, headers?: Record<string, string>): void =>
      send(code, status(code, REASONS[code] ?? 'Unknown', message), headers);

    let current = '';
    try {
      current = readFileSync(this.tokenFile, 'utf8').trim();
    } catch {
      current = '';
    }
    if (rec.token === null || current === '' || rec.token !== current) {
      fail(401, 'Unauthorized');
      return;
    }

    const fault = this.faults.shift();
    if (fault) {
      if ('hang' in fault) {
        this.hung.push(res);
        return;
      }
      if ('delayMs' in fault) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      else {
        const headers: Record<string, string> =
          fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
        fail(fault.status, fault.message ?? `injected ${fault.status}`, headers);
        return;
      }
    }

    if (this.denied.some((d) => d.method === req.method && d.path.test(rec.path))) {
      fail(403, `forbidden: User "test" cannot ${req.method?.toLowerCase()} resource at ${rec.path}`);
      return;
    }
    const query = new URL(req.url ?? '/', 'https://fake').searchParams;
    if (req.method === 'GET' && rec.path === '/api/v1/pods' && ['1', 'true'].includes(query.get('watch') ?? '')) {
      this.watchPods(query, rec, res);
      return;
    }
    if (req.method === 'GET') {
      const read = this.read(rec.path, new URL(req.url ?? '/', 'https://fake').searchParams);
      if (read !== null) {
        if ('status' in read) fail(read.status, read.message);
        else send(200, read.body);
        return;
      }
    }

    const nodeMatch = /^\/api\/v1\/nodes\/([^/]+)(\/status)?$/.exec(rec.path);
    const eventMatch = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(rec.path);
    if (nodeMatch?.[1]) {
      const name = decodeURIComponent(nodeMatch[1]);
      const node = this.nodes.get(name);
      if (!node) {
        fail(404, `nodes "${name}" not found`);
        return;
      }
      const sub = nodeMatch[2] === '/status';
      if (req.method === 'GET') {
        send(200, { apiVersion: 'v1', kind: 'Node', ...node });
        return;
      }
      if (req.method !== 'PATCH') {
        fail(405, 'method not allowed');
        return;
      }
      const want = sub ? 'application/strategic-merge-patch+json' : 'application/merge-patch+json';
      if (rec.contentType !== want) {
        fail(415, `the body of the request was in an unknown format - accepted media types include: ${want}`);
        return;
      }
      if (!isObj(rec.body)) {
        fail(400, 'invalid patch body');
        return;
      }
      const patched = (sub ? strategicMerge(node, rec.body) : mergePatch(node, rec.body)) as KubeNode;
      // The main resource ignores status; the status subresource ignores spec.
      if (sub) {
        if (node.spec) patched.spec = clone(node.spec);
        else delete patched.spec;
      } else if (node.status) patched.status = clone(node.status);
      else delete patched.status;
      patched.metadata = { ...patched.metadata, name, resourceVersion: String(++this.rv) };
      if (node.metadata.uid) patched.metadata.uid = node.metadata.uid;
      this.nodes.set(name, patched);
      send(200, patched);
      return;
    }
    if (eventMatch?.[1] && req.method === 'POST') {
      if (rec.contentType !== 'application/json') {
        fail(415, 'unsupported media type');
        return;
      }
      if (!isObj(rec.body) || !isObj(rec.body.metadata) || typeof rec.body.metadata.name !== 'string') {
        fail(400, 'event needs metadata.name');
        return;
      }
      const ns = decodeURIComponent(eventMatch[1]);
      const name = rec.body.metadata.name;
      if (this.events.some((e) => isObj(e.metadata) && e.metadata.name === name && e.metadata.namespace === ns)) {
        fail(409, `events "${name}" already exists`);
        return;
      }
      const stored = { ...rec.body, metadata: { ...rec.body.metadata, namespace: ns } };
      this.events.push(stored);
      send(201, stored);
      return;
    }
    fail(404, 'the server could not find the requested resource');
  }

  /**
   * GETs kubectl makes: version, discovery, lists (fieldSelector on
   * metadata.name / metadata.namespace / involvedObject.*) and single
   * objects. null: not a path served here (the caller goes on).
   */
  private read(path: string, query: URLSearchParams): { body: object } | { status: number; message: string } | null {
    if (path === '/version') return { body: { major: '1', minor: '32', gitVersion: 'v1.32.0', platform: 'linux/amd64' } };
    if (path === '/api')
      return {
        body: {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace(/^https:\/\//, '') }],
        },
      };
    if (path === '/apis') return { body: { kind: 'APIGroupList', apiVersion: 'v1', groups: [] } };
    if (path === '/api/v1') return { body: { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'v1', resources: DISCOVERY } };
    const nsMatch = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
    if (nsMatch?.[1])
      return {
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: decodeURIComponent(nsMatch[1]) }, status: { phase: 'Active' } },
      };
    if (path === '/api/v1/nodes') {
      const items = [...this.nodes.values()].map((n) => ({ apiVersion: 'v1', kind: 'Node', ...clone(n) }));
      return { body: this.list('NodeList', filterBy(items, query.get('fieldSelector'))) };
    }
    const m = /^\/api\/v1\/(?:namespaces\/([^/]+)\/)?(pods|events|secrets|serviceaccounts)(?:\/([^/]+))?$/.exec(path);
    if (!m?.[2]) return null;
    const ns = m[1] === undefined ? null : decodeURIComponent(m[1]);
    const plural = m[2];
    if (m[3] !== undefined) {
      const name = decodeURIComponent(m[3]);
      const obj = ns === null ? undefined : this.objects.get(`${plural}/${ns}/${name}`);
      return obj ? { body: clone(obj) } : { status: 404, message: `${plural} "${name}" not found` };
    }
    const items: Record<string, Json>[] = [];
    for (const [key, obj] of this.objects) {
      const [p, n] = key.split('/');
      if (p === plural && (ns === null || n === ns)) items.push(clone(obj));
    }
    if (plural === 'events') {
      for (const e of this.events) {
        if (ns === null || (isObj(e.metadata) && e.metadata.namespace === ns)) items.push({ apiVersion: 'v1', kind: 'Event', ...clone(e) });
      }
    }
    const kind = Object.keys(PLURALS).find((k) => PLURALS[k] === plural) ?? 'Unknown';
    return { body: this.list(`${kind}List`, filterBy(items, query.get('fieldSelector'))) };
  }

  private list(kind: string, items: Json[]): object {
    return { kind, apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items };
  }
}

const PLURALS: Record<string, string> = { Pod: 'pods', Event: 'events', Secret: 'secrets', ServiceAccount: 'serviceaccounts' };

const DISCOVERY = [
  ['pods', 'Pod', true, ['po']],
  ['events', 'Event', true, ['ev']],
  ['secrets', 'Secret', true, []],
  ['serviceaccounts', 'ServiceAccount', true, ['sa']],
  ['nodes', 'Node', false, ['no']],
  ['namespaces', 'Namespace', false, ['ns']],
].map(([name, kind, namespaced, shortNames]) => ({
  name,
  singularName: String(kind).toLowerCase(),
  namespaced,
  kind,
  shortNames,
  verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
}));

/** fieldSelector `a.b=x,c!=y` over dotted paths, as the API server applies it. */
function filterBy(items: Record<string, Json>[], selector: string | null): Record<string, Json>[] {
  if (!selector) return items;
  const terms = selector.split(',').map((t) => {
    const neg = t.includes('!=');
    const [field, value] = t.split(neg ? '!=' : /==?/);
    return { path: (field ?? '').trim().split('.'), value: (value ?? '').trim(), neg };
  });
  return items.filter((item) =>
    terms.every((t) => {
      let v: Json = item;
      for (const k of t.path) v = isObj(v) ? v[k] : undefined;
      const eq = (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '') === t.value;
      return t.neg ? !eq : eq;
    }),
  );
}
