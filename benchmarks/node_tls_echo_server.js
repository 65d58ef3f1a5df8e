#!/usr/bin/env node
// node_tls_echo_server — the Node.js reference TLS echo server for the benchmarks: tls +
// socket.pipe, Node's defaults otherwise (protocol versions, ciphers, session tickets).
//
//   node node_tls_echo_server.js --cert FILE --key FILE [--port N] [--host 127.0.0.1]
//
// --port 0 (the default) picks an ephemeral port. Once listening it prints exactly one line,
// "listening on <host>:<port>", and exits 0 on SIGINT or SIGTERM. Accepted sockets get
// TCP_NODELAY, as the other servers compared do.
'use strict';

const fs = require('fs');
const tls = require('tls');

function usage() {
  process.stderr.write(
    'usage: node_tls_echo_server.js --cert FILE --key FILE [--port N] [--host 127.0.0.1]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { host: '127.0.0.1', port: 0, cert: '', key: '' };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage();
    if (flag === '--host') options.host = value;
    else if (flag === '--port') options.port = Number.parseInt(value, 10);
    else if (flag === '--cert') options.cert = value;
    else if (flag === '--key') options.key = value;
    else usage();
  }
  if (!options.cert || !options.key) usage();
  return options;
}

const options = parseArgs(process.argv.slice(2));

const server = tls.createServer(
  { cert: fs.readFileSync(options.cert), key: fs.readFileSync(options.key), noDelay: true },
  (socket) => {
    // A client that resets the connection must not bring the server down.
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
server.on('tlsClientError', () => {});

server.on('error', (err) => {
  process.stderr.write(`node_tls_echo_server: ${err.message}\n`);
  process.exit(1);
});

server.listen(options.port, options.host, () => {
  process.stdout.write(`listening on ${options.host}:${server.address().port}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
