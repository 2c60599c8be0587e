/**
 * Lab token service (Docker registry token auth, as registry 2.8 accepts it).
 * Run inside the services namespace:
 *   node --import tsx test/lab/support/token-server.ts CONFIG.json
 *
 * GET /token?service=&scope=…  with Basic auth or anonymous;
 * POST /token with a form body (grant_type=password, username, password, …).
 * Wrong password → 401. Pull is granted only to configured users on matching
 * repositories; everybody else gets a token without access (the registry then
 * answers insufficient_scope). A mode file switches fault behaviour per request:
 * `normal` | `hang` (never answers) | `error` (500) | `garbage` (200, not JSON).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Socket } from 'node:net';
import { BlockList } from 'node:net';
import { parseScopes, signJwt, type HeaderMode } from './jwt.js';

export interface TokenServerConfig {
  host: string;
  port: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  signingCertFile: string;
  signingKeyFile: string;
  issuer: string;
  service: string;
  headerMode: HeaderMode;
  modeFile: string;
  /** user → password and repository globs ("lab/*") the user may pull. */
  users: Record<string, { password: string; pull: string[] }>;
}

export type TokenMode = 'normal' | 'hang' | 'error' | 'garbage';

function globMatch(glob: string, name: string): boolean {
  const re = new RegExp(
    '^' +
      glob
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  );
  return re.test(name);
}

/**
 * The mode file holds `MODE [CIDR...]`: the fault applies to clients in those
 * subnets (all clients when none is given), so the other subnet stays a control.
 */
function readMode(file: string, client: string | undefined): TokenMode {
  try {
    const [m, ...cidrs] = readFileSync(file, 'utf8').trim().split(/\s+/);
    const mode: TokenMode = m === 'hang' || m === 'error' || m === 'garbage' ? m : 'normal';
    if (mode === 'normal' || cidrs.length === 0) return mode;
    const list = new BlockList();
    for (const c of cidrs) {
      const [net, bits] = c.split('/');
      if (net && bits) list.addSubnet(net, Number(bits), 'ipv4');
    }
    const addr = (client ?? '').replace(/^::ffff:/, '');
    return addr && list.check(addr, 'ipv4') ? mode : 'normal';
  } catch {
    return 'normal';
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function startTokenServer(cfg: TokenServerConfig): { close(): void } {
  const signingKey = readFileSync(cfg.signingKeyFile, 'utf8');
  const signingCert = readFileSync(cfg.signingCertFile, 'utf8');
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', `https://${req.headers.host ?? 'auth'}`);
    if (url.pathname !== '/token') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const mode = readMode(cfg.modeFile, req.socket.remoteAddress);
    if (mode === 'hang') return; // never answer
    if (mode === 'error') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('token service broken (lab fault)\n');
      return;
    }
    if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not a token</html>\n');
      return;
    }

    let user: string | undefined;
    let password: string | undefined;
    let scopes = url.searchParams.getAll('scope');
    let service = url.searchParams.get('service') ?? cfg.service;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      if (form.get('grant_type') !== 'password') {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"unsupported_grant_type"}');
        return;
      }
      user = form.get('username') ?? undefined;
      password = form.get('password') ?? undefined;
      scopes = form.getAll('scope');
      service = form.get('service') ?? service;
    } else if (req.method === 'GET') {
      const h = req.headers.authorization ?? '';
      if (/^basic /i.test(h)) {
        const dec = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
        const i = dec.indexOf(':');
        user = i < 0 ? dec : dec.slice(0, i);
        password = i < 0 ? '' : dec.slice(i + 1);
      }
    } else {
      res.writeHead(405).end();
      return;
    }

    let allowed: string[] = [];
    if (user !== undefined) {
      const u = cfg.users[user];
      if (!u || u.password !== password) {
        console.log(`${req.method} /token user=${user} → 401`);
        res
          .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="lab token service"' })
          .end('{"details":"incorrect username or password"}');
        return;
      }
      allowed = u.pull;
    }
    const access = parseScopes(scopes)
      .filter((s) => s.type === 'repository' && allowed.some((g) => globMatch(g, s.name)))
      .map((s) => ({ ...s, actions: s.actions.filter((a) => a === 'pull') }))
      .filter((s) => s.actions.length > 0);
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = 300;
    const token = signJwt(
      {
        iss: cfg.issuer,
        sub: user ?? '',
        aud: service === cfg.service ? service : cfg.service,
        exp: now + expiresIn,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      },
      signingKey,
      signingCert,
      cfg.headerMode,
    );
    console.log(`${req.method} /token user=${user ?? '(anonymous)'} scopes=${scopes.length} granted=${access.length} → 200`);
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date(now * 1000).toISOString(),
      }),
    );
  };

  const server = createServer(
    {
      cert: readFileSync(cfg.tlsCertFile),
      key: readFileSync(cfg.tlsKeyFile),
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        console.error('token server error', err instanceof Error ? err.message : String(err));
        if (!res.headersSent) res.writeHead(500).end();
      });
    },
  );
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(cfg.port, cfg.host, () => console.log(`token server listening on ${cfg.host}:${cfg.port}`));
  return {
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: token-server.ts CONFIG.json');
    process.exit(2);
  }
  const srv = startTokenServer(JSON.parse(readFileSync(file, 'utf8')) as TokenServerConfig);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      srv.close();
      process.exit(0);
    });
  }
}
