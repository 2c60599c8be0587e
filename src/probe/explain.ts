/**
 * Classify a pasted kubelet / containerd pull error into the catalog's
 * reason, cause and fix. The strings come from containerd's resolver,
 * authorizer and fetcher and Go's net / crypto/x509 errors
 * (reference/pull-path-facts.md §5). The gRPC code is ignored: containerd
 * returns DeadlineExceeded for any i/o timeout and Unknown for nearly
 * everything else, so only the text says what failed.
 *
 * PATTERNS is ordered most specific first: the first match wins. Messages and
 * hints come from catalog.ts; there is no second table here.
 */
import { REASONS, causeOf, stageOf, type Cause, type Reason, type Stage } from './catalog.js';

export interface Explanation {
  stage: Stage | null;
  reason: Reason | null;
  cause: Cause | null;
  message: string | null;
  hint: string | null;
}

interface Pattern {
  re: RegExp;
  /** A reason, or a function of the match for patterns that carry an HTTP status. */
  reason: Reason | ((m: RegExpExecArray) => Reason);
}

/**
 * A token-server answer. A 401/403 to an anonymous token request means the
 * registry wants credentials (none were offered); to a request carrying
 * credentials (the oauth POST, or its GET fallback) it means they were
 * refused. 429 is rate limiting; anything else is the token service failing.
 */
function tokenStatus(m: RegExpExecArray): Reason {
  const status = Number(m[2]);
  if (status === 429) return 'rate_limited';
  if (status === 401 || status === 403) return m[1] === 'anonymous' ? 'auth_required' : 'auth_rejected';
  return 'token_error';
}

export const PATTERNS: readonly Pattern[] = [
  // --- the image string itself
  { re: /invalid reference format|invalid repository name \(/i, reason: 'invalid_reference' },

  // --- the container runtime, not the registry
  { re: /dial unix [^\s:]*\.sock\b|connection error: desc = "transport: Error while dialing/i, reason: 'runtime_unavailable' },

  // --- an HTTP proxy in front of everything below
  { re: /\bproxyconnect\b/i, reason: 'proxy_error' },

  // --- rate limiting (also on the token server)
  { re: /\btoomanyrequests\b|\b429 Too Many Requests\b/i, reason: 'rate_limited' },

  // --- token service answered with a status; network failures reaching it
  //     fall through to the DNS/TCP/TLS patterns (design: reported with that stage)
  {
    re: /failed to fetch (anonymous|oauth) token:.*?unexpected status[^\n]*?: (\d{3})\b/i,
    reason: tokenStatus,
  },

  // --- TLS (before TCP/DNS: "tls: failed to verify certificate: x509: …")
  { re: /certificate signed by unknown authority/i, reason: 'tls_unknown_ca' },
  { re: /x509: certificate has expired or is not yet valid/i, reason: 'tls_expired' },
  {
    re: /x509: certificate is valid for .+, not |x509: cannot validate certificate for |x509: certificate is not valid for any names|x509: certificate relies on legacy Common Name field/i,
    reason: 'tls_hostname_mismatch',
  },
  { re: /TLS handshake timeout/i, reason: 'tls_timeout' },
  {
    re: /tls: handshake failure|first record does not look like a TLS handshake|server gave HTTP response to HTTPS client|remote error: tls: |tls: protocol version not supported|tls: no supported versions/i,
    reason: 'tls_handshake',
  },

  // --- DNS: Go's DNSError is "lookup <name>[ on <server>]: <err>"
  { re: /\bno such host\b/i, reason: 'dns_nxdomain' },
  { re: /\bserver misbehaving\b/i, reason: 'dns_servfail' },
  // the nameserver itself unreachable (ICMP port/host unreachable on the UDP query)
  { re: /\blookup \S+.*?: (?:read|dial|write) (?:udp|tcp)\b.*\b(?:connection refused|no route to host|network is unreachable)/i, reason: 'dns_unreachable' },
  { re: /\blookup \S+.*\bi\/o timeout\b/i, reason: 'dns_timeout' },
  // cgo/glibc resolver's EAI_AGAIN: no answer from any nameserver (lab-notes gotcha 4)
  { re: /\blookup \S+.*: (?:Try again|Temporary failure in name resolution)/i, reason: 'dns_timeout' },

  // --- TCP
  { re: /\bconnection refused\b/i, reason: 'tcp_refused' },
  { re: /\bno route to host\b|\bnetwork is unreachable\b/i, reason: 'tcp_unreachable' },
  { re: /\bdial tcp \S+: (?:i\/o timeout|connect: connection timed out)/i, reason: 'tcp_timeout' },

  // --- auth. containerd says "pull access denied, repository does not exist or
  //     may require authorization" both for a Basic challenge with no
  //     credentials and for a repeated insufficient_scope challenge. The latter
  //     is how Docker Hub answers an anonymous pull of a private OR nonexistent
  //     repository, so the text cannot tell "needs credentials" from "wrong
  //     name". auth_required is the honest reading (its hint says to check the
  //     name too); access_denied is kept for an explicit 403 / DENIED answer.
  { re: /\bno basic auth credentials\b/i, reason: 'auth_required' },
  // credentials offered and refused (Docker Hub / ECR wording)
  { re: /incorrect username or password|authorization token has expired/i, reason: 'auth_rejected' },
  { re: /\bpull access denied\b|\binsufficient_scope\b/i, reason: 'auth_required' },
  { re: /\b403 Forbidden\b|\bdenied: /i, reason: 'access_denied' },
  { re: /\bauthentication required\b|\b401 Unauthorized\b/i, reason: 'auth_required' },

  // --- manifest
  { re: /no match for platform in manifest/i, reason: 'platform_missing' },
  { re: /\bname[ _]unknown\b/i, reason: 'name_unknown' },
  { re: /\bmanifest[ _]unknown\b/i, reason: 'manifest_unknown' },
  // containerd resolver.go: every host answered 404 → "<ref>: not found"
  { re: /failed to resolve (?:reference "[^"]*"|image): \S+: not found\b/i, reason: 'manifest_unknown' },

  // --- registry answered with a server error
  { re: /unexpected (?:HTTP )?status[^\n]*?: 5\d\d\b/i, reason: 'http_status' },

  // --- the registry accepted the connection but did not answer
  { re: /timeout awaiting response headers|Client\.Timeout exceeded while awaiting headers|\bread tcp \S+: i\/o timeout/i, reason: 'http_timeout' },

  // --- runtime-side failure after the registry path worked
  { re: /failed to extract layer|because of no progress in/i, reason: 'runtime_pull_failed' },

  // --- nothing more specific: Go's context deadline (dial or overall)
  { re: /\bi\/o timeout\b|context deadline exceeded/i, reason: 'tcp_timeout' },
];

const NONE: Explanation = { stage: null, reason: null, cause: null, message: null, hint: null };

/** Reason for a pasted error text, or null when nothing known matches. */
export function classifyMessage(text: string): Reason | null {
  for (const p of PATTERNS) {
    const m = p.re.exec(text);
    if (m) return typeof p.reason === 'function' ? p.reason(m) : p.reason;
  }
  return null;
}

/** Stage, reason, cause, message and fix for a pasted kubelet/containerd error. */
export function explainMessage(text: string): Explanation {
  const reason = classifyMessage(text);
  if (reason === null) return { ...NONE };
  const info = REASONS[reason];
  return { stage: stageOf(reason), reason, cause: causeOf(reason), message: info.message, hint: info.hint };
}
