import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CriCodecError,
  decodeImage,
  decodeImageStatusResponse,
  decodePullImageResponse,
  decodeVersionResponse,
  encodeAuthConfig,
  encodeImageStatusRequest,
  encodePullImageRequest,
  encodeRemoveImageRequest,
  encodeVersionRequest,
} from '../../src/net/cri-codec.js';
import { criSocketPath, criTarget } from '../../src/net/cri-client.js';

const hex = (b: Buffer): string => b.toString('hex');
const s = (field: number, text: string): Buffer => Buffer.concat([Buffer.from([field * 8 + 2, text.length]), Buffer.from(text)]);

describe('CRI codec: the bytes protoc would write', () => {
  it('VersionRequest carries the API version in field 1', () => {
    assert.equal(hex(encodeVersionRequest('v1')), '0a027631');
  });

  it('PullImageRequest: ImageSpec in field 1, AuthConfig in field 2, empty strings left out', () => {
    const bytes = encodePullImageRequest('a/b:c', { username: 'u', password: 'p' });
    // 0a 07 (0a 05 "a/b:c")  12 06 (0a 01 "u" 12 01 "p")
    assert.equal(hex(bytes), '0a070a05612f623a631206' + '0a0175' + '120170');
  });

  it('PullImageRequest without credentials has no field 2 (the kubelet sends auth = nil)', () => {
    assert.equal(hex(encodePullImageRequest('x')), '0a030a0178');
  });

  it('AuthConfig field numbers: auth 3, server_address 4, identity_token 5, registry_token 6', () => {
    const bytes = encodeAuthConfig({ auth: 'A', serverAddress: 'S', identityToken: 'I', registryToken: 'R' });
    assert.equal(hex(bytes), hex(Buffer.concat([s(3, 'A'), s(4, 'S'), s(5, 'I'), s(6, 'R')])));
  });

  it('ImageStatusRequest sends verbose only when true; RemoveImageRequest wraps the ImageSpec', () => {
    assert.equal(hex(encodeImageStatusRequest('x')), '0a030a0178');
    assert.equal(hex(encodeImageStatusRequest('x', true)), '0a030a01781001');
    assert.equal(hex(encodeRemoveImageRequest('x')), '0a030a0178');
  });

  it('a string longer than 127 bytes gets a two-byte length', () => {
    const long = 'r'.repeat(200);
    const bytes = encodeVersionRequest(long);
    assert.equal(hex(bytes.subarray(0, 3)), '0ac801');
    assert.equal(bytes.length, 203);
  });
});

describe('CRI codec: reading answers', () => {
  it('VersionResponse fields 1-4', () => {
    const v = decodeVersionResponse(Buffer.concat([s(1, '0.1.0'), s(2, 'containerd'), s(3, '1.6.20'), s(4, 'v1')]));
    assert.deepEqual(v, { version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '1.6.20', runtimeApiVersion: 'v1' });
  });

  it('Image: repeated tags and digests, uint64 size past 32 bits, pinned; unknown fields skipped', () => {
    const size = Buffer.from([0x20, 0x80, 0x80, 0x80, 0x80, 0x10]); // field 4 varint = 2^32
    const uid = Buffer.from([0x2a, 0x02, 0x08, 0x00]); // field 5 Int64Value{0}: a message, skipped
    const fixed64 = Buffer.from([0x79, 1, 2, 3, 4, 5, 6, 7, 8]); // field 15, wire 1: unknown
    const img = decodeImage(
      Buffer.concat([s(1, 'sha256:ab'), s(2, 't1'), s(2, 't2'), s(3, 'd1'), size, uid, fixed64, Buffer.from([0x40, 0x01])]),
    );
    assert.deepEqual(img, { id: 'sha256:ab', repoTags: ['t1', 't2'], repoDigests: ['d1'], size: 2 ** 32, username: '', pinned: true });
  });

  it('ImageStatusResponse without field 1 means the image is not present', () => {
    assert.deepEqual(decodeImageStatusResponse(Buffer.alloc(0)), { image: null });
    const inner = s(1, 'sha256:ab');
    const got = decodeImageStatusResponse(Buffer.concat([Buffer.from([0x0a, inner.length]), inner]));
    assert.equal(got.image?.id, 'sha256:ab');
  });

  it('PullImageResponse image_ref', () => {
    assert.deepEqual(decodePullImageResponse(s(1, 'sha256:ff')), { imageRef: 'sha256:ff' });
  });

  it('malformed bytes throw CriCodecError and never read past the buffer', () => {
    const bad = [
      Buffer.from([0x0a, 0x05, 0x61]), // length past the end
      Buffer.from([0x08, 0x80]), // truncated varint
      Buffer.from([0x0b]), // wire type 3 (groups)
      Buffer.from([0x00, 0x00]), // field 0
      Buffer.from([0x08, 0x01]), // field 1 as varint where a string is expected
      Buffer.from([0x79, 1, 2]), // truncated fixed64
      Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 11-byte varint
    ];
    for (const b of bad) assert.throws(() => decodeVersionResponse(b), CriCodecError, hex(b));
  });
});

describe('CRI endpoints', () => {
  it('unix:///path, unix:path and a bare path are unix sockets; other schemes are refused', () => {
    assert.equal(criTarget('unix:///run/containerd/containerd.sock'), 'unix:///run/containerd/containerd.sock');
    assert.equal(criTarget('unix:/run/crio/crio.sock'), 'unix:/run/crio/crio.sock');
    assert.equal(criTarget('/run/crio/crio.sock'), 'unix:///run/crio/crio.sock');
    assert.equal(criTarget('run/x.sock'), 'unix:run/x.sock');
    assert.equal(criTarget('tcp://10.0.0.1:1234'), null);
    assert.equal(criTarget('npipe:////./pipe/containerd-containerd'), null);
    assert.equal(criTarget('unix://'), null);
    assert.equal(criTarget(''), null);
    assert.equal(criSocketPath('unix:///run/x.sock'), '/run/x.sock');
    assert.equal(criSocketPath('/run/x.sock'), '/run/x.sock');
  });
});
