// Interop server: Node's http2 (nghttp2) accepts CONNECT tunnels over h2c and echoes every byte back, so the client
// under test can be checked against an independent implementation. Prints the listening port on stdout.
// Usage: node h2c-connect-server.js
'use strict';
const http2 = require('node:http2');

const server = http2.createServer({ settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: 100 } });
server.on('stream', (stream, headers) => {
  if (headers[':method'] !== 'CONNECT' || !headers[':authority']) {
    stream.respond({ ':status': 400 }, { endStream: true });
    return;
  }
  stream.respond({ ':status': 200, 'x-authority': headers[':authority'] });
  stream.pipe(stream); // echo, ends our side when the client half-closes
  stream.on('error', () => {});
});
server.on('sessionError', (e) => console.error('session error', e));
server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
process.stdin.on('end', () => process.exit(0)); // the test closes stdin to stop us
process.stdin.resume();
