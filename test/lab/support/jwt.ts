/**
 * Pure helpers for the lab token service: libtrust key IDs and RS256 JWTs in
 * the shape registry 2.8's token access controller accepts.
 */
import { createHash, createPublicKey, sign, X509Certificate } from 'node:crypto';

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(buf: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32.charAt((value >>> (bits - 5)) & 31);
      bits -= 5;
    }
  }
  if (bits > 0) out += B32.charAt((value << (5 - bits)) & 31);
  return out;
}

/** libtrust key ID: SHA-256 of the SPKI DER, first 30 bytes, base32, 12 groups of 4 joined by ':'. */
export function libtrustKeyId(spkiDer: Uint8Array): string {
  const b32 = base32(createHash('sha256').update(spkiDer).digest().subarray(0, 30));
  return (b32.match(/.{4}/g) ?? []).join(':');
}

export function keyIdOfCert(certPem: string): string {
  const spki = createPublicKey(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'pem' })).export({
    type: 'spki',
    format: 'der',
  });
  return libtrustKeyId(spki);
}

export type HeaderMode = 'kid' | 'x5c' | 'both' | 'none';

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: Array<{ type: string; name: string; actions: string[] }>;
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** Sign an RS256 JWT; header carries kid and/or x5c according to mode. */
export function signJwt(claims: TokenClaims, keyPem: string, certPem: string, mode: HeaderMode = 'both'): string {
  const header: Record<string, unknown> = { typ: 'JWT', alg: 'RS256' };
  if (mode === 'kid' || mode === 'both') header['kid'] = keyIdOfCert(certPem);
  if (mode === 'x5c' || mode === 'both') header['x5c'] = [new X509Certificate(certPem).raw.toString('base64')];
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign('sha256', Buffer.from(input), keyPem);
  return `${input}.${b64url(sig)}`;
}

/** Parse `repository:lab/probe:pull,push` scopes (several may be given). */
export function parseScopes(scopes: string[]): Array<{ type: string; name: string; actions: string[] }> {
  const out: Array<{ type: string; name: string; actions: string[] }> = [];
  for (const s of scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first < 0 || last <= first) continue;
    out.push({
      type: s.slice(0, first),
      name: s.slice(first + 1, last),
      actions: s
        .slice(last + 1)
        .split(',')
        .filter(Boolean),
    });
  }
  return out;
}
