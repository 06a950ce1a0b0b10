// Interop client: Node's http2 (nghttp2) opens CONNECT tunnels over h2c to the server under test, sends a
// deterministic payload on each, half-closes, and checks that exactly the same bytes come back.
// Usage: node h2c-connect-client.js <port> <streams> <bytesPerStream>
'use strict';
const http2 = require('node:http2');
const crypto = require('node:crypto');

const [port, streams, size] = process.argv.slice(2).map(Number);

function payloadFor(i) {
  // Seeded so a corrupted or misrouted stream is detected, not just a wrong length.
  return crypto.createHash('sha256').update(`stream-${i}`).digest().toString('hex').repeat(Math.ceil(size / 64)).slice(0, size);
}

function runStream(session, i) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'CONNECT', ':authority': `10.0.${i % 250}.1:8080`, 'forwarded': `for="10.1.1.1:${40000 + i}"` });
    const chunks = [];
    let status = 0;
    req.on('response', (headers) => { status = headers[':status']; });
    req.on('data', (c) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      const got = Buffer.concat(chunks).toString('latin1');
      if (status !== 200) return reject(new Error(`stream ${i}: status ${status}`));
      if (got !== payloadFor(i)) return reject(new Error(`stream ${i}: echoed ${got.length} bytes, expected ${size}, content differs`));
      resolve();
    });
    const data = Buffer.from(payloadFor(i), 'latin1');
    let offset = 0;
    (function write() {
      while (offset < data.length) {
        const chunk = data.subarray(offset, offset + 16384);
        offset += chunk.length;
        if (!req.write(chunk)) { req.once('drain', write); return; }
      }
      req.end();
    })();
  });
}

const session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 1 << 20 } });
session.on('error', (e) => { console.error('session error', e); process.exit(2); });
const all = [];
for (let i = 0; i < streams; i++) all.push(runStream(session, i));
Promise.all(all).then(() => {
  console.log(JSON.stringify({ ok: true, streams }));
  session.close(() => process.exit(0));
}, (e) => { console.error(String(e)); process.exit(1); });
