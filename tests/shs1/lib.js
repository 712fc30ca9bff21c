'use strict';
// Helpers shared by the Node peers of tests/shs1: finding the npm packages
// that install.sh put into target/shs1-node/, argument parsing, and keys.
//
// The packages live outside the source tree, so they are loaded with a
// require() rooted at that directory (SHS1_NODE_DIR overrides it).

const fs = require('fs');
const path = require('path');
const {createRequire} = require('module');

const ROOT = path.resolve(__dirname, '..', '..');
const NODE_DIR = process.env.SHS1_NODE_DIR || path.join(ROOT, 'target', 'shs1-node');

let requireInstalled = null;

function need(name) {
  if (requireInstalled === null) {
    const manifest = path.join(NODE_DIR, 'package.json');
    if (!fs.existsSync(path.join(NODE_DIR, 'node_modules'))) {
      process.stderr.write(
        `${path.basename(process.argv[1])}: the npm packages are not installed in ${NODE_DIR}: ` +
        'run tests/shs1/install.sh\n');
      process.exit(2);
    }
    requireInstalled = createRequire(manifest);
  }
  return requireInstalled(name);
}

function usageError(usage, message) {
  process.stderr.write(`${path.basename(process.argv[1])}: ${message}\n${usage}`);
  process.exit(2);
}

// Parses `--name value` pairs. `spec` maps each option name (without the
// dashes) to its default, or to undefined when it is required.
function parseArgs(spec, usage, argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(usage);
      process.exit(0);
    }
    const name = flag.startsWith('--') ? flag.slice(2) : null;
    if (name === null || !Object.prototype.hasOwnProperty.call(spec, name)) {
      usageError(usage, `unknown argument ${flag}`);
    }
    if (i + 1 >= argv.length) {
      usageError(usage, `missing value after ${flag}`);
    }
    if (Object.prototype.hasOwnProperty.call(out, name)) {
      usageError(usage, `${flag} given twice`);
    }
    out[name] = argv[i + 1];
  }
  for (const [name, fallback] of Object.entries(spec)) {
    if (!Object.prototype.hasOwnProperty.call(out, name)) {
      if (fallback === undefined) {
        usageError(usage, `--${name} is required`);
      }
      out[name] = fallback;
    }
  }
  return out;
}

// Hex of exactly one of `lengths` bytes, else a usage error.
function hexArg(usage, name, text, lengths) {
  if (!/^([0-9a-fA-F]{2})*$/.test(text) || !lengths.includes(text.length / 2)) {
    usageError(usage, `--${name} must be ${lengths.map(n => `${2 * n}`).join(' or ')} hex digits`);
  }
  return Buffer.from(text, 'hex');
}

// An ed25519 key pair in the form secret-handshake wants ({publicKey,
// secretKey} with a 64-byte libsodium secret) from a 32-byte seed or a
// 64-byte libsodium secret (seed || public); the public half must match.
function keypairFromSecret(usage, name, text) {
  const sodium = need('chloride');
  const bytes = hexArg(usage, name, text, [32, 64]);
  const pair = sodium.crypto_sign_seed_keypair(bytes.subarray(0, 32));
  if (bytes.length === 64 && !bytes.subarray(32).equals(pair.publicKey)) {
    usageError(usage, `--${name}: the public half does not belong to the seed half`);
  }
  return {publicKey: Buffer.from(pair.publicKey), secretKey: Buffer.from(pair.secretKey)};
}

function oneLine(text) {
  return String(text).replace(/\s*\n\s*/g, ' ').trim();
}

// A pull-stream through that reports how its source ended: report(true) for
// a clean end, report(error) otherwise. Data passes unchanged.
function onEnd(report) {
  let reported = false;
  return read => (abort, cb) => {
    read(abort, (end, data) => {
      if (end && !reported) {
        reported = true;
        report(end);
      }
      cb(end, data);
    });
  };
}

module.exports = {ROOT, NODE_DIR, need, parseArgs, hexArg, keypairFromSecret, oneLine, onEnd, usageError};
