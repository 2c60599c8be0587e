/**
 * Classify a pasted kubelet / containerd pull error into the catalog's
 * reason, cause and fix. The strings come from containerd's resolver,
 * authorizer and fetcher, Go's net / net/http / crypto/x509 errors and the
 * kubelet's image manager (reference/pull-path-facts.md §5). The gRPC code is
 * ignored: containerd returns DeadlineExceeded for any i/o timeout and
 * Unknown for nearly everything else, so only the text says what failed.
 *
 * PATTERNS is ordered most specific first. Each line of the paste (each
 * string of a JSON paste) is matched on its own; the line whose pattern comes
 * first in PATTERNS decides. Messages and hints come from catalog.ts; there
 * is no second table here.
 *
 * Cost: linear in the input, on any input. A pattern is a list of pieces
 * that must occur in order within one line; each piece is searched once,
 * from where the previous one ended, and no piece has two unbounded
 * quantifiers that can split the same text two ways (no `.*`, `.+`, `.*?`).
 * That is why "A, then later B" is two pieces and never one regex `A.*B`,
 * which backtracks over every start of A (seconds on 100 KB of "lookup …").
 */
import { REASONS, causeOf, stageOf, type Cause, type Reason, type Stage } from './catalog.js';
import { candidateLines, excerpt } from './explain-input.js';

export interface Explanation {
  stage: Stage | null;
  reason: Reason | null;
  cause: Cause | null;
  message: string | null;
  hint: string | null;
}

/** An explanation plus the user's own line that decided it. */
export interface TextExplanation extends Explanation {
  /** That line, trimmed to a readable length, credentials masked, control characters escaped; null when nothing matched. */
  excerpt: string | null;
}

type Groups = ReadonlyArray<string | undefined>;

export interface Pattern {
  /** Pieces that must match in this order within one line (each compiled with flags `gi`). */
  readonly seq: readonly RegExp[];
  /** A reason, or a function of the pieces' capture groups (patterns that carry an HTTP status). */
  readonly reason: Reason | ((groups: Groups) => Reason);
}

/**
 * A token-server answer. A 401/403 to an anonymous token request means the
 * registry wants credentials (none were offered); to a request carrying
 * credentials (the oauth POST, or its GET fallback) it means they were
 * refused. 429 is rate limiting; anything else is the token service failing.
 */
function tokenStatus(g: Groups): Reason {
  const status = Number(g[1]);
  if (status === 429) return 'rate_limited';
  if (status === 401 || status === 403) return g[0]?.toLowerCase() === 'anonymous' ? 'auth_required' : 'auth_rejected';
  return 'token_error';
}

const p = (reason: Pattern['reason'], ...seq: RegExp[]): Pattern => ({
  reason,
  seq: seq.map((re) => new RegExp(re.source, 'gi')),
});

/**
 * Go's http.Transport turns a refused CONNECT into the bare status text after
 * the URL (the proxy's own words; "unknown status code" when it gave none):
 * the usual HTTP reason phrases, and tinyproxy's (Access violation for a
 * ConnectPort/ACL refusal, Unauthorized for wrong credentials, Unable to
 * connect when it cannot reach the registry, Filtered, Access denied).
 */
const CONNECT_REFUSED = [
  'Bad Request',
  'Unauthorized',
  'Forbidden',
  'Not Found',
  'Method Not Allowed',
  'Proxy Authentication Required',
  'Request Time-?out',
  'Too Many Requests',
  'Internal Server Error',
  'Not Implemented',
  'Bad Gateway',
  'Service Unavailable',
  'Gateway Time-?out',
  'Network Authentication Required',
  'Access violation',
  'Access denied',
  'Filtered',
  'Internal error',
  'Unable to connect',
  'unknown status code',
].join('|');

export const PATTERNS: readonly Pattern[] = [
  // --- the image string itself (kubelet: InvalidImageName, "couldn't parse image name")
  p('invalid_reference', /invalid reference format|invalid repository name \(|\bInvalidImageName\b/),
  // --- the pod's pull policy, not the registry
  p('never_pull', /\bErrImageNeverPull\b|is not present with pull policy of Never/),

  // --- the container runtime, not the registry
  p('runtime_unavailable', /dial unix [^\s:]*\.sock\b|connection error: desc = "transport: Error while dialing/),
  // the node's disk or layer unpacking: whatever the registry did, the node failed
  p('runtime_pull_failed', /\bno space left on device\b|failed to extract layer/),

  // --- an HTTP proxy in front of everything below
  p('proxy_error', /\bproxyconnect\b|\b407 Proxy Authentication Required\b/),
  p('proxy_error', new RegExp(`failed to do request: [a-z]+ (?:"[^"\\s]*"|\\S+): (?:${CONNECT_REFUSED})(?:: unknown)?\\s*$`)),

  // --- rate limiting (also on the token server)
  p('rate_limited', /\btoomanyrequests\b|\b429 Too Many Requests\b/),

  // --- token service answered with a status; network failures reaching it
  //     fall through to the DNS/TCP/TLS patterns (design: reported with that stage)
  p(tokenStatus, /failed to fetch (anonymous|oauth) token:/, /unexpected status/, /: (\d{3})\b/),
  // a 200 the token service filled with something that is not a token (HTML, garbage): containerd 1.6 "unable to decode token response"
  p('token_error', /failed to fetch (?:anonymous|oauth) token: /, /\b(?:unable|failed) to decode token response\b/),

  // --- TLS (before TCP/DNS: "tls: failed to verify certificate: x509: …")
  p('tls_unknown_ca', /certificate signed by unknown authority/),
  p('tls_expired', /x509: certificate has expired or is not yet valid/),
  p('tls_hostname_mismatch', /x509: certificate is valid for ./, /, not /),
  p(
    'tls_hostname_mismatch',
    /x509: cannot validate certificate for |x509: certificate is not valid for any names|x509: certificate relies on legacy Common Name field/,
  ),
  p('tls_timeout', /TLS handshake timeout/),
  p(
    'tls_handshake',
    /tls: handshake failure|first record does not look like a TLS handshake|server gave HTTP response to HTTPS client|remote error: tls: |tls: protocol version not supported|tls: no supported versions/,
  ),

  // --- DNS: Go's DNSError is "lookup <name>[ on <server>]: <err>"
  p('dns_nxdomain', /\bno such host\b/),
  p('dns_servfail', /\bserver misbehaving\b/),
  // the nameserver itself unreachable (ICMP port/host unreachable on the UDP query)
  p(
    'dns_unreachable',
    /\blookup \S/,
    /: (?:read|dial|write) (?:udp|tcp)\b/,
    /\b(?:connection refused|no route to host|network is unreachable)/,
  ),
  p('dns_timeout', /\blookup \S/, /\bi\/o timeout\b/),
  // cgo/glibc resolver's EAI_AGAIN: no answer from any nameserver (lab-notes gotcha 4)
  p('dns_timeout', /\blookup \S/, /: (?:Try again|Temporary failure in name resolution)/),

  // --- TCP
  p('tcp_refused', /\bconnection refused\b/),
  p('tcp_unreachable', /\bno route to host\b|\bnetwork is unreachable\b/),
  p('tcp_timeout', /\bdial tcp \S+: (?:i\/o timeout|connect: connection timed out)/),
  // connected, then reset in the middle of the exchange: the endpoint (or a
  // middlebox) accepted the connection and never answered (as the probe's
  // own transport classifies ECONNRESET after connect)
  p('http_timeout', /\bconnection reset by peer\b/),

  // --- auth. containerd says "pull access denied, repository does not exist or
  //     may require authorization" both for a Basic challenge with no
  //     credentials and for a repeated insufficient_scope challenge. The latter
  //     is how Docker Hub answers an anonymous pull of a private OR nonexistent
  //     repository, so the text cannot tell "needs credentials" from "wrong
  //     name". auth_required is the honest reading (its hint says to check the
  //     name too); access_denied is kept for an explicit 403 / DENIED answer.
  p('auth_required', /\bno basic auth credentials\b/),
  // credentials offered and refused (Docker Hub / ECR wording)
  p('auth_rejected', /incorrect username or password|authorization token has expired/),
  p('auth_required', /\bpull access denied\b|\binsufficient_scope\b/),
  p('access_denied', /\b403 Forbidden\b|\bdenied: /),
  p('auth_required', /\bauthentication required\b|\b401 Unauthorized\b/),

  // --- manifest
  p('platform_missing', /no match for platform in manifest/),
  p('name_unknown', /\bname[ _]unknown\b/),
  p('manifest_unknown', /\bmanifest[ _]unknown\b/),
  // containerd resolver.go: every host answered 404 → "<ref>: not found"
  p('manifest_unknown', /failed to resolve (?:reference "[^"]*"|image): \S+: not found\b/),

  // --- registry answered with a server error ("…: 503 …" or "status code 503 …")
  p('http_status', /unexpected (?:HTTP )?status/, /(?::| code) 5\d\d\b/),
  // containerd 1.6/1.7 resolver when every host failed: "pulling from host H failed with status code [manifests v1]: 503 Service Unavailable"
  p('http_status', /\bfailed with status code \[[^\]\s]*(?: [^\]\s]*)?\]: 5\d\d\b/),

  // --- the registry accepted the connection but did not answer
  p('http_timeout', /timeout awaiting response headers|Client\.Timeout exceeded while awaiting headers|\bread tcp \S+: i\/o timeout/),

  // --- runtime-side failure after the registry path worked
  p('runtime_pull_failed', /because of no progress in/),

  // --- nothing more specific: Go's context deadline (dial or overall)
  p('tcp_timeout', /\bi\/o timeout\b|context deadline exceeded/),
];

/**
 * kubelet's own summaries of a failed pull: they name no cause. The cause is
 * in the "Failed to pull image" event that came before.
 */
const KUBELET_ONLY = /Back-off pulling image|\bImagePullBackOff\b|\bErrImagePull\b/i;

export const KUBELET_ONLY_HINT =
  'That text is only the kubelet\'s summary (ErrImagePull, or ImagePullBackOff: it waits before retrying the pull); the reason is in the earlier "Failed to pull image" event. Paste that message, or pipe `kubectl describe pod POD` (or `kubectl get events -o json`) into `pullprobe explain`.';

interface Match {
  start: number;
  end: number;
  groups: Groups;
}

/** Where a pattern matches a line (pieces in order), or null. Linear in the line. */
export function matchPattern(pattern: Pattern, line: string): Match | null {
  let pos = 0;
  let start = -1;
  const groups: Array<string | undefined> = [];
  for (const re of pattern.seq) {
    re.lastIndex = pos;
    const m = re.exec(line);
    if (!m) return null;
    if (start < 0) start = m.index;
    groups.push(...m.slice(1));
    // an empty match cannot happen (every piece consumes text); guard anyway
    pos = m.index + Math.max(1, m[0].length);
  }
  return { start, end: pos, groups };
}

/** Index of the first pattern matching the line, with its match; null when none does. */
function firstPattern(line: string, below: number): { index: number; match: Match } | null {
  for (let i = 0; i < below; i++) {
    const pattern = PATTERNS[i];
    if (pattern === undefined) break;
    const match = matchPattern(pattern, line);
    if (match) return { index: i, match };
  }
  return null;
}

const NONE: TextExplanation = { stage: null, reason: null, cause: null, message: null, hint: null, excerpt: null };

/**
 * Stage, reason, cause, catalog message and fix for a pasted text (one
 * message, `kubectl describe pod` output, or `kubectl get events -o json`),
 * with the user's line that decided. The most specific failure found wins.
 */
export function explainText(text: string): TextExplanation {
  const lines = candidateLines(text);
  let best: { index: number; match: Match; line: string } | null = null;
  for (const line of lines) {
    const hit = firstPattern(line, best === null ? PATTERNS.length : best.index);
    if (hit) best = { ...hit, line };
    if (best?.index === 0) break;
  }
  if (best !== null) {
    const pattern = PATTERNS[best.index] as Pattern;
    const reason = typeof pattern.reason === 'function' ? pattern.reason(best.match.groups) : pattern.reason;
    const info = REASONS[reason];
    return {
      stage: stageOf(reason),
      reason,
      cause: causeOf(reason),
      message: info.message,
      hint: info.hint,
      excerpt: excerpt(best.line, best.match.start, best.match.end),
    };
  }
  for (const line of lines) {
    const m = KUBELET_ONLY.exec(line);
    if (m) return { ...NONE, hint: KUBELET_ONLY_HINT, excerpt: excerpt(line, m.index, m.index + m[0].length) };
  }
  return { ...NONE };
}

/** Reason for a pasted error text, or null when nothing known matches. */
export function classifyMessage(text: string): Reason | null {
  return explainText(text).reason;
}

/** Stage, reason, cause, message and fix for a pasted kubelet/containerd error. */
export function explainMessage(text: string): Explanation {
  const { stage, reason, cause, message, hint } = explainText(text);
  return { stage, reason, cause, message, hint };
}
