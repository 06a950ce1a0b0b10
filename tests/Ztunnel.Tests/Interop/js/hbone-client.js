'use strict';
// An HBONE client built on Node's own http2 module (nghttp2 underneath): an implementation of HTTP/2, TLS and
// HPACK that shares no code with the agent. Reads one JSON job from argv[2], runs every request in it on ONE
// HTTP/2 session concurrently, and prints one JSON report on stdout. It never decides pass/fail; the C# test does.
//
// job: { url, ca, cert, key, timeoutMs, requests: [{ method, authority, path?, payloadSize? }] }
// report: { alpn, authorized, requests: [{ status, rstCode, error, sent, received, intact, ended }] }
const http2 = require('node:http2');
const fs = require('node:fs');
const crypto = require('node:crypto');

const job = JSON.parse(process.argv[2]);
const report = { alpn: null, authorized: null, sessionError: null, requests: [] };

const finish = (code) => {
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(code));
};
// The C# side also kills us on its own timeout; this one lets us still print what we saw.
const timer = setTimeout(() => { report.sessionError = 'timed out'; finish(2); }, job.timeoutMs || 20000);

const session = http2.connect(job.url, {
  ca: fs.readFileSync(job.ca),
  cert: fs.readFileSync(job.cert),
  key: fs.readFileSync(job.key),
  // The server is named by a SPIFFE URI SAN, not a DNS name, so the host-name check cannot apply; the chain is
  // still verified against `ca` (rejectUnauthorized stays true).
  checkServerIdentity: () => undefined,
  minVersion: 'TLSv1.3',
});
session.on('error', (e) => { report.sessionError = e.message; });
session.on('connect', (s, socket) => {
  report.alpn = socket.alpnProtocol;
  report.authorized = socket.authorized;
});

const one = (spec) => new Promise((resolve) => {
  const r = { status: null, rstCode: null, error: null, sent: 0, received: 0, intact: null, ended: false };
  report.requests.push(r);
  const headers = { ':method': spec.method, ':authority': spec.authority };
  if (spec.method !== 'CONNECT') {
    headers[':path'] = spec.path || '/';
    headers[':scheme'] = 'https';
  }
  const stream = session.request(headers, { endStream: false });
  const payload = crypto.randomBytes(spec.payloadSize || 0);
  const chunks = [];
  stream.on('response', (h) => {
    r.status = Number(h[':status']);
    if (r.status === 200 && spec.method === 'CONNECT') {
      // end() sends the payload then END_STREAM: the half-close the echo server must see as EOF.
      r.sent = payload.length;
      stream.end(payload);
    } else if (spec.method === 'CONNECT') {
      // A refusal ends the agent's side; ending ours lets the stream close (RFC 9113 section 8.1).
      stream.end();
    }
  });
  stream.on('data', (d) => { chunks.push(d); });
  stream.on('end', () => { r.ended = true; });
  stream.on('error', (e) => { r.error = e.code || e.message; });
  stream.on('close', () => {
    r.rstCode = stream.rstCode;
    const got = Buffer.concat(chunks);
    r.received = got.length;
    if (r.sent > 0) {
      r.intact = got.equals(payload);
    }
    resolve();
  });
  if (spec.method !== 'CONNECT') {
    stream.end();
  }
});

Promise.all(job.requests.map(one)).then(() => {
  clearTimeout(timer);
  session.close(() => finish(0));
});
