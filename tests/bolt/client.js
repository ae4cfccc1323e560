'use strict';
// A real SOFARPC Bolt client (sofa-rpc-node, hessian2) for Sluice's tests, connected straight to
// one address (no registry). Prints one JSON line; exits 0 even when calls fail (tests assert on
// the JSON), non-zero only on bad usage or a fixture bug.
//
// Calls:  node client.js --address 127.0.0.1:P [--service com.example.Echo] [--version 1.0]
//           [--method echo] [--arg hello] [--count 1] [--concurrency 1] [--timeout 3000]
//           [--bolt 1|2] [--crc] [--gather N] [--header name=value[,name=value...]]
//   echo: call i sends arg + "-" + i and must get back "<tag>:" + arg + "-" + i, so a response
//         delivered to the wrong call (crossed request ids) is counted in `mismatched`.
//   gather: the same, sending (N, arg + "-" + i): the server holds every call until N are
//         waiting (see server.js).
//   --header adds entries to each request's Bolt header map (sofa-rpc-node's Hessian2
//         requests otherwise carry only `service`), for routing on a raw header.
//   slow: sends Number(arg) (milliseconds); fail: sends no argument; any other method: [arg].
//   --bolt 2 speaks Bolt v2 (--crc adds the CRC32 trailer); the default is Bolt v1.
//   Output: {ok, errors, mismatched, tags: {tag: count}, results: [first 5],
//            errorMessages: [distinct, at most 10], errorNames: [distinct]}
//
// Heartbeat: node client.js --address 127.0.0.1:P --heartbeat [--bolt 2] [--crc] [--timeout ms]
//   sends one Bolt heartbeat (cmdcode 0) on a raw connection and waits for its ack.
//   Output: {heartbeat: "answered" | "timeout" | "closed" | "error", id, ackId, error?}

const net = require('net');
const bolt = require('sofa-bolt-node');
const { RpcClient } = require('sofa-rpc-node').client;
const DynamicConfig = require('sofa-rpc-node/lib/client/dynamic_config');
const { parseArgs, quietLogger } = require('./args');

const args = parseArgs(process.argv.slice(2), {
  address: null,
  service: 'com.example.Echo',
  version: '1.0',
  method: 'echo',
  arg: 'hello',
  count: '1',
  concurrency: '1',
  timeout: '3000',
  bolt: '1',
  crc: false,
  heartbeat: false,
  gather: '1',
  header: null,
});
if (!args.address) {
  process.stderr.write('usage: node client.js --address HOST:PORT [...] (see the header)\n');
  process.exit(2);
}

// The encoder options that pick the wire version; sofa-bolt-node answers in the request's.
function applyVersion(encoder) {
  if (String(args.bolt) === '2') {
    encoder.protocolType = 'bolt2';
    encoder.boltVersion = 2;
    encoder.crcEnable = !!args.crc;
  }
  return encoder;
}

// --header: the request's header map is `service` plus these pairs, written by sofa-bolt-node's
// own map serializer (the Hessian2 server skips the map, so only the proxy reads them).
if (args.header) {
  const extra = {};
  for (const pair of String(args.header).split(',')) {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error('--header wants name=value, got ' + pair);
    extra[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const RpcRequestCommand = require('sofa-bolt-node/lib/protocol/rpc_req_cmd');
  const SimpleMapSerializer = require('sofa-bolt-node/lib/simple_map_serializer');
  const serializeHeader = RpcRequestCommand.prototype.serializeHeader;
  RpcRequestCommand.prototype.serializeHeader = function(byteBuffer) {
    if (this.codecType === 'protobuf') return serializeHeader.call(this, byteBuffer);
    byteBuffer.put(SimpleMapSerializer.encode(Object.assign({ service: this.obj.serverSignature }, extra)));
  };
}

const protocol = Object.assign({}, bolt, {
  encoder: options => applyVersion(bolt.encoder(options)),
});

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function calls() {
  // The client's own circuit breaker would turn server errors into local ones; tests want to
  // see what came over the wire.
  DynamicConfig.instance.circuitBreaker.forceClosed = true;
  const timeout = Number(args.timeout);
  const client = new RpcClient({ logger: quietLogger, protocol });
  client.on('error', () => {});
  const consumer = client.createConsumer({
    interfaceName: args.service,
    version: args.version,
    serverHost: args.address,
    responseTimeout: timeout,
  });
  await consumer.ready();

  const count = Number(args.count);
  const out = { ok: 0, errors: 0, mismatched: 0, tags: {}, results: [], errorMessages: [], errorNames: [] };
  const argsFor = i => {
    if (args.method === 'echo') return [ args.arg + '-' + i ];
    if (args.method === 'gather') return [ Number(args.gather), args.arg + '-' + i ];
    if (args.method === 'slow') return [ Number(args.arg) ];
    if (args.method === 'fail') return [];
    return [ args.arg ];
  };
  const record = (i, result) => {
    out.ok++;
    if (out.results.length < 5) out.results.push(result);
    if (args.method === 'echo' || args.method === 'gather') {
      const suffix = ':' + args.arg + '-' + i;
      if (typeof result !== 'string' || !result.endsWith(suffix)) {
        out.mismatched++;
        return;
      }
      const tag = result.slice(0, result.length - suffix.length);
      out.tags[tag] = (out.tags[tag] || 0) + 1;
    }
  };
  const fail = err => {
    out.errors++;
    const message = String(err && err.message);
    if (out.errorMessages.length < 10 && !out.errorMessages.includes(message)) out.errorMessages.push(message);
    const name = String(err && err.name);
    if (!out.errorNames.includes(name)) out.errorNames.push(name);
  };

  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        record(i, await consumer.invoke(args.method, argsFor(i), { responseTimeout: timeout }));
      } catch (err) {
        fail(err);
      }
    }
  };
  const workers = [];
  for (let w = 0; w < Math.max(1, Number(args.concurrency)); w++) workers.push(worker());
  await Promise.all(workers);
  print(out);
  await client.close();
}

function heartbeat() {
  const [ host, port ] = args.address.split(':');
  const timeout = Number(args.timeout);
  const id = 4242;
  return new Promise(resolve => {
    let done = false;
    const finish = (result, extra) => {
      if (done) return;
      done = true;
      print(Object.assign({ heartbeat: result, id }, extra));
      socket.destroy();
      resolve();
    };
    const socket = net.connect(Number(port), host);
    const encoder = applyVersion(bolt.encoder({}));
    const decoder = bolt.decoder({});
    decoder.on('heartbeat_ack', ack => finish(ack.packetId === id ? 'answered' : 'wrong id', { ackId: ack.packetId }));
    decoder.on('error', err => finish('error', { error: err.message }));
    socket.on('error', err => finish('error', { error: err.message }));
    socket.on('close', () => finish('closed'));
    socket.pipe(decoder);
    encoder.pipe(socket);
    socket.on('connect', () => encoder.writeHeartbeat(id, { timeout: 3000 }));
    setTimeout(() => finish('timeout'), timeout);
  });
}

(args.heartbeat ? heartbeat() : calls()).then(() => process.exit(0), err => {
  process.stderr.write('client: ' + (err && err.stack || err) + '\n');
  process.exit(1);
});
