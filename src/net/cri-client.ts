/**
 * A small CRI (`runtime.v1`) client over gRPC on the runtime's unix socket:
 * Version, ImageStatus, PullImage and RemoveImage, with the hand-written
 * codec in cri-codec.ts (no proto loader). Works with containerd and CRI-O.
 *
 * Every call is bounded by the caller: a gRPC deadline (`timeoutMs`) covers
 * channel set-up too (the channel never waits for the socket to appear:
 * `waitForReady` is off, so a missing or refusing socket fails at once, and
 * a socket that accepts and never speaks HTTP/2 fails at the deadline), and
 * an AbortSignal cancels the call. containerd's own 30 s dial timeout and its
 * missing overall timeout never decide how long pullprobe waits.
 *
 * Loaded lazily (the runtime stage imports it with `import()`), so a probe
 * without `--pull` never loads @grpc/grpc-js.
 */
import { Client, Metadata, connectivityState, credentials, status, type ServiceError } from '@grpc/grpc-js';
import {
  decodeEmpty,
  decodeImageStatusResponse,
  decodePullImageResponse,
  decodeVersionResponse,
  encodeImageStatusRequest,
  encodePullImageRequest,
  encodeRemoveImageRequest,
  encodeVersionRequest,
  type CriAuth,
  type CriImage,
  type CriVersion,
} from './cri-codec.js';
import { CriError, type CriErrorKind } from '../shared/errors.js';

export type { CriAuth, CriImage, CriVersion } from './cri-codec.js';
export { CriError, type CriErrorKind } from '../shared/errors.js';

/** The CRI API version pullprobe speaks (sent in VersionRequest). */
export const CRI_API_VERSION = 'v1';

export interface CriCallOptions {
  /** Whole milliseconds the call may take, connection included. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface CriClient {
  readonly endpoint: string;
  version(o: CriCallOptions): Promise<CriVersion>;
  /** The image as the runtime has it, or null when it is not present. */
  imageStatus(image: string, o: CriCallOptions): Promise<CriImage | null>;
  /** Pull through the runtime with the AuthConfig given (none = anonymous, as the kubelet sends nil). Resolves to the image ref. */
  pullImage(image: string, auth: CriAuth | undefined, o: CriCallOptions): Promise<{ imageRef: string }>;
  removeImage(image: string, o: CriCallOptions): Promise<void>;
  /** Close the channel (idempotent). */
  close(): void;
}

const SERVICE_RUNTIME = '/runtime.v1.RuntimeService/';
const SERVICE_IMAGE = '/runtime.v1.ImageService/';

/**
 * The grpc target for a CRI endpoint: `unix:///path` as the kubelet writes
 * it, `unix:/path`, or a bare path. Null for any other scheme.
 */
export function criTarget(endpoint: string): string | null {
  const e = endpoint.trim();
  if (e.startsWith('unix://')) return e.length > 'unix://'.length ? e : null;
  if (e.startsWith('unix:')) return e.length > 'unix:'.length ? e : null;
  if (e === '' || /^[a-z][a-z0-9+.-]*:/i.test(e)) return null;
  return e.startsWith('/') ? `unix://${e}` : `unix:${e}`;
}

/** The socket path of a unix endpoint (for messages). */
export function criSocketPath(endpoint: string): string {
  const t = criTarget(endpoint) ?? endpoint;
  if (t.startsWith('unix://')) return t.slice('unix://'.length);
  if (t.startsWith('unix:')) return t.slice('unix:'.length);
  return t;
}

const STATUS_NAMES = new Map<number, string>(
  Object.entries(status)
    .filter((e): e is [string, number] => typeof e[1] === 'number')
    .map(([name, code]) => [code, name]),
);

/** Open a client for a CRI endpoint. The channel connects on the first call. Throws CriError('endpoint') for a non-unix endpoint. */
export function openCriClient(endpoint: string): CriClient {
  const target = criTarget(endpoint);
  if (target === null) {
    throw new CriError('endpoint', 'connect', endpoint, null, 'not a unix socket endpoint (expected unix:///path/to/socket)');
  }
  const client = new Client(target, credentials.createInsecure(), {
    'grpc.enable_http_proxy': 0,
    'grpc.enable_retries': 0,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  });
  let closed = false;

  const connected = (): boolean => {
    try {
      return client.getChannel().getConnectivityState(false) === connectivityState.READY;
    } catch {
      return false;
    }
  };

  function unary<T>(method: string, path: string, request: Buffer, decode: (b: Buffer) => T, o: CriCallOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (kind: CriErrorKind, grpcStatus: string | null, details: string, cause?: unknown): void => {
        reject(new CriError(kind, method, endpoint, grpcStatus, details, cause === undefined ? undefined : { cause }));
      };
      if (closed) {
        fail('aborted', null, 'client closed');
        return;
      }
      if (o.signal?.aborted) {
        fail('aborted', null, 'aborted before the call');
        return;
      }
      const timeoutMs = Math.max(1, Math.floor(o.timeoutMs));
      const deadline = Date.now() + timeoutMs;
      let decodeError: unknown;
      const deserialize = (b: Buffer): T => {
        try {
          return decode(b);
        } catch (err) {
          decodeError = err;
          throw err;
        }
      };
      let abortedBySignal = false;
      const call = client.makeUnaryRequest<Buffer, T>(
        path,
        (b) => b,
        deserialize,
        request,
        new Metadata(),
        { deadline },
        (err: ServiceError | null, value?: T) => {
          o.signal?.removeEventListener('abort', onAbort);
          if (err === null && value !== undefined) {
            resolve(value);
            return;
          }
          if (err === null) {
            fail('codec', null, 'empty answer');
            return;
          }
          const name = STATUS_NAMES.get(err.code) ?? String(err.code);
          const details = err.details || err.message;
          if (abortedBySignal) fail('aborted', name, 'cancelled by the caller', err);
          else if (decodeError !== undefined)
            fail('codec', name, `unreadable ${method} answer: ${decodeError instanceof Error ? decodeError.message : 'bad bytes'}`, err);
          else if (err.code === status.UNAVAILABLE && !connected()) fail('unavailable', name, details, err);
          else if (err.code === status.DEADLINE_EXCEEDED && Date.now() >= deadline - 5) {
            fail(connected() ? 'timeout' : 'unavailable', name, details, err);
          } else fail('rpc', name, details, err);
        },
      );
      const onAbort = (): void => {
        abortedBySignal = true;
        call.cancel();
      };
      o.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  return {
    endpoint,
    version: (o) => unary('Version', `${SERVICE_RUNTIME}Version`, encodeVersionRequest(CRI_API_VERSION), decodeVersionResponse, o),
    imageStatus: async (image, o) =>
      (await unary('ImageStatus', `${SERVICE_IMAGE}ImageStatus`, encodeImageStatusRequest(image), decodeImageStatusResponse, o)).image,
    pullImage: (image, auth, o) =>
      unary('PullImage', `${SERVICE_IMAGE}PullImage`, encodePullImageRequest(image, auth), decodePullImageResponse, o),
    removeImage: async (image, o) => {
      await unary('RemoveImage', `${SERVICE_IMAGE}RemoveImage`, encodeRemoveImageRequest(image), decodeEmpty, o);
    },
    close() {
      if (closed) return;
      closed = true;
      client.close();
    },
  };
}
