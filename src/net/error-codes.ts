/**
 * The one table that maps OS and TLS error codes to reasons (house style 3).
 * Stages call these; tests assert the reasons, never the message text.
 */
import type { Reason } from '../diagnosis/catalog.js';

const TCP_CODES: Record<string, Reason> = {
  ECONNREFUSED: 'tcp_refused',
  ECONNRESET: 'tcp_refused',
  ETIMEDOUT: 'tcp_timeout',
  EHOSTUNREACH: 'tcp_unreachable',
  ENETUNREACH: 'tcp_unreachable',
  EHOSTDOWN: 'tcp_unreachable',
  ENETDOWN: 'tcp_unreachable',
  EADDRNOTAVAIL: 'tcp_unreachable',
  EACCES: 'tcp_unreachable',
  EPERM: 'tcp_unreachable',
};

const TLS_CODES: Record<string, Reason> = {
  CERT_HAS_EXPIRED: 'tls_expired',
  CERT_NOT_YET_VALID: 'tls_expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'tls_hostname_mismatch',
  HOSTNAME_MISMATCH: 'tls_hostname_mismatch',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'tls_unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'tls_unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'tls_unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'tls_unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'tls_unknown_ca',
  CERT_UNTRUSTED: 'tls_unknown_ca',
  CERT_SIGNATURE_FAILURE: 'tls_unknown_ca',
  ERR_SSL_WRONG_VERSION_NUMBER: 'tls_handshake',
  EPROTO: 'tls_handshake',
  ECONNRESET: 'tls_handshake',
};

/** Reason for a socket-level connect error code, or undefined if unknown. */
export function tcpReasonForCode(code: string | undefined): Reason | undefined {
  return code === undefined ? undefined : TCP_CODES[code];
}

/** Reason for a TLS handshake/verification error code; unknown codes are tls_handshake. */
export function tlsReasonForCode(code: string | undefined): Reason {
  if (code !== undefined && TLS_CODES[code]) return TLS_CODES[code];
  if (code !== undefined && code.startsWith('ERR_SSL_')) return 'tls_handshake';
  return 'tls_handshake';
}

/** Extract `code` from an unknown error (walks `cause`). */
export function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
