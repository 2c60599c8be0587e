/**
 * A small CRI (`runtime.v1`) client on the runtime's unix socket: Version,
 * ImageStatus, PullImage and RemoveImage, with the hand-written codec in
 * cri-codec.ts and unary gRPC over node:http2 (grpc-unary.ts): no gRPC
 * library and no proto loader in the agent (grpc-js would bring 56
 * packages, 12 MB, @types/node among them, into the production image).
 * Works with containerd and CRI-O.
 *
 * Every call is bounded by the caller: `timeoutMs` covers connecting too (a
 * missing or refusing socket fails at once; a socket that accepts and never
 * speaks HTTP/2 fails at the deadline as `unavailable`), it is sent as
 * `grpc-timeout`, and an AbortSignal cancels the call. containerd's own 30 s
 * dial timeout and its missing overall timeout never decide how long
 * pullprobe waits. The runtime stage imports this module only when it runs.
 */
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
import { CriError } from '../shared/errors.js';
import { openGrpcChannel } from './grpc-unary.js';

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

/** Open a client for a CRI endpoint. The channel connects on the first call. Throws CriError('endpoint') for a non-unix endpoint. */
export function openCriClient(endpoint: string): CriClient {
  if (criTarget(endpoint) === null) {
    throw new CriError('endpoint', 'connect', endpoint, null, 'not a unix socket endpoint (expected unix:///path/to/socket)');
  }
  const channel = openGrpcChannel(criSocketPath(endpoint));

  async function unary<T>(method: string, path: string, request: Buffer, decode: (b: Buffer) => T, o: CriCallOptions): Promise<T> {
    const r = await channel.call(path, request, o);
    if (r.ok) {
      try {
        return decode(r.message);
      } catch (err) {
        throw new CriError(
          'codec',
          method,
          endpoint,
          null,
          `unreadable ${method} answer: ${err instanceof Error ? err.message : 'bad bytes'}`,
          {
            cause: err,
          },
        );
      }
    }
    switch (r.kind) {
      case 'connect':
        throw new CriError('unavailable', method, endpoint, 'UNAVAILABLE', r.details);
      case 'deadline':
        throw new CriError(
          r.connected ? 'timeout' : 'unavailable',
          method,
          endpoint,
          'DEADLINE_EXCEEDED',
          `no answer within ${o.timeoutMs} ms`,
        );
      case 'aborted':
        throw new CriError('aborted', method, endpoint, 'CANCELLED', 'cancelled by the caller');
      case 'status':
        throw new CriError('rpc', method, endpoint, r.status, r.details);
      case 'protocol':
        throw new CriError('codec', method, endpoint, null, r.details);
    }
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
      channel.close();
    },
  };
}
