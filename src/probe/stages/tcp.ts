/**
 * TCP stage: connect to every resolved address of the registry endpoint at
 * once, each with its own timeout. The verdict is ok when at least one
 * address connects (the runtime's dialer needs only one); `degraded` tells
 * that some of them failed. With `keep`, the socket of the first address
 * that connected (input order) is returned beside the outcome, to carry the
 * TLS handshake and the HTTP requests (one connection per probe); every
 * other socket is closed.
 */
import net from 'node:net';
import { REASONS, type Reason } from '../../diagnosis/catalog.js';
import { stageDeadline } from '../../net/deadline.js';
import { errorCode, tcpReasonForCode } from '../../net/error-codes.js';
import type { ProbeContext, StageFn, StageOutcome } from '../../model/types.js';
import type { TcpAddressResult, TcpDetail } from '../../model/step-detail.js';
import { joinHostPort } from '../../shared/host-port.js';
export type { TcpAddressResult, TcpDetail } from '../../model/step-detail.js';

export interface TcpInput {
  /** Name being probed (for `host` on the outcome); the sockets go to `addresses`. */
  host: string;
  /** Resolved addresses, in the order the resolver gave them. */
  addresses: string[];
  port: number;
}

export type TcpConnect = (o: { host: string; port: number }) => net.Socket;

export interface TcpOptions {
  /** Per-address connect timeout; capped by the time left in the probe. */
  connectTimeoutMs: number;
  /** Socket factory (default: net.connect). */
  connect?: TcpConnect;
  /** Keep the first connected socket open and return it (the caller owns it then). */
  keep?: boolean;
}

/** The outcome, plus the kept socket when `keep` was asked and an address connected. Never serialised. */
export type TcpOutcome = StageOutcome<TcpDetail> & { socket?: net.Socket };

/** Code recorded when the per-address timeout or the probe deadline fires. */
const TIMEOUT_CODE = 'ETIMEDOUT';

const defaultConnect: TcpConnect = (o) => net.connect({ host: o.host, port: o.port });

export { joinHostPort };

export const tcpStage = async function tcpStage(ctx: ProbeContext, input: TcpInput, opts: TcpOptions): Promise<TcpOutcome> {
  const start = ctx.clock.now();
  const connect = opts.connect ?? defaultConnect;
  const dials = await Promise.all(
    input.addresses.map((address) => dialOne(ctx, address, input.port, opts.connectTimeoutMs, connect, opts.keep === true)),
  );
  const seconds = (ctx.clock.now() - start) / 1000;
  const results = dials.map((d) => d.result);
  // The first address (input order) whose socket is still open carries the rest of the probe.
  const kept = dials.find((d) => d.socket !== undefined && !d.socket.destroyed)?.socket;
  for (const d of dials) if (d.socket !== kept) d.socket?.destroy();
  const connected = results.filter((r) => r.ok).map((r) => r.address);
  const host = joinHostPort(input.host, input.port);
  const detail: TcpDetail = { addresses: results, connected };
  if (connected.length > 0) {
    const out: TcpOutcome = { ok: true, host, degraded: connected.length < results.length, seconds, detail };
    if (kept) out.socket = kept;
    return out;
  }
  const reason = failureReason(results[0]);
  ctx.log.debug({ stage: 'tcp', host, reason, errors: results.map((r) => r.error) }, 'tcp failed');
  return { ok: false, reason, message: REASONS[reason].message, host, seconds, detail };
} satisfies StageFn<TcpInput, TcpOptions, TcpDetail>;

/** The first address (input order) decides the reason; unknown codes count as unreachable. */
function failureReason(first: TcpAddressResult | undefined): Reason {
  return tcpReasonForCode(first?.error) ?? 'tcp_unreachable';
}

interface Dialled {
  result: TcpAddressResult;
  /** The connected socket, when kept (an 'error' listener guards it until its new owner takes over). */
  socket?: net.Socket;
}

function dialOne(
  ctx: ProbeContext,
  address: string,
  port: number,
  timeoutMs: number,
  connect: TcpConnect,
  keep: boolean,
): Promise<Dialled> {
  return new Promise((resolve) => {
    const start = ctx.clock.now();
    let socket: net.Socket | undefined;
    let done = false;
    const finish = (ok: boolean, error?: string): void => {
      if (done) return;
      done = true;
      deadline.dispose();
      const seconds = (ctx.clock.now() - start) / 1000;
      const result = error === undefined ? { address, ok, seconds } : { address, ok, error, seconds };
      if (socket) {
        socket.removeListener('connect', onConnect);
        socket.removeListener('error', onError);
        socket.on('error', ignore); // a late error (after destroy, or while kept) must not crash the process
        if (ok && keep) {
          resolve({ result, socket });
          return;
        }
        socket.destroy();
      }
      resolve({ result });
    };
    const onConnect = (): void => finish(true);
    const onError = (err: unknown): void => finish(false, deadline.timedOut() ? TIMEOUT_CODE : (errorCode(err) ?? 'EUNKNOWN'));
    // The timeout destroys the socket (finish): no signal is handed to net.connect.
    const deadline = stageDeadline(ctx, timeoutMs, () => finish(false, TIMEOUT_CODE));
    if (ctx.signal.aborted) {
      finish(false, TIMEOUT_CODE); // the probe was over before the dial
      return;
    }
    try {
      socket = connect({ host: address, port });
    } catch (err) {
      finish(false, errorCode(err) ?? 'EINVAL');
      return;
    }
    socket.once('connect', onConnect);
    socket.once('error', onError);
  });
}

function ignore(): void {}
