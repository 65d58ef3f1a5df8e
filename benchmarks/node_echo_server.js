#!/usr/bin/env node
// node_echo_server — the Node.js reference echo server for the benchmarks: net + socket.pipe.
//
//   node node_echo_server.js [--port N] [--host 127.0.0.1]
//
// --port 0 (the default) picks an ephemeral port. Once listening it prints exactly one line,
// "listening on <host>:<port>", and exits 0 on SIGINT or SIGTERM. Accepted sockets get
// TCP_NODELAY, as the other servers compared do.
'use strict';

const net = require('net');

function parseArgs(argv) {
  const options = { host: '127.0.0.1', port: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined || (flag !== '--port' && flag !== '--host')) {
      process.stderr.write('usage: node_echo_server.js [--port N] [--host 127.0.0.1]\n');
      process.exit(2);
    }
    if (flag === '--host') options.host = value;
    else options.port = Number.parseInt(value, 10);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));

const server = net.createServer({ noDelay: true }, (socket) => {
  // A client that resets the connection must not bring the server down.
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});

server.on('error', (err) => {
  process.stderr.write(`node_echo_server: ${err.message}\n`);
  process.exit(1);
});

server.listen(options.port, options.host, () => {
  process.stdout.write(`listening on ${options.host}:${server.address().port}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
