// Drives the hub with Node's ioredis client: PING, SUBSCRIBE, PSUBSCRIBE, PUBLISH with a binary
// payload, PUBSUB NUMSUB, a work queue (LPUSH, BLMOVE, LREM, BRPOP, BLPOP's timeout), then
// SIGTERM and exit status 0. With --tls, all of it over TLS with ioredis's `tls` option and a
// client certificate (the hub's default --tls-auth-clients yes), and a client without one is
// refused; the certificates are made here with openssl.
//   node hub_ioredis_test.js <hub binary> [--tls]   (ioredis on NODE_PATH; exit 77 = skipped)
'use strict';
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
let Redis;
try {
  Redis = require('ioredis');
} catch {
  console.log('skipped: ioredis is not installed (.ci/run installs it)');
  process.exit(77);
}

// A CA, and a server (localhost) and a client certificate it signs.
function makeCertificates(dir) {
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj',
          '/CN=hub test CA');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const name of ['server', 'client']) {
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', 'san.ext');
  }
  const read = (name) => fs.readFileSync(path.join(dir, name));
  return { ca: read('ca.pem'), cert: read('client.pem'), key: read('client.key') };
}

const tls = process.argv[3] === '--tls';
const dir = tls ? fs.mkdtempSync(path.join(os.tmpdir(), 'hub-ioredis-')) : null;
const pem = tls ? makeCertificates(dir) : null;
const hub = spawn(process.argv[2], ['--port', '0', '--host', '127.0.0.1', ...(tls ? [
  '--tls-port', '0', '--tls-cert-file', path.join(dir, 'server.pem'), '--tls-key-file',
  path.join(dir, 'server.key'), '--tls-ca-cert-file', path.join(dir, 'ca.pem')] : [])]);
const cleanUp = () => dir && fs.rmSync(dir, { recursive: true, force: true });
const fail = (why) => {
  console.error('FAILED:', why);
  hub.kill('SIGKILL');
  cleanUp();
  process.exit(1);
};
setTimeout(() => fail('timed out'), 20000).unref();

// The plain listener's line, then with --tls the TLS listener's: the port to test.
let out = '';
hub.stdout.on('data', (chunk) => {
  out += chunk;
  const match = tls ? /^listening on .+:\d+\nlistening for TLS on (.+):(\d+)\n/.exec(out)
                    : /^listening on (.+):(\d+)\n/.exec(out);
  if (match && !hub.started) {
    hub.started = true;
    run(match[1], Number(match[2])).catch(fail);
  }
});

async function run(host, port) {
  const options = { host, port, enableReadyCheck: false, maxRetriesPerRequest: 1 };
  if (tls) {
    // Without a client certificate: refused (the handshake's alert, or the close after it).
    const stranger = new Redis({ ...options, tls: { ca: pem.ca, servername: 'localhost' },
                                 retryStrategy: () => null, lazyConnect: true });
    stranger.on('error', () => {});
    // Bounded: in about 1 run in 100 ioredis neither resolves nor rejects here, although the
    // hub has closed the connection (the socket sits in CLOSE-WAIT on the client's side).
    const refused = await Promise.race([
      stranger.connect().then(() => stranger.ping()).then(
          (reply) => `served: ${reply}`, (error) => error.message),
      new Promise((resolve) => setTimeout(() => resolve('no reply'), 3000).unref())]);
    if (refused.startsWith('served')) fail(`a client without a certificate was ${refused}`);
    stranger.disconnect();
    options.tls = { ca: pem.ca, cert: pem.cert, key: pem.key, servername: 'localhost' };
  }
  const sub = new Redis(options);
  const pub = new Redis(options);
  if ((await pub.ping()) !== 'PONG') fail('PING');
  if ((await pub.echo('hi')) !== 'hi') fail('ECHO');

  const payload = Buffer.from([0, 13, 10, 255, 42]);
  const received = new Promise((resolve) => {
    const got = {};
    sub.on('messageBuffer', (channel, message) => { got.message = [channel.toString(), message]; });
    sub.on('pmessageBuffer', (pattern, channel, message) => {
      got.pmessage = [pattern.toString(), channel.toString(), message];
    });
    const check = setInterval(() => {
      if (got.message && got.pmessage) {
        clearInterval(check);
        resolve(got);
      }
    }, 5);
  });
  if ((await sub.subscribe('news', 'sport')) !== 2) fail('SUBSCRIBE count');
  if ((await sub.psubscribe('n*')) !== 3) fail('PSUBSCRIBE count');
  const numsub = await pub.pubsub('NUMSUB', 'news', 'weather');
  if (JSON.stringify(numsub) !== JSON.stringify(['news', 1, 'weather', 0])) fail(`NUMSUB ${numsub}`);
  if ((await pub.publish('news', payload)) !== 2) fail('PUBLISH receivers');
  const got = await received;
  if (got.message[0] !== 'news' || !got.message[1].equals(payload)) fail('message');
  if (got.pmessage[0] !== 'n*' || got.pmessage[1] !== 'news' || !got.pmessage[2].equals(payload))
    fail('pmessage');
  await sub.quit();

  // A work queue: a worker's BLMOVE gets the job a producer pushes; LREM acknowledges it.
  const worker = new Redis(options);
  const taken = worker.blmove('jobs', 'processing', 'RIGHT', 'LEFT', 0);
  if ((await pub.lpush('jobs', 'job-1', 'job-2')) !== 2) fail('LPUSH');
  if ((await taken) !== 'job-1') fail('BLMOVE');
  if ((await pub.lrange('processing', 0, -1)).join() !== 'job-1') fail('LRANGE processing');
  if ((await pub.lrem('processing', 1, 'job-1')) !== 1) fail('LREM');
  const popped = await worker.brpop('jobs', 0.5);
  if (JSON.stringify(popped) !== JSON.stringify(['jobs', 'job-2'])) fail(`BRPOP ${popped}`);
  if ((await worker.blpop('jobs', 0.05)) !== null) fail('BLPOP timeout');
  await worker.quit();
  await pub.quit();

  hub.kill('SIGTERM');
  hub.on('exit', (code) => {
    if (code !== 0) fail(`hub exited with ${code}`);
    cleanUp();
    console.log(tls ? 'hub with ioredis over TLS: ok' : 'hub with ioredis: ok');
    process.exit(0);
  });
}
