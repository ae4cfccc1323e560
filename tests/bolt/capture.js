'use strict';
// Records the bytes sofa-rpc-node puts on the wire, for the codec's test vectors
// (crates/sluice-xprotocol/src/bolt/tests/vectors.rs). Starts server.js, puts a tee between it
// and client.js for a few scenarios, and prints one JSON line per Bolt frame:
//   {"scenario": "...", "from": "client" | "server", "hex": "..."}
// Usage: node capture.js [--port 23456]   (the tee listens on port, the server on port + 1)

const net = require('net');
const path = require('path');
const { spawn, execFile } = require('child_process');
const { promisify } = require('util');
const { parseArgs } = require('./args');

const args = parseArgs(process.argv.slice(2), { port: '23456' });
const teePort = Number(args.port);
const serverPort = teePort + 1;

// The length of the frame at the front of `buf`, or 0 if its fixed header is incomplete.
function frameLength(buf) {
  if (buf.length < 1) return 0;
  if (buf[0] === 1) {
    const response = buf[1] === 0;
    const fixed = response ? 20 : 22;
    if (buf.length < fixed) return 0;
    const at = response ? 12 : 14;
    return fixed + buf.readUInt16BE(at) + buf.readUInt16BE(at + 2) + buf.readUInt32BE(at + 4);
  }
  if (buf[0] === 2) {
    const response = buf[2] === 0;
    const fixed = response ? 22 : 24;
    if (buf.length < fixed) return 0;
    const at = response ? 14 : 16;
    const crc = buf[1] === 2 && (buf[11] & 1) ? 4 : 0;
    return fixed + buf.readUInt16BE(at) + buf.readUInt16BE(at + 2) + buf.readUInt32BE(at + 4) + crc;
  }
  throw new Error('not a Bolt frame: ' + buf.slice(0, 8).toString('hex'));
}

let scenario = 'none';
function splitter(from) {
  let pending = Buffer.alloc(0);
  return chunk => {
    pending = Buffer.concat([ pending, chunk ]);
    for (;;) {
      const len = frameLength(pending);
      if (len === 0 || pending.length < len) return;
      process.stdout.write(JSON.stringify({ scenario, from, hex: pending.slice(0, len).toString('hex') }) + '\n');
      pending = pending.slice(len);
    }
  };
}

const tee = net.createServer(downstream => {
  const upstream = net.connect(serverPort, '127.0.0.1');
  const fromClient = splitter('client');
  const fromServer = splitter('server');
  downstream.on('data', d => { fromClient(d); upstream.write(d); });
  upstream.on('data', d => { fromServer(d); downstream.write(d); });
  downstream.on('close', () => upstream.destroy());
  upstream.on('close', () => downstream.destroy());
  downstream.on('error', () => {});
  upstream.on('error', () => {});
});

const server = spawn(process.execPath, [ path.join(__dirname, 'server.js'), '--port', String(serverPort), '--tag', 'cap' ],
  { stdio: [ 'ignore', 'pipe', 'inherit' ] });
server.stdout.once('data', () => {
  tee.listen(teePort, '127.0.0.1', () => {
    const client = path.join(__dirname, 'client.js');
    // Asynchronous: the tee runs in this process, so the client must not block its loop.
    const run = async (name, extra) => {
      scenario = name;
      await promisify(execFile)(process.execPath, [ client, '--address', '127.0.0.1:' + teePort ].concat(extra));
    };
    (async () => {
      await run('v1_echo', [ '--arg', 'hi' ]);
      await run('v1_fail', [ '--method', 'fail' ]);
      await run('v1_heartbeat', [ '--heartbeat' ]);
      await run('v2_crc_echo', [ '--arg', 'hi', '--bolt', '2', '--crc' ]);
      await run('v2_echo', [ '--arg', 'hi', '--bolt', '2' ]);
      await run('v2_crc_heartbeat', [ '--heartbeat', '--bolt', '2', '--crc' ]);
    })().catch(err => {
      process.stderr.write('capture: ' + err.stack + '\n');
      process.exitCode = 1;
    }).finally(() => {
      server.kill();
      tee.close();
    });
  });
});
