#!/usr/bin/env node
'use strict';
// An SHS1 + box-stream client built on the npm packages secret-handshake and
// pull-box-stream, the reference peer for privline's SHS1 mode.
//
//   node client.js --connect HOST:PORT --network-key HEX --secret HEX --server-key HEX
//
// Runs the handshake with the server whose public key is --server-key, sends
// all of stdin through box-stream, then its goodbye, and writes everything
// the server sends to stdout. Exits 0 only when stdin was sent with our
// goodbye after it, and the server's goodbye arrived (the stream ended
// cleanly both ways). Otherwise exits 1 with one line on stderr: the
// handshake failed, the connection broke, the server hung up without its
// goodbye (truncated), or a box did not open. Bad arguments exit 2.

const net = require('net');
const {need, parseArgs, hexArg, keypairFromSecret, oneLine, onEnd, usageError} = require('./lib');

const USAGE =
  'usage: node client.js --connect HOST:PORT --network-key HEX --secret HEX --server-key HEX\n' +
  '  --connect HOST:PORT  the server\'s address\n' +
  '  --network-key HEX    the 32-byte network key, 64 hex digits\n' +
  '  --secret HEX         this client\'s identity: a 64-byte libsodium secret\n' +
  '                       (128 hex digits) or its 32-byte seed (64 hex digits)\n' +
  '  --server-key HEX     the server\'s ed25519 public key, 64 hex digits\n';

// Milliseconds the handshake (and, in pull-handshake, the first read after
// it) may take; generous, so that a loaded machine does not trip it.
const HANDSHAKE_TIMEOUT_MS = 60000;

const args = parseArgs(
  {connect: undefined, 'network-key': undefined, secret: undefined, 'server-key': undefined}, USAGE);
const networkKey = hexArg(USAGE, 'network-key', args['network-key'], [32]);
const keys = keypairFromSecret(USAGE, 'secret', args.secret);
const serverKey = hexArg(USAGE, 'server-key', args['server-key'], [32]);
const target = /^\[?([^\]]+?)\]?:([0-9]{1,5})$/.exec(args.connect);
if (!target || Number(target[2]) > 65535) {
  usageError(USAGE, '--connect must be HOST:PORT');
}

const pull = need('pull-stream');
const toPull = need('stream-to-pull-stream');
const shs = need('secret-handshake');

let finished = false;

function exitWith(code) {
  if (finished) {
    return;
  }
  finished = true;
  // stdout may be a pipe: let what was written drain before exiting.
  process.stdout.write('', () => process.exit(code));
}

let socketError = null;

function fail(reason) {
  if (finished) {
    return;
  }
  const detail = socketError ? ` (${oneLine(socketError.message)})` : '';
  process.stderr.write(`${oneLine(reason)}${detail}\n`);
  exitWith(1);
}

const socket = net.connect({host: target[1], port: Number(target[2]), allowHalfOpen: true});
socket.on('error', err => {
  socketError = socketError || err;
});

let goodbyeReceived = false; // the server's box stream ended with its goodbye
let inputEnded = false; // stdin ended cleanly, so box-stream wrote our goodbye
let goodbyeSent = false; // ... and the socket flushed it and ended its write side

function maybeDone() {
  if (goodbyeReceived && inputEnded && goodbyeSent) {
    exitWith(0);
  }
}

const clientStream = shs.createClient(keys, networkKey, HANDSHAKE_TIMEOUT_MS);
const cipher = clientStream(serverKey, (err, plain) => {
  if (err) {
    fail(`handshake failed: ${err.message}`);
    return;
  }
  // What the server sends, box by box, to stdout. pull-box-stream ends
  // this source cleanly only on the goodbye header; a hang-up before it
  // ("stream ended with: N but wanted: M") or a box that does not open is
  // an error.
  pull(
    plain.source,
    pull.drain(
      chunk => {
        process.stdout.write(chunk);
      },
      end => {
        if (end) {
          const message = oneLine(end.message || end);
          if (/^stream ended with|^unexpected hangup/.test(message)) {
            fail(`truncated: the server's stream ended without its goodbye (${message})`);
          } else {
            fail(`stream failed: ${message}`);
          }
          return;
        }
        goodbyeReceived = true;
        maybeDone();
      }
    )
  );
  // stdin through box-stream; its clean end makes box-stream write the goodbye.
  pull(
    toPull.source(process.stdin),
    onEnd(end => {
      if (end === true) {
        inputEnded = true;
        maybeDone();
      } else {
        fail(`reading stdin failed: ${oneLine(end.message || end)}`);
      }
    }),
    plain.sink
  );
});

// The socket sink reports when it is done: null after the write side was
// ended and flushed ('finish'), or the error that stopped it.
const wire = toPull.duplex(socket, err => {
  if (err) {
    fail(`sending failed: ${oneLine(err.message || err)}`);
    return;
  }
  if (!socket.writableFinished) {
    fail('sending failed: the connection closed before our goodbye was sent');
    return;
  }
  goodbyeSent = true;
  maybeDone();
});
pull(cipher, wire, cipher);
