/**
 * A scriptable loopback registry + token service for unit tests, emulating
 * distribution (registry 2.8) closely enough for the http/auth/manifest
 * stages: anonymous, Basic (user table) or Bearer auth with a token endpoint
 * at /token on the same server (tokens are opaque random strings here; the
 * real JWT token server is the lab's job), manifests addressed by tag or
 * digest (digest = sha256 of the bytes), Accept honoured like 2.8 (an OCI
 * index or manifest without its Accept → 404 MANIFEST_UNKNOWN), an unknown
 * repository answering MANIFEST_UNKNOWN on manifests and NAME_UNKNOWN on
 * tags/list, scripted faults, and per method+path request counts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { within } from './within.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export interface FakeRegistryOptions {
  /** Serve HTTPS with this certificate; plain HTTP when absent. */
  tls?: { cert: string; key: string };
  auth?: 'none' | 'basic' | 'bearer';
  /** username → password, for basic and bearer. */
  users?: Record<string, string>;
  /** Bearer: host name (own port appended) or host:port written in the realm (default 127.0.0.1). */
  realmHost?: string;
  /** Bearer: the whole realm URL, overriding realmHost. */
  realm?: string;
  service?: string;
  /** Bearer: expires_in in token answers (null: omitted). Default 300. */
  tokenExpiresIn?: number | null;
  /** Bearer: anonymous token requests are refused with 401. */
  anonymousTokenRefused?: boolean;
  /** Extra headers on every manifest answer (e.g. ratelimit-*). */
  manifestHeaders?: Record<string, string>;
  /** Bearer: the registry refuses every token its token service issued (401 error="invalid_token"), as when the two disagree on the signing key. */
  rejectIssuedTokens?: boolean;
  /** Bearer: the token answer, replacing the default JSON body (e.g. a token with a line break). */
  tokenBody?: (token: string) => string;
  /** Bearer: identity (refresh) token → user, for OAuth POST grant_type=refresh_token. */
  refreshTokens?: Record<string, string>;
}

export interface Fault {
  method?: string;
  /** Exact pathname or a pattern. */
  path: string | RegExp;
  /** How many requests it applies to (default: all). */
  times?: number;
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (the socket stays open until close()). */
  hang?: boolean;
  /** Replace "{authorization}" in body and header values with the request's Authorization (a registry that echoes it). */
  echoAuthorization?: boolean;
}

interface Repo {
  /** undefined: any authenticated user may pull. */
  users?: string[];
  public: boolean;
  tags: Map<string, string>;
  manifests: Map<string, { mediaType: string; body: Buffer }>;
}

interface Grant {
  user?: string;
  repos: Set<string>;
}

const json = (o: unknown): string => JSON.stringify(o);
const errBody = (code: string, message: string): string => json({ errors: [{ code, message, detail: null }] });

export function sha256(body: Buffer | string): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

export class FakeRegistry {
  readonly server: Server;
  readonly requests: { method: string; path: string; authorization?: string }[] = [];
  /** Every OAuth POST to /token: its content type and form fields. */
  readonly tokenPosts: { contentType: string; form: Record<string, string> }[] = [];
  readonly issuedTokens: string[] = [];
  readonly #opts: FakeRegistryOptions;
  readonly #repos = new Map<string, Repo>();
  readonly #grants = new Map<string, Grant>();
  readonly #faults: Fault[] = [];
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(opts: FakeRegistryOptions) {
    this.#opts = opts;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.#handle(req, res);
    this.server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler);
    const track = (s: Socket): void => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    };
    this.server.on(opts.tls ? 'secureConnection' : 'connection', track);
  }

  static async start(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const f = new FakeRegistry(opts);
    await within(new Promise<void>((resolve) => f.server.listen(0, '127.0.0.1', resolve)), 5000, 'the server to listen');
    f.#port = (f.server.address() as AddressInfo).port;
    return f;
  }

  get port(): number {
    return this.#port;
  }

  get scheme(): 'https' | 'http' {
    return this.#opts.tls ? 'https' : 'http';
  }

  get realm(): string {
    const host = this.#opts.realmHost ?? '127.0.0.1';
    return this.#opts.realm ?? `${this.scheme}://${host.includes(':') ? host : `${host}:${this.#port}`}/token`;
  }

  addRepo(name: string, o: { public?: boolean; users?: string[] } = {}): void {
    const repo: Repo = { public: o.public ?? false, tags: new Map(), manifests: new Map() };
    if (o.users) repo.users = o.users;
    this.#repos.set(name, repo);
  }

  /** Store a manifest (object → JSON bytes); returns its digest. Creates the repo if needed. */
  putManifest(repoName: string, content: object | string, mediaType: string, tag?: string): string {
    if (!this.#repos.has(repoName)) this.addRepo(repoName);
    const repo = this.#repos.get(repoName) as Repo;
    const body = Buffer.from(typeof content === 'string' ? content : json(content));
    const digest = sha256(body);
    repo.manifests.set(digest, { mediaType, body });
    if (tag) repo.tags.set(tag, digest);
    return digest;
  }

  fault(f: Fault): void {
    this.#faults.push({ ...f });
  }

  clearFaults(): void {
    this.#faults.length = 0;
  }

  count(method: string, path: string | RegExp): number {
    return this.requests.filter((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path))).length;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.server.closeAllConnections();
    await within(new Promise<void>((resolve) => this.server.close(() => resolve())), 5000, 'the server to close');
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const entry: { method: string; path: string; authorization?: string } = { method, path: url.pathname };
    if (req.headers.authorization) entry.authorization = req.headers.authorization;
    this.requests.push(entry);
    const posted: Buffer[] = [];
    if (method === 'POST') req.on('data', (d: Buffer) => posted.push(d));
    req.resume();
    const fault = this.#faults.find(
      (f) =>
        (!f.method || f.method === method) &&
        (typeof f.path === 'string' ? f.path === url.pathname : f.path.test(url.pathname)) &&
        (f.times ?? 1) > 0,
    );
    if (fault) {
      if (fault.times !== undefined) fault.times--;
      if (fault.hang) return;
      const fill = (v: string): string => (fault.echoAuthorization ? v.split('{authorization}').join(req.headers.authorization ?? '') : v);
      const headers = Object.fromEntries(Object.entries(fault.headers ?? {}).map(([k, v]) => [k, fill(v)]));
      res.writeHead(fault.status ?? 500, headers);
      res.end(method === 'HEAD' ? undefined : fill(fault.body ?? ''));
      return;
    }
    if (url.pathname === '/token' && method === 'POST') {
      req.on('end', () => {
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(posted).toString('utf8')));
        this.tokenPosts.push({ contentType: req.headers['content-type'] ?? '', form });
        this.#token(req, url, res, form);
      });
      return;
    }
    if (url.pathname === '/token') {
      this.#token(req, url, res);
      return;
    }
    if (!url.pathname.startsWith('/v2/')) {
      this.#send(res, method, 404, {}, '404 page not found');
      return;
    }
    this.#registry(req, url, res, method);
  }

  #send(res: ServerResponse, method: string, status: number, headers: Record<string, string>, body: string | Buffer): void {
    res.writeHead(status, {
      'docker-distribution-api-version': 'registry/2.0',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(method === 'HEAD' ? undefined : body);
  }

  #basicUser(req: IncomingMessage): string | null | undefined {
    const h = req.headers.authorization;
    if (!h?.startsWith('Basic ')) return undefined;
    const [user, ...rest] = Buffer.from(h.slice(6), 'base64').toString('utf8').split(':');
    const users = this.#opts.users ?? {};
    return user !== undefined && Object.hasOwn(users, user) && users[user] === rest.join(':') ? user : null;
  }

  /** OAuth POST form: grant_type=password (username/password) or refresh_token (refreshTokens table). */
  #formUser(form: Record<string, string>): string | null {
    const users = this.#opts.users ?? {};
    if (form.grant_type === 'password') {
      const u = form.username ?? '';
      return Object.hasOwn(users, u) && users[u] === form.password ? u : null;
    }
    if (form.grant_type === 'refresh_token') return this.#opts.refreshTokens?.[form.refresh_token ?? ''] ?? null;
    return null;
  }

  #token(req: IncomingMessage, url: URL, res: ServerResponse, form?: Record<string, string>): void {
    const user = form ? this.#formUser(form) : this.#basicUser(req);
    if (user === null) {
      this.#send(res, 'GET', 401, { 'content-type': 'application/json' }, errBody('UNAUTHORIZED', 'invalid credentials'));
      return;
    }
    if (user === undefined && this.#opts.anonymousTokenRefused) {
      this.#send(res, 'GET', 401, { 'content-type': 'application/json' }, errBody('UNAUTHORIZED', 'authentication required'));
      return;
    }
    const grant: Grant = { repos: new Set() };
    if (user) grant.user = user;
    const scopes = form ? (form.scope ?? '').split(' ').filter((x) => x !== '') : url.searchParams.getAll('scope');
    for (const scope of scopes) {
      const m = /^repository:(.+):([a-z,*]+)$/.exec(scope);
      if (!m?.[1] || !m[2]?.split(',').includes('pull')) continue;
      const repo = this.#repos.get(m[1]);
      const allowed = repo ? repo.public || (user !== undefined && (!repo.users || repo.users.includes(user))) : user !== undefined; // unknown repo: authenticated users may look (→ 404)
      if (allowed) grant.repos.add(m[1]);
    }
    const token = randomBytes(16).toString('hex');
    this.#grants.set(token, grant);
    this.issuedTokens.push(token);
    const body: Record<string, unknown> = { token, access_token: token, issued_at: new Date().toISOString() };
    if (this.#opts.tokenExpiresIn !== null) body.expires_in = this.#opts.tokenExpiresIn ?? 300;
    this.#send(res, 'GET', 200, { 'content-type': 'application/json' }, this.#opts.tokenBody ? this.#opts.tokenBody(token) : json(body));
  }

  #challenge(scope?: string, error?: string): Record<string, string> {
    if (this.#opts.auth === 'basic') return { 'www-authenticate': 'Basic realm="fake-registry"' };
    let v = `Bearer realm="${this.realm}",service="${this.#opts.service ?? 'fake-registry'}"`;
    if (scope) v += `,scope="${scope}"`;
    if (error) v += `,error="${error}"`;
    return { 'www-authenticate': v };
  }

  /** true: allowed; false: the refusal was already sent. */
  #authorize(req: IncomingMessage, res: ServerResponse, method: string, repoName: string | undefined): boolean {
    const auth = this.#opts.auth ?? 'none';
    if (auth === 'none') return true;
    const scope = repoName ? `repository:${repoName}:pull` : undefined;
    const unauthorized = (error?: string): boolean => {
      this.#send(
        res,
        method,
        401,
        { 'content-type': 'application/json', ...this.#challenge(scope, error) },
        errBody('UNAUTHORIZED', 'authentication required'),
      );
      return false;
    };
    if (auth === 'basic') {
      const user = this.#basicUser(req);
      if (!user) return unauthorized();
      const repo = repoName ? this.#repos.get(repoName) : undefined;
      if (repo?.users && !repo.users.includes(user)) {
        this.#send(
          res,
          method,
          403,
          { 'content-type': 'application/json' },
          errBody('DENIED', 'requested access to the resource is denied'),
        );
        return false;
      }
      return true;
    }
    const h = req.headers.authorization;
    const grant = h?.startsWith('Bearer ') ? this.#grants.get(h.slice(7)) : undefined;
    if (!grant || this.#opts.rejectIssuedTokens) return unauthorized(h ? 'invalid_token' : undefined);
    if (repoName && !grant.repos.has(repoName)) return unauthorized('insufficient_scope');
    return true;
  }

  #registry(req: IncomingMessage, url: URL, res: ServerResponse, method: string): void {
    const p = url.pathname;
    if (p === '/v2/' || p === '/v2') {
      if (!this.#authorize(req, res, method, undefined)) return;
      this.#send(res, method, 200, { 'content-type': 'application/json' }, '{}');
      return;
    }
    const mm = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(p);
    const tm = /^\/v2\/(.+)\/tags\/list$/.exec(p);
    const name = mm?.[1] ?? tm?.[1];
    if (!name) {
      this.#send(res, method, 404, { 'content-type': 'application/json' }, errBody('UNSUPPORTED', 'not supported'));
      return;
    }
    if (!this.#authorize(req, res, method, name)) return;
    const repo = this.#repos.get(name);
    if (tm) {
      if (!repo) {
        this.#send(
          res,
          method,
          404,
          { 'content-type': 'application/json' },
          errBody('NAME_UNKNOWN', 'repository name not known to registry'),
        );
        return;
      }
      this.#send(res, method, 200, { 'content-type': 'application/json' }, json({ name, tags: [...repo.tags.keys()].sort() }));
      return;
    }
    const ref = mm?.[2] as string;
    const notFound = (msg: string): void =>
      this.#send(res, method, 404, { 'content-type': 'application/json' }, errBody('MANIFEST_UNKNOWN', msg));
    // registry 2.8: an unknown repository is MANIFEST_UNKNOWN here too (lab-notes gotcha 1)
    const digest = ref.includes(':') ? ref : repo?.tags.get(ref);
    const m = digest ? repo?.manifests.get(digest) : undefined;
    if (!m || !digest) {
      notFound('manifest unknown');
      return;
    }
    const accept = (req.headers.accept ?? '').split(',').map((s) => s.split(';')[0]?.trim());
    if (m.mediaType === OCI_INDEX && !accept.includes(OCI_INDEX)) {
      notFound('OCI index found, but accept header does not support OCI indexes');
      return;
    }
    if (m.mediaType === OCI_MANIFEST && !accept.includes(OCI_MANIFEST)) {
      notFound('OCI manifest found, but accept header does not support OCI manifests');
      return;
    }
    this.#send(res, method, 200, { 'content-type': m.mediaType, 'docker-content-digest': digest, ...this.#opts.manifestHeaders }, m.body);
  }
}
