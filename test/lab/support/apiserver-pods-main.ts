/**
 * apiserver-main.ts plus Pods: the same loopback fake API server as its own
 * process inside a lab node namespace, which also keeps its Pods in step with
 * DIR/pods.json (an array of Pod objects the test rewrites): new or changed
 * ones are stored (watchers see ADDED/MODIFIED), missing ones deleted.
 *
 *   node --import tsx apiserver-pods-main.ts DIR NODE_NAME NODE_IP ZONE
 *
 * Writes DIR/sa/{token,ca.crt,namespace}, DIR/ready.json {url} and
 * DIR/state.json (node, events, requests without tokens).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createCA } from '../../support/certs.js';
import { FakeApiServer } from '../../support/fake-apiserver.js';

const [dir, node, ip, zone] = process.argv.slice(2);
if (!dir || !node || !ip || !zone) {
  process.stderr.write('usage: apiserver-pods-main.ts DIR NODE_NAME NODE_IP ZONE\n');
  process.exit(2);
}
const sa = join(dir, 'sa');
mkdirSync(sa, { recursive: true });
const ca = createCA('pullprobe lab apiserver CA', join(dir, 'ca'));
writeFileSync(join(sa, 'ca.crt'), ca.cert);
writeFileSync(join(sa, 'token'), randomBytes(24).toString('base64url'), { mode: 0o600 });
writeFileSync(join(sa, 'namespace'), 'pullprobe');

const api = await FakeApiServer.start({
  ca,
  tokenFile: join(sa, 'token'),
  nodes: [
    {
      metadata: { name: node, uid: `uid-${node}`, labels: { 'topology.kubernetes.io/zone': zone }, annotations: {} },
      status: { addresses: [{ type: 'InternalIP', address: ip }], conditions: [{ type: 'Ready', status: 'True' }] },
    },
  ],
});

type Pod = { metadata: { name: string; namespace: string } } & Record<string, unknown>;
let podsText = '';
let pods = new Map<string, string>();
const syncPods = (): void => {
  const file = join(dir, 'pods.json');
  if (!existsSync(file)) return;
  const text = readFileSync(file, 'utf8');
  if (text === podsText) return;
  podsText = text;
  const next = new Map<string, string>();
  for (const p of JSON.parse(text) as Pod[]) next.set(`${p.metadata.namespace}/${p.metadata.name}`, JSON.stringify(p));
  for (const [key, json] of next) if (pods.get(key) !== json) api.put(JSON.parse(json) as Pod);
  for (const key of pods.keys()) {
    if (next.has(key)) continue;
    const [ns, name] = key.split('/');
    api.deletePod(ns ?? '', name ?? '');
  }
  pods = next;
};

let seen = -1;
const dump = (): void => {
  syncPods();
  if (api.requests.length === seen) return;
  seen = api.requests.length;
  const state = { node: api.node(node), events: api.events, requests: api.requests.map((r) => ({ ...r, token: undefined })) };
  writeFileSync(join(dir, 'state.json.tmp'), JSON.stringify(state));
  renameSync(join(dir, 'state.json.tmp'), join(dir, 'state.json'));
};
const timer = setInterval(dump, 100);
writeFileSync(join(dir, 'ready.json'), JSON.stringify({ url: api.url }));

const stop = (): void => {
  clearInterval(timer);
  dump();
  void api.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
