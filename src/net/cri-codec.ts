/**
 * The protobuf wire format of the few CRI `runtime.v1` messages pullprobe
 * sends and reads, as the project's proto of that subset says
 * (cri-runtime-v1.proto beside this file; field numbers from cri-api's
 * api.proto). Hand-written on purpose: a proto loader (protobufjs) costs
 * start-up time and memory for six messages; test/unit/cri-proto.test.ts holds
 * this codec to the proto with protobufjs in both directions.
 *
 * Encoders write proto3 the way Go's protobuf does (empty strings and false
 * left out, a set sub-message always written). Decoders skip unknown fields,
 * keep the last value of a repeated scalar field, and throw CriCodecError on
 * bytes that are not valid protobuf (truncated varint or length, bad wire
 * type for a known field) — never read past the buffer.
 */

export class CriCodecError extends Error {
  override readonly name = 'CriCodecError';
}

// ---- writing

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function key(field: number, wire: number): Buffer {
  return varint(field * 8 + wire);
}

function lenField(field: number, bytes: Buffer): Buffer {
  return Buffer.concat([key(field, WIRE_LEN), varint(bytes.length), bytes]);
}

/** A string field; proto3 leaves an empty string out. */
function str(field: number, value: string | undefined): Buffer {
  return value === undefined || value === '' ? Buffer.alloc(0) : lenField(field, Buffer.from(value, 'utf8'));
}

function bool(field: number, value: boolean): Buffer {
  return value ? Buffer.concat([key(field, WIRE_VARINT), varint(1)]) : Buffer.alloc(0);
}

// ---- reading

type FieldValue = { wire: 0; value: number } | { wire: 2; value: Buffer } | { wire: 1 | 5 };

/** Each field of a message, in wire order. Throws CriCodecError on malformed input. */
export function* readFields(buf: Buffer): Generator<{ field: number; v: FieldValue }> {
  let pos = 0;
  const readVarint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new CriCodecError('truncated varint');
      const b = buf[pos++] as number;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 0x80;
    }
    throw new CriCodecError('varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const k = readVarint();
    const field = Math.floor(k / 8);
    const wire = k % 8;
    if (field === 0) throw new CriCodecError('field number 0');
    if (wire === WIRE_VARINT) {
      yield { field, v: { wire: 0, value: readVarint() } };
    } else if (wire === WIRE_LEN) {
      const len = readVarint();
      if (len > buf.length - pos) throw new CriCodecError(`field ${field}: length ${len} past the end of the message`);
      const value = buf.subarray(pos, pos + len);
      pos += len;
      yield { field, v: { wire: 2, value } };
    } else if (wire === WIRE_I64 || wire === WIRE_I32) {
      const size = wire === WIRE_I64 ? 8 : 4;
      if (size > buf.length - pos) throw new CriCodecError(`field ${field}: truncated fixed-size value`);
      pos += size;
      yield { field, v: { wire } };
    } else {
      throw new CriCodecError(`field ${field}: unsupported wire type ${wire}`);
    }
  }
}

function asString(field: number, v: FieldValue): string {
  if (v.wire !== WIRE_LEN) throw new CriCodecError(`field ${field}: expected a string`);
  return v.value.toString('utf8');
}

function asBytes(field: number, v: FieldValue): Buffer {
  if (v.wire !== WIRE_LEN) throw new CriCodecError(`field ${field}: expected a message`);
  return v.value;
}

function asNumber(field: number, v: FieldValue): number {
  if (v.wire !== WIRE_VARINT) throw new CriCodecError(`field ${field}: expected a varint`);
  return v.value;
}

// ---- the messages

export interface CriVersion {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

/** AuthConfig as the kubelet fills it (all optional; `auth` is base64 of user:password). */
export interface CriAuth {
  username?: string;
  password?: string;
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Bytes (uint64; exact below 2^53). */
  size: number;
  username: string;
  pinned: boolean;
}

/** VersionRequest { string version = 1 } */
export function encodeVersionRequest(version: string): Buffer {
  return str(1, version);
}

/** VersionResponse { version = 1; runtime_name = 2; runtime_version = 3; runtime_api_version = 4 } */
export function decodeVersionResponse(buf: Buffer): CriVersion {
  const out: CriVersion = { version: '', runtimeName: '', runtimeVersion: '', runtimeApiVersion: '' };
  for (const { field, v } of readFields(buf)) {
    if (field === 1) out.version = asString(field, v);
    else if (field === 2) out.runtimeName = asString(field, v);
    else if (field === 3) out.runtimeVersion = asString(field, v);
    else if (field === 4) out.runtimeApiVersion = asString(field, v);
  }
  return out;
}

/** ImageSpec { string image = 1; … } (annotations and the newer fields are not sent). */
export function encodeImageSpec(image: string): Buffer {
  return str(1, image);
}

/** AuthConfig { username = 1; password = 2; auth = 3; server_address = 4; identity_token = 5; registry_token = 6 } */
export function encodeAuthConfig(a: CriAuth): Buffer {
  return Buffer.concat([
    str(1, a.username),
    str(2, a.password),
    str(3, a.auth),
    str(4, a.serverAddress),
    str(5, a.identityToken),
    str(6, a.registryToken),
  ]);
}

/** PullImageRequest { ImageSpec image = 1; AuthConfig auth = 2; PodSandboxConfig sandbox_config = 3 (not sent) } */
export function encodePullImageRequest(image: string, auth?: CriAuth): Buffer {
  const parts = [lenField(1, encodeImageSpec(image))];
  if (auth !== undefined) parts.push(lenField(2, encodeAuthConfig(auth)));
  return Buffer.concat(parts);
}

/** PullImageResponse { string image_ref = 1 } */
export function decodePullImageResponse(buf: Buffer): { imageRef: string } {
  let imageRef = '';
  for (const { field, v } of readFields(buf)) if (field === 1) imageRef = asString(field, v);
  return { imageRef };
}

/** ImageStatusRequest { ImageSpec image = 1; bool verbose = 2 } — the kubelet sends verbose=false. */
export function encodeImageStatusRequest(image: string, verbose = false): Buffer {
  return Buffer.concat([lenField(1, encodeImageSpec(image)), bool(2, verbose)]);
}

/** ImageStatusResponse { Image image = 1; map<string,string> info = 2 }: image absent = not present. */
export function decodeImageStatusResponse(buf: Buffer): { image: CriImage | null } {
  let image: CriImage | null = null;
  for (const { field, v } of readFields(buf)) if (field === 1) image = decodeImage(asBytes(field, v));
  return { image };
}

/** Image { id = 1; repeated repo_tags = 2; repeated repo_digests = 3; uint64 size = 4; …; username = 6; …; bool pinned = 8 } */
export function decodeImage(buf: Buffer): CriImage {
  const out: CriImage = { id: '', repoTags: [], repoDigests: [], size: 0, username: '', pinned: false };
  for (const { field, v } of readFields(buf)) {
    if (field === 1) out.id = asString(field, v);
    else if (field === 2) out.repoTags.push(asString(field, v));
    else if (field === 3) out.repoDigests.push(asString(field, v));
    else if (field === 4) out.size = asNumber(field, v);
    else if (field === 6) out.username = asString(field, v);
    else if (field === 8) out.pinned = asNumber(field, v) !== 0;
  }
  return out;
}

/** RemoveImageRequest { ImageSpec image = 1 } */
export function encodeRemoveImageRequest(image: string): Buffer {
  return lenField(1, encodeImageSpec(image));
}

/** An empty response (RemoveImageResponse): any fields are ignored, but the bytes must be valid. */
export function decodeEmpty(buf: Buffer): Record<string, never> {
  // unknown fields of a newer runtime are skipped, but the bytes must parse
  Array.from(readFields(buf));
  return {};
}
