#!/usr/bin/env node
'use strict';
// Prints an ed25519 identity for the SHS1 tests as one line of JSON:
//   {"seed": 64 hex, "secret": 128 hex (libsodium: seed || public), "public": 64 hex}
//
//   node keys.js              a new random identity (chloride, i.e. libsodium)
//   node keys.js --seed HEX   the identity of that 32-byte seed

const {need, parseArgs, hexArg} = require('./lib');

const USAGE =
  'usage: node keys.js [--seed HEX]\n' +
  '  --seed HEX  derive the identity from this 32-byte seed (64 hex digits)\n' +
  '              instead of generating a new one\n';

const args = parseArgs({seed: null}, USAGE);
const sodium = need('chloride');

let seed;
if (args.seed === null) {
  seed = Buffer.alloc(32);
  sodium.randombytes(seed);
} else {
  seed = hexArg(USAGE, 'seed', args.seed, [32]);
}
const pair = sodium.crypto_sign_seed_keypair(seed);
const secret = Buffer.from(pair.secretKey);
if (!secret.subarray(0, 32).equals(seed) || !secret.subarray(32).equals(Buffer.from(pair.publicKey))) {
  process.stderr.write('keys.js: unexpected libsodium secret key layout\n');
  process.exit(1);
}
process.stdout.write(JSON.stringify({
  seed: seed.toString('hex'),
  secret: secret.toString('hex'),
  public: Buffer.from(pair.publicKey).toString('hex')
}) + '\n');
