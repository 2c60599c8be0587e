/**
 * The runtime's floor for a one-shot probe (issue 10): the wire steps of
 * `pullprobe probe` for one image, written with Node's built-ins and nothing
 * else. A and AAAA on one UDP socket to the first nameserver of the node's
 * resolv.conf, TCP and TLS to the first address (Node's root certificates and the
 * registry's CA), one manifest HEAD with the Accept list it is given (the bench
 * passes pullprobe's own). No configuration files, no credentials,
 * no classification, no libraries: no Node program that does these steps can
 * be faster, so its wall time next to `pullprobe probe` splits what the
 * runtime costs from what pullprobe adds.
 *
 * With --undici, the HEAD goes through undici's Client (the parts pullprobe
 * loads) on the same verified socket: the floor of this design, whose HTTP
 * library is undici.
 *
 *   node bench/floor-probe.cjs [--undici] RESOLV_CONF CA_FILE HOST /v2/REPO/manifests/REF ACCEPT
 *
 * Prints the status; exits 0 only on a 200.
 */
'use strict';
const { readFileSync } = require('node:fs');
const dgram = require('node:dgram');
const tls = require('node:tls');
const process = require('node:process');
const { Buffer } = require('node:buffer');
const { setTimeout } = require('node:timers');

const args = process.argv.slice(2);
const viaUndici = args[0] === '--undici';
const [resolvConf, caFile, host, path, accept] = viaUndici ? args.slice(1) : args;
if (!resolvConf || !caFile || !host || !path || !accept) {
  process.stderr.write('usage: floor-probe.cjs [--undici] RESOLV_CONF CA_FILE HOST /v2/REPO/manifests/REF ACCEPT\n');
  process.exit(2);
}

function fail(message) {
  process.stderr.write(`floor-probe: ${message}\n`);
  process.exit(1);
}
setTimeout(() => fail('no answer within 5 s'), 5000).unref();

const nameserver = /^\s*nameserver\s+(\S+)/m.exec(readFileSync(resolvConf, 'utf8'))?.[1];
if (!nameserver) fail(`no nameserver in ${resolvConf}`);

/** A DNS question for host, of the given type (1 = A, 28 = AAAA). */
function question(id, type) {
  const name = host.split('.').flatMap((label) => [Buffer.from([label.length]), Buffer.from(label, 'ascii')]);
  const header = Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...name, Buffer.from([0, 0, type, 0, 1])]);
}

/** The first A record of an answer, if any. */
function firstA(msg) {
  let o = 12;
  while (msg[o] !== 0) o += msg[o] + 1;
  o += 5;
  for (let n = msg.readUInt16BE(6); n > 0; n--) {
    o += (msg[o] & 0xc0) === 0xc0 ? 2 : msg.indexOf(0, o) + 1 - o;
    const type = msg.readUInt16BE(o);
    const len = msg.readUInt16BE(o + 8);
    if (type === 1 && len === 4) return Array.from(msg.subarray(o + 10, o + 14)).join('.');
    o += 10 + len;
  }
  return undefined;
}

const socket = dgram.createSocket(nameserver.includes(':') ? 'udp6' : 'udp4');
let answers = 0;
let address;
socket.on('message', (msg) => {
  address ??= firstA(msg);
  if (++answers < 2) return;
  socket.close();
  if (!address) fail(`${host}: no A record`);
  fetchManifestHead(address);
});
socket.on('error', (err) => fail(`DNS: ${err.message}`));
socket.connect(53, nameserver, () => {
  socket.send(question(1, 1));
  socket.send(question(2, 28));
});

function done(status) {
  process.stdout.write(`${status}\n`);
  process.exit(/^(HTTP\/1\.1 )?200\b/.test(status) ? 0 : 1);
}

function fetchManifestHead(ip) {
  const ca = [...tls.rootCertificates, readFileSync(caFile, 'utf8')];
  const onError = (err) => fail(`${ip}:443: ${err.message}`);
  const conn = tls.connect({ host: ip, port: 443, servername: host, ca }, () => {
    // undici watches the socket it is handed (and ends it with an informational error).
    if (viaUndici) return headWithUndici(conn.off('error', onError));
    conn.write(`HEAD ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: ${accept}\r\n\r\n`);
    conn.once('data', (data) => {
      conn.destroy();
      done(data.toString('latin1').split('\r\n', 1)[0]);
    });
  });
  conn.on('error', onError);
}

function headWithUndici(conn) {
  // As pullprobe's CLI does: no optimising compile of undici's WebAssembly parser for process.exit to wait on.
  require('node:v8').setFlagsFromString('--wasm-tiering-budget=2000000000');
  const Client = require('undici/lib/dispatcher/client.js');
  Object.assign(require('undici/lib/dispatcher/dispatcher.js').prototype, require('undici/lib/api/index.js'));
  const client = new Client(`https://${host}`, {
    // Asynchronously, as a real dial: undici's connect loop is not re-entrant.
    connect: (_opts, cb) => process.nextTick(() => cb(null, conn)),
  });
  client.request({ path, method: 'HEAD', headers: { accept } }).then(
    (res) => {
      res.body.resume();
      done(String(res.statusCode));
    },
    (err) => fail(`HEAD: ${err.message}`),
  );
}
