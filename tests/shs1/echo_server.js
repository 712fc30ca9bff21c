#!/usr/bin/env node
'use strict';
// An SHS1 + box-stream echo server built on the npm packages secret-handshake
// and pull-box-stream, the reference peer for privline's SHS1 mode.
//
//   node echo_server.js --network-key HEX --secret HEX [--port PORT]
//
// Listens on 127.0.0.1 (port 0: any free port) and prints
// "listening 127.0.0.1:PORT" on stderr once bound. Accepts every client,
// echoes every byte back through box-stream, and when the client's goodbye
// arrives ends its own stream, which sends the server's goodbye. One line on
// stderr per connection: "accepted <client key hex>", then "closed <client
// key hex>: goodbye both ways" or "failed <address>: <reason>". Serves until
// SIGTERM or SIGINT, then exits 0.

const net = require('net');
const {need, parseArgs, hexArg, keypairFromSecret, oneLine, onEnd} = require('./lib');

const USAGE =
  'usage: node echo_server.js --network-key HEX --secret HEX [--port PORT]\n' +
  '  --network-key HEX  the 32-byte network key, 64 hex digits\n' +
  '  --secret HEX       the server identity: a 64-byte libsodium secret (128 hex\n' +
  '                     digits) or its 32-byte seed (64 hex digits)\n' +
  '  --port PORT        port on 127.0.0.1 (default 0: any free port)\n';

// Milliseconds the handshake (and, in pull-handshake, the first read after
// it) may take; generous, so that a loaded machine does not trip it.
const HANDSHAKE_TIMEOUT_MS = 60000;

const args = parseArgs({'network-key': undefined, secret: undefined, port: '0'}, USAGE);
const networkKey = hexArg(USAGE, 'network-key', args['network-key'], [32]);
const keys = keypairFromSecret(USAGE, 'secret', args.secret);
const port = Number(args.port);
if (!/^[0-9]+$/.test(args.port) || port > 65535) {
  process.stderr.write(`echo_server.js: --port must be 0..65535\n${USAGE}`);
  process.exit(2);
}

const pull = need('pull-stream');
const toPull = need('stream-to-pull-stream');
const shs = need('secret-handshake');

const acceptEveryone = (id, cb) => cb(null, true);
const serverStream = shs.createServer(keys, acceptEveryone, networkKey, HANDSHAKE_TIMEOUT_MS);

function log(line) {
  process.stderr.write(`${line}\n`);
}

const server = net.createServer({allowHalfOpen: true}, socket => {
  const address = `${socket.remoteAddress}:${socket.remotePort}`;
  const cipher = serverStream((err, plain) => {
    if (err) {
      log(`failed ${address}: handshake: ${oneLine(err.message)}`);
      return;
    }
    const client = plain.remote.toString('hex');
    log(`accepted ${client}`);
    // Every box from the client goes straight back. A clean end of the
    // source is the client's goodbye; box-stream then sends ours. An error
    // ends our side without a goodbye.
    pull(
      plain.source,
      onEnd(end => {
        if (end === true) {
          log(`closed ${client}: goodbye both ways`);
        } else {
          log(`failed ${address}: ${oneLine(end.message || end)}`);
        }
      }),
      plain.sink
    );
  });
  const wire = toPull.duplex(socket);
  pull(cipher, wire, cipher);
});

server.on('error', err => {
  log(`echo_server.js: ${oneLine(err.message)}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  const bound = server.address();
  log(`listening ${bound.address}:${bound.port}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
