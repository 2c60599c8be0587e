/**
 * A client TLS socket over an already connected socket, made the way
 * tls.connect makes it, minus tls.connect's own server-identity check.
 *
 * tls.connect checks the server's name itself after every handshake, and to
 * do so reads the peer's whole certificate chain as JS objects
 * (getPeerCertificate(true): every certificate's raw DER, public key and
 * fingerprints): in the agent that was a tenth of the CPU of a probe (issue
 * 10). The TLS stage decides the identity itself, in Go's order (tls.ts
 * verify()), with `checkServerIdentity` a no-op, so that read bought nothing.
 *
 * The socket behaves as tls.connect's does for its user: 'secureConnect'
 * once the handshake is done, with `authorized` and `authorizationError` set
 * from OpenSSL's chain verification; an 'error' (ECONNRESET) when the peer
 * ends the connection before the handshake is done. Verification is never
 * enforced here (rejectUnauthorized false): the stage reports it.
 *
 * It relies on TLSSocket's `_start`, `_releaseControl` and `setServername`,
 * which tls.connect itself calls (Node 20 to 24). When a Node lacks them, tls.connect is used.
 */
import type net from 'node:net';
import tls from 'node:tls';

interface ClientInternals {
  _releaseControl?: () => boolean;
  _start?: () => void;
  setServername?: (name: string) => void;
  _handle?: { verifyError?: () => (Error & { code?: unknown }) | null | undefined } | null;
}

const HAS_INTERNALS =
  typeof (tls.TLSSocket.prototype as ClientInternals)._start === 'function' &&
  typeof (tls.TLSSocket.prototype as ClientInternals)._releaseControl === 'function' &&
  typeof (tls.TLSSocket.prototype as ClientInternals).setServername === 'function';

export interface ClientTlsOptions {
  socket: net.Socket;
  secureContext: tls.SecureContext;
  /** SNI; none for an IP address. */
  servername?: string;
}

/** The handshake over `o.socket`, without tls.connect's identity check (see the header). `internals`: for tests of the fallback. */
export function connectOverSocket(o: ClientTlsOptions, internals = HAS_INTERNALS): tls.TLSSocket {
  if (!internals) {
    return tls.connect({
      socket: o.socket,
      secureContext: o.secureContext,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      ...(o.servername !== undefined ? { servername: o.servername } : {}),
    });
  }
  const socket = new tls.TLSSocket(o.socket, {
    secureContext: o.secureContext,
    isServer: false,
    requestCert: true,
    rejectUnauthorized: false,
  });
  const own = socket as tls.TLSSocket & ClientInternals;
  own._releaseControl?.();
  if (o.servername !== undefined) own.setServername?.(o.servername);
  socket.once('secure', () => {
    socket.removeListener('end', onEndEarly);
    const err = own._handle?.verifyError?.();
    socket.authorized = !err;
    // A string, as tls.connect sets it (@types/node says Error).
    if (err) (socket as { authorizationError: unknown }).authorizationError = (typeof err.code === 'string' && err.code) || err.message;
    socket.emit('secureConnect');
  });
  const onEndEarly = (): void => {
    socket.destroy(
      Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), { code: 'ECONNRESET' }),
    );
  };
  socket.prependListener('end', onEndEarly);
  own._start?.();
  return socket;
}
