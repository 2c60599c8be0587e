/**
 * TLS stage: one handshake with SNI (not for IP hosts), verification off in
 * OpenSSL's hands and decided here, so the certificate details are recorded
 * even when verification fails. Problems are reported in the order Go's
 * crypto/x509 Certificate.Verify finds them (what containerd sees): the
 * leaf's validity period, then the host name, then the chain to a trusted
 * root.
 *
 * Given the TCP stage's connected `socket`, the handshake upgrades it (one
 * connection per probe) and, with `keep`, the verified TLS socket is
 * returned beside the outcome for the HTTP requests; that handshake skips
 * tls.connect's own identity check (tls-client.ts), which verify() does.
 * The chain is read once per leaf and trust store.
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { REASONS, type Reason } from '../../diagnosis/catalog.js';
import { stageDeadline } from '../../net/deadline.js';
import { errorCode, tlsReasonForCode } from '../../net/error-codes.js';
import { joinHostPort } from './tcp.js';
import type { SecureContextCache } from '../../node-config/trust.js';
import { secureContextFor, type ClientCert } from '../../net/tls-contexts.js';
import { connectOverSocket } from '../../net/tls-client.js';
import type { ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import type { TlsDetail } from '../../model/step-detail.js';
export type { TlsChainEntry, TlsDetail } from '../../model/step-detail.js';

export interface TlsInput {
  /** SNI and the name to verify; may be an IP literal (then no SNI). */
  host: string;
  /** Address to connect to (recorded in the detail). */
  address: string;
  port: number;
  /** A connected TCP socket to `address` to upgrade, instead of dialling a new one. */
  socket?: net.Socket;
}

export type TlsConnect = (o: tls.ConnectionOptions) => tls.TLSSocket;

export interface TlsOptions {
  /** Trusted CAs (PEM), usually loadTrust().ca. */
  ca: string[];
  /** Budget for TCP connect + handshake; capped by the probe deadline. */
  handshakeTimeoutMs: number;
  /** Record the certificate but accept any problem (insecure registries). */
  skipVerify?: boolean;
  connect?: TlsConnect;
  /** Where the SecureContext for `ca` is kept (the probe's caches); default: built for this handshake only. */
  secureContexts?: SecureContextCache;
  /** Certificate and key presented in the handshake (hosts.toml `client`). */
  clientCert?: ClientCert;
  /** On success, keep the TLS socket open and return it (the caller owns it then). */
  keep?: boolean;
}

/** The outcome, plus the verified TLS socket when `keep` was asked and the handshake passed. Never serialised. */
export type TlsOutcome = StageOutcome<TlsDetail> & { socket?: tls.TLSSocket };

interface Verdict {
  reason: Reason;
  message: string;
}

export const tlsStage = async function tlsStage(ctx: ProbeContext, input: TlsInput, opts: TlsOptions): Promise<TlsOutcome> {
  const start = ctx.clock.now();
  const host = joinHostPort(input.host, input.port);
  const name = unbracket(input.host);
  const hs = await handshake(ctx, input, name, opts);
  const seconds = (ctx.clock.now() - start) / 1000;
  if (hs.kind === 'timeout') {
    return fail('tls_timeout', REASONS.tls_timeout.message, { address: input.address, error: 'ETIMEDOUT' });
  }
  if (hs.kind === 'error') {
    const reason = tlsReasonForCode(hs.code);
    return fail(reason, `${REASONS[reason].message}: ${hs.code}`, { address: input.address, error: hs.code });
  }
  let detail: TlsDetail;
  let verdict: Verdict | undefined;
  try {
    detail = describe(input.address, hs);
    verdict = opts.skipVerify ? undefined : verify(name, hs, ctx.wallNow());
  } catch {
    // A certificate Node cannot read (dates, names): a handshake problem, never a throw.
    const code = 'ERR_TLS_CERT_PARSE';
    return fail('tls_handshake', `${REASONS.tls_handshake.message}: ${code}`, { address: input.address, error: code });
  }
  if (verdict) {
    hs.socket?.destroy();
    return fail(verdict.reason, verdict.message, detail);
  }
  const out: TlsOutcome = { ok: true, host, seconds, detail };
  if (hs.socket) out.socket = hs.socket;
  return out;

  function fail(reason: Reason, message: string, detail: TlsDetail): StageOutcome<TlsDetail> {
    ctx.log.debug({ stage: 'tls', host, reason, error: detail.error ?? detail.authorizationError }, 'tls failed');
    return { ok: false, reason, message, host, seconds, detail };
  }
} satisfies StageFn<TlsInput, TlsOptions, TlsDetail>;

interface Handshaken {
  kind: 'ok';
  protocol: string | null;
  cipher: string;
  chain: X509Certificate[];
  authorizationError: string | undefined;
  /** The open socket, when kept. */
  socket?: tls.TLSSocket;
}

type HandshakeResult = Handshaken | { kind: 'timeout' } | { kind: 'error'; code: string };

function handshake(ctx: ProbeContext, input: TlsInput, name: string, opts: TlsOptions): Promise<HandshakeResult> {
  const connect = opts.connect ?? tls.connect;
  return new Promise((resolve) => {
    let socket: tls.TLSSocket | undefined;
    let done = false;
    const finish = (r: HandshakeResult): void => {
      if (done) return;
      done = true;
      deadline.dispose();
      if (socket) {
        socket.removeListener('secureConnect', onSecure);
        socket.removeListener('error', onError);
        socket.on('error', ignore);
        if (r.kind === 'ok' && opts.keep === true && !socket.destroyed) {
          resolve({ ...r, socket });
          return;
        }
        socket.destroy();
      }
      input.socket?.destroy();
      resolve(r);
    };
    const onError = (err: unknown): void =>
      finish(deadline.timedOut() ? { kind: 'timeout' } : { kind: 'error', code: errorCode(err) ?? 'EUNKNOWN' });
    const onSecure = (): void => {
      if (!socket) return;
      try {
        const cipher = socket.getCipher();
        finish({
          kind: 'ok',
          protocol: socket.getProtocol(),
          cipher: cipher.standardName || cipher.name,
          chain: peerChain(socket, context),
          authorizationError: codeOf(socket.authorizationError),
        });
      } catch (err) {
        finish({ kind: 'error', code: errorCode(err) ?? 'ERR_TLS_CERT_PARSE' });
      }
    };

    const deadline = stageDeadline(ctx, opts.handshakeTimeoutMs, () => finish({ kind: 'timeout' }));
    if (ctx.signal.aborted) {
      finish({ kind: 'timeout' }); // the probe was over before the handshake (finish closes the socket)
      return;
    }
    let context: tls.SecureContext | undefined;
    try {
      context = secureContextFor(opts.secureContexts, opts.ca, opts.clientCert);
      socket =
        input.socket && !opts.connect
          ? connectOverSocket({ socket: input.socket, secureContext: context, ...(net.isIP(name) ? {} : { servername: name }) })
          : connect({
              ...(input.socket ? { socket: input.socket } : { host: input.address, port: input.port }),
              ...(net.isIP(name) ? {} : { servername: name }),
              secureContext: context,
              rejectUnauthorized: false,
              checkServerIdentity: () => undefined, // decided in verify(), in Go's order
            });
    } catch (err) {
      finish({ kind: 'error', code: errorCode(err) ?? 'EINVAL' });
      return;
    }
    socket.once('secureConnect', onSecure);
    socket.once('error', onError);
  });
}

/**
 * What getPeerCertificate(true) really returns, wider than @types/node says: null once the
 * socket is destroyed, {} when the peer sent no certificate, no issuerCertificate past the end.
 */
type PeerCertificate = Partial<Pick<tls.DetailedPeerCertificate, 'raw' | 'fingerprint256'>> & { issuerCertificate?: PeerCertificate };
const peerCertificate = (socket: tls.TLSSocket): PeerCertificate | null => socket.getPeerCertificate(true);

/** Chains already read, by trust store (SecureContext) and leaf fingerprint: a few per context. */
const MAX_CHAINS = 32;
const chains = new WeakMap<tls.SecureContext, Map<string, X509Certificate[]>>();

/**
 * Leaf first, following issuerCertificate links (Node completes the chain
 * from the trust store). Reading the chain (getPeerCertificate(true) and a
 * DER parse per certificate) is the handshake's most expensive JS: done
 * once per leaf and trust store; later handshakes with the same leaf take
 * the parsed chain by the leaf's fingerprint (about a tenth of the cost).
 */
function peerChain(socket: tls.TLSSocket, context: tls.SecureContext | undefined): X509Certificate[] {
  // The leaf alone (not its chain; and not getPeerX509Certificate, after which Node 20's getPeerCertificate(true) has no raw).
  const fingerprint = (socket.getPeerCertificate(false) as PeerCertificate | null)?.fingerprint256;
  const known = context && fingerprint ? chains.get(context)?.get(fingerprint) : undefined;
  if (known) return known;
  const out: X509Certificate[] = [];
  const seen = new Set<PeerCertificate>();
  let cert = peerCertificate(socket);
  while (cert?.raw && !seen.has(cert)) {
    seen.add(cert);
    out.push(new X509Certificate(cert.raw));
    const next = cert.issuerCertificate;
    if (!next || next === cert || next.fingerprint256 === cert.fingerprint256) break;
    cert = next;
  }
  if (context && fingerprint && out.length > 0) {
    let byLeaf = chains.get(context);
    if (!byLeaf) chains.set(context, (byLeaf = new Map<string, X509Certificate[]>()));
    byLeaf.set(fingerprint, out);
    if (byLeaf.size > MAX_CHAINS) byLeaf.delete(byLeaf.keys().next().value as string);
  }
  return out;
}

function verify(name: string, hs: Handshaken, nowMs: number): Verdict | undefined {
  const leaf = hs.chain[0];
  if (!leaf) return { reason: 'tls_handshake', message: `${REASONS.tls_handshake.message}: no certificate` };
  // 1. Leaf validity period.
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  if (nowMs > notAfter || nowMs < notBefore) {
    const tail = nowMs > notAfter ? `is after ${rfc3339(notAfter)}` : `is before ${rfc3339(notBefore)}`;
    return { reason: 'tls_expired', message: `${REASONS.tls_expired.message}: current time ${rfc3339(nowMs)} ${tail}` };
  }
  // 2. Host name, against SANs only (Go ignores the legacy Common Name).
  const sans = parseSubjectAltName(leaf.subjectAltName);
  if (
    net.isIP(name) ? leaf.checkIP(name) === undefined : leaf.checkHost(name, { subject: 'never', partialWildcards: false }) === undefined
  ) {
    return { reason: 'tls_hostname_mismatch', message: hostnameMessage(name, sans) };
  }
  // 3. Chain to a trusted root (and anything else OpenSSL objected to).
  if (hs.authorizationError) {
    const reason = tlsReasonForCode(hs.authorizationError);
    const message = reason === 'tls_handshake' ? `${REASONS.tls_handshake.message}: ${hs.authorizationError}` : REASONS[reason].message;
    return { reason, message };
  }
  return undefined;
}

/** Go's HostnameError wording. */
function hostnameMessage(name: string, sans: San[]): string {
  if (net.isIP(name)) {
    const ips = sans.filter((s) => s.type === 'IP').map((s) => s.value);
    if (ips.length === 0) return `x509: cannot validate certificate for ${name} because it doesn't contain any IP SANs`;
    return `x509: certificate is valid for ${ips.join(', ')}, not ${name}`;
  }
  const dns = sans.filter((s) => s.type === 'DNS').map((s) => s.value);
  if (dns.length === 0) return `x509: certificate is not valid for any names, but wanted to match ${name}`;
  return `x509: certificate is valid for ${dns.join(', ')}, not ${name}`;
}

function describe(address: string, hs: Handshaken): TlsDetail {
  const detail: TlsDetail = { address, cipher: hs.cipher };
  if (hs.protocol) detail.protocol = hs.protocol;
  if (hs.authorizationError) detail.authorizationError = hs.authorizationError;
  const leaf = hs.chain[0];
  if (!leaf) return detail;
  detail.subject = dn(leaf.subject);
  detail.issuer = dn(leaf.issuer);
  detail.sans = parseSubjectAltName(leaf.subjectAltName).map((s) => s.value);
  detail.notBefore = rfc3339(Date.parse(leaf.validFrom));
  detail.notAfter = rfc3339(Date.parse(leaf.validTo));
  const earliest = Math.min(...hs.chain.map((c) => Date.parse(c.validTo)));
  detail.earliestExpiry = rfc3339(earliest);
  detail.earliestExpirySeconds = Math.floor(earliest / 1000);
  detail.chain = hs.chain.map((c) => ({ subject: dn(c.subject), issuer: dn(c.issuer), notAfter: rfc3339(Date.parse(c.validTo)) }));
  return detail;
}

export interface San {
  type: string;
  value: string;
}

/**
 * Parse Node's subjectAltName string ("DNS:a.test, IP Address:127.0.0.1";
 * values with special characters are JSON-quoted). Pure.
 */
export function parseSubjectAltName(text: string | undefined): San[] {
  const out: San[] = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const rawType = text.slice(i, colon).trim();
    let value: string;
    let j = colon + 1;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(j, k + 1)) as string;
      j = k + 1;
    } else {
      const comma = text.indexOf(', ', j);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(j, end);
      j = end;
    }
    out.push({ type: rawType === 'IP Address' ? 'IP' : rawType, value });
    i = text.startsWith(', ', j) ? j + 2 : j + 1;
  }
  return out;
}

/** X509Certificate's newline-separated DN as "CN=…, O=…". */
function dn(text: string): string {
  return text.split('\n').filter(Boolean).join(', ');
}

/** RFC3339 UTC without fractional seconds (throws RangeError on an unparsable date). */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function codeOf(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  // Node sets authorizationError to the verify error's code, a string (@types/node says Error); anything else still counts as an error.
  return errorCode(v) ?? (v instanceof Error ? String(v) : 'UNKNOWN_AUTHORIZATION_ERROR');
}

function ignore(): void {}
