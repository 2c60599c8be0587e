/** host:port text, as Go's net.JoinHostPort / SplitHostPort read and write it. */
import { isIPv6 } from 'node:net';

/** "host:port", with IPv6 literals in brackets. */
export function joinHostPort(host: string, port: number | string): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Go net.SplitHostPort, leniently: "[::1]:5000", "reg:5000", or a bare host
 * (port ""); an unbracketed IPv6 literal ("::1") is a host without a port.
 */
export function splitHostPort(hostPort: string): { host: string; port: string } {
  const bracket = /^\[([^\]]*)\](?::(\d*))?$/.exec(hostPort);
  if (bracket) return { host: bracket[1] ?? '', port: bracket[2] ?? '' };
  const colon = hostPort.indexOf(':');
  if (colon === -1 || colon !== hostPort.lastIndexOf(':')) return { host: hostPort, port: '' };
  return { host: hostPort.slice(0, colon), port: hostPort.slice(colon + 1) };
}
