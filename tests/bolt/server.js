'use strict';
// A real SOFARPC Bolt server (sofa-rpc-node, hessian2) for Sluice's tests, connected to directly
// (no registry). It publishes `com.example.Echo` at the given version with:
//   echo(s)   -> "<tag>:" + s      (the tag tells tests which server answered)
//   fail()    -> throws Error("echo failed on purpose")   (a SERVER_EXCEPTION response)
//   slow(ms)  -> "<tag>:slow:" + ms, after ms milliseconds
//   gather(n, s) -> "<tag>:" + s, once n gather calls are waiting (then all are answered, in
//             reverse order): proves n calls were in flight at once
//   connections() -> "<tag>:connections:" + how many connections the server has accepted
// Usage: node server.js --port P --tag T [--version 1.0]
// Prints "ready" on stdout once listening on 127.0.0.1:P; exits on SIGTERM or SIGINT.

const net = require('net');
const { RpcServer } = require('sofa-rpc-node').server;
const { parseArgs, quietLogger } = require('./args');

const args = parseArgs(process.argv.slice(2), { port: null, tag: 'server', version: '1.0' });
if (!args.port) {
  process.stderr.write('usage: node server.js --port P --tag T [--version 1.0]\n');
  process.exit(2);
}

// sofa-rpc-node listens on every interface; a test peer listens on loopback only.
class LoopbackRpcServer extends RpcServer {
  _startServer(port) {
    const server = net.createServer(socket => {
      accepted++;
      this._handleSocket(socket);
    });
    server.once('error', err => this.emit('error', err));
    server.listen(port, '127.0.0.1');
    return server;
  }
}

// Connections accepted, and the answers of the gather calls waiting for their company.
let accepted = 0;
const gathered = [];

const server = new LoopbackRpcServer({ logger: quietLogger, port: Number(args.port) });
server.addService({ interfaceName: 'com.example.Echo', version: args.version }, {
  async echo(s) {
    return args.tag + ':' + s;
  },
  async fail() {
    const err = new Error('echo failed on purpose');
    err.ignoreLog = true;
    throw err;
  },
  async slow(ms) {
    await new Promise(resolve => setTimeout(resolve, Number(ms)));
    return args.tag + ':slow:' + ms;
  },
  async gather(n, s) {
    return new Promise(resolve => {
      gathered.push(() => resolve(args.tag + ':' + s));
      if (gathered.length >= Number(n)) {
        for (const answer of gathered.splice(0).reverse()) answer();
      }
    });
  },
  async connections() {
    return args.tag + ':connections:' + accepted;
  },
});
// A call to an unknown service or method is answered with an error and also emitted here.
server.on('error', err => quietLogger.error('server error:', err));

for (const signal of [ 'SIGTERM', 'SIGINT' ]) {
  process.on(signal, () => process.exit(0));
}

server.start().then(() => {
  process.stdout.write('ready\n');
}, err => {
  process.stderr.write('server: cannot listen: ' + err.message + '\n');
  process.exit(1);
});
