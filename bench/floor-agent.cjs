/**
 * The runtime's memory floor for the agent (issue 10): a Node process that
 * loads what any agent of this design loads (the parts of undici pullprobe
 * uses, prom-client with a registry, pino with a logger), builds one TLS
 * context from Node's root certificates (as many as a node's trust
 * store), serves HTTP on loopback and then idles.
 * It probes nothing. Its resident memory next to the agent's splits what the
 * runtime and the chosen libraries hold from what pullprobe adds.
 *
 *   node bench/floor-agent.cjs
 *
 * Prints "ready" once it serves.
 */
'use strict';
const http = require('node:http');
const tls = require('node:tls');
const process = require('node:process');

const held = [
  require('undici/lib/dispatcher/agent.js'),
  require('undici/lib/dispatcher/client.js'),
  require('undici/lib/api/index.js'),
  require('undici/lib/core/connect.js'),
  new (require('prom-client').Registry)(),
  require('pino')({ level: 'info' }),
  tls.createSecureContext({ ca: tls.rootCertificates }),
];
const server = http.createServer((_req, res) => res.end(`${held.length}\n`));
server.listen(0, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
