/**
 * Runs test/support/fake-apiserver.ts as its own process, so it can live
 * inside a lab node namespace next to the agent (the test process has no link
 * into the lab). No real API server can run on this machine; this one
 * enforces what the real one does for the agent's calls.
 *
 *   node --import tsx apiserver-main.ts DIR NODE_NAME NODE_IP ZONE
 *
 * Writes DIR/sa/{token,ca.crt,namespace} (a service-account directory as the
 * kubelet projects it), DIR/ready.json {url}, and DIR/state.json (node,
 * events, requests without tokens) after every request. When the test writes
 * DIR/pods.json (an array of Pod objects), the server's Pods follow it: new or
 * changed ones are stored (watchers see ADDED/MODIFIED), missing ones deleted.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createCA } from '../../support/certs.js';
import { FakeApiServer } from '../../support/fake-apiserver.js';

const [dir, node, ip, zone] = process.argv.slice(2);
if (!dir || !node || !ip || !zone) {
  process.stderr.write('usage: apiserver-main.ts DIR NODE_NAME NODE_IP ZONE\n');
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
  const state = {
    node: api.node(node),
    events: api.events,
    requests: api.requests.map((r) => ({ ...r, token: undefined })), // the token is never written out (JSON drops undefined)
  };
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
