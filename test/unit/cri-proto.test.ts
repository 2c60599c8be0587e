/**
 * The hand-written CRI codec (src/net/cri-codec.ts) held to the project's own
 * proto of the runtime.v1 subset it speaks (src/net/cri-runtime-v1.proto), with
 * protobufjs — the library @grpc/proto-loader uses — as the reference, in both
 * directions: what the codec writes decodes to the same fields, and what a
 * protobuf encoder writes (as containerd's Go runtime would) the codec reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import {
  decodeImageStatusResponse,
  decodePullImageResponse,
  decodeVersionResponse,
  encodeImageStatusRequest,
  encodePullImageRequest,
  encodeRemoveImageRequest,
  encodeVersionRequest,
} from '../../src/net/cri-codec.js';

const PROTO = fileURLToPath(new URL('../../src/net/cri-runtime-v1.proto', import.meta.url));
const root = protobuf.loadSync(PROTO);
const type = (name: string): protobuf.Type => root.lookupType(`runtime.v1.${name}`);
const asObject = (name: string, bytes: Buffer): Record<string, unknown> =>
  type(name).toObject(type(name).decode(bytes), { longs: Number, defaults: false });
const encode = (name: string, value: Record<string, unknown>): Buffer => {
  const t = type(name);
  assert.equal(t.verify(value), null, `${name}: ${JSON.stringify(value)}`);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
};

test('the proto names every rpc the client calls, on the services the kubelet uses', () => {
  const methods = (service: string): string[] => Object.keys(root.lookupService(`runtime.v1.${service}`).methods);
  assert.deepEqual(methods('RuntimeService'), ['Version']);
  assert.deepEqual(methods('ImageService').sort(), ['ImageStatus', 'PullImage', 'RemoveImage']);
});

test('requests the codec writes decode with the proto to the same fields', () => {
  assert.deepEqual(asObject('VersionRequest', encodeVersionRequest('v1')), { version: 'v1' });
  const auth = {
    username: 'alice',
    password: 'pa:ss',
    auth: 'YWxpY2U6cGE6c3M=',
    serverAddress: 'registry.example',
    identityToken: 'refresh-me',
    registryToken: 'rt',
  };
  assert.deepEqual(asObject('PullImageRequest', encodePullImageRequest('registry.example/team/app:v1', auth)), {
    image: { image: 'registry.example/team/app:v1' },
    auth,
  });
  assert.deepEqual(asObject('PullImageRequest', encodePullImageRequest('docker.io/library/busybox:latest')), {
    image: { image: 'docker.io/library/busybox:latest' },
  });
  assert.deepEqual(asObject('ImageStatusRequest', encodeImageStatusRequest('x/y:z', true)), { image: { image: 'x/y:z' }, verbose: true });
  assert.deepEqual(asObject('ImageStatusRequest', encodeImageStatusRequest('x/y:z')), { image: { image: 'x/y:z' } });
  assert.deepEqual(asObject('RemoveImageRequest', encodeRemoveImageRequest('x/y:z')), { image: { image: 'x/y:z' } });
});

test('responses a protobuf encoder writes are read by the codec, unknown fields skipped', () => {
  assert.deepEqual(
    decodeVersionResponse(
      encode('VersionResponse', { version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '1.6.20', runtimeApiVersion: 'v1' }),
    ),
    { version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '1.6.20', runtimeApiVersion: 'v1' },
  );
  assert.deepEqual(decodePullImageResponse(encode('PullImageResponse', { imageRef: `sha256:${'a'.repeat(64)}` })), {
    imageRef: `sha256:${'a'.repeat(64)}`,
  });
  const image = {
    id: `sha256:${'b'.repeat(64)}`,
    repoTags: ['registry.example/team/app:v1', 'registry.example/team/app:latest'],
    repoDigests: [`registry.example/team/app@sha256:${'c'.repeat(64)}`],
    size: 2 ** 40 + 7,
    uid: { value: 0 },
    username: 'nobody',
    spec: { image: 'registry.example/team/app:v1', annotations: { a: 'b' } },
    pinned: true,
  };
  const status = encode('ImageStatusResponse', { image, info: { info: '{"big":"json"}' } });
  assert.deepEqual(decodeImageStatusResponse(status), {
    image: { id: image.id, repoTags: image.repoTags, repoDigests: image.repoDigests, size: image.size, username: 'nobody', pinned: true },
  });
  assert.deepEqual(decodeImageStatusResponse(encode('ImageStatusResponse', {})), { image: null }, 'no image: not present');
});
