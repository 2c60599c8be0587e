/**
 * Push the lab images (see oci-image.ts) over the registry HTTP API.
 * Runs inside the services namespace (the host has no route into the lab):
 *   ip netns exec <services-ns> node --import tsx test/lab/support/push-image.ts \
 *     HOST ADDRESS CA_FILE
 * Optional Basic credentials come from env PP_PUSH_AUTH ("user:password"), never argv.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labImages, type Blob } from './oci-image.js';

interface Resp {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function pushLabImages(host: string, address: string, ca: string, basic?: string): Promise<string[]> {
  const auth = basic ? { authorization: `Basic ${Buffer.from(basic).toString('base64')}` } : {};
  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Resp> =>
    new Promise((res, rej) => {
      const req = request(
        {
          host: address,
          port: 443,
          servername: host,
          ca,
          method,
          path,
          headers: { host, ...auth, ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
          timeout: 10_000,
        },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks).toString('utf8') }));
          r.on('error', rej);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on('error', rej);
      req.end(body);
    });
  const expect = (r: Resp, ok: number[], what: string): void => {
    if (!ok.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
  };

  const pushBlob = async (repo: string, b: Blob): Promise<void> => {
    const head = await call('HEAD', `/v2/${repo}/blobs/${b.digest}`);
    if (head.status === 200) return;
    const start = await call('POST', `/v2/${repo}/blobs/uploads/`);
    expect(start, [202], `start upload ${repo}`);
    const loc = new URL(String(start.headers['location']), `https://${host}`);
    loc.searchParams.set('digest', b.digest);
    const put = await call('PUT', loc.pathname + loc.search, { 'content-type': 'application/octet-stream' }, b.data);
    expect(put, [201], `upload ${repo} ${b.digest}`);
  };
  const pushManifest = async (repo: string, ref: string, m: Blob): Promise<void> => {
    const r = await call('PUT', `/v2/${repo}/manifests/${ref}`, { 'content-type': m.mediaType }, m.data);
    expect(r, [201], `put manifest ${repo}:${ref}`);
  };

  const pushed: string[] = [];
  for (const img of labImages()) {
    for (const b of img.blobs) await pushBlob(img.repository, b);
    for (const c of img.children) await pushManifest(img.repository, c.digest, c);
    await pushManifest(img.repository, img.tag, img.top);
    pushed.push(`${host}/${img.repository}:${img.tag}@${img.digest}`);
  }
  return pushed;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [host, address, caFile] = process.argv.slice(2);
  if (!host || !address || !caFile) {
    console.error('usage: push-image.ts HOST ADDRESS CA_FILE');
    process.exit(2);
  }
  pushLabImages(host, address, readFileSync(caFile, 'utf8'), process.env['PP_PUSH_AUTH'])
    .then((refs) => {
      for (const r of refs) console.log(r);
    })
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    });
}
