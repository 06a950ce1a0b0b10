// One HTTP/2 (prior knowledge, h2c) GET from a client pod through its ztunnel with Node's own http2 client.
// Usage: node h2-get.js POD_IP SOCKS_HOST:PORT TARGET_IP:PORT PATH
// Prints {"status":N,"headers":{...},"body":"..."} or {"error":"..."}; gives up after 15 s.
'use strict';
const http2 = require('http2');
const { relay } = require('./socks-relay');

const [podIp, socks, target, path] = process.argv.slice(2);
const done = (result) => {
  console.log(JSON.stringify(result));
  process.exit(0);
};
setTimeout(() => done({ error: 'timeout' }), 15000);
relay(podIp, socks, target, (address) => {
  const session = http2.connect(`http://${address}`);
  session.on('error', (e) => done({ error: e.code || e.message }));
  const req = session.request({ ':path': path, ':authority': target });
  let headers = {};
  let body = '';
  req.setEncoding('utf8');
  req.on('response', (h) => { headers = h; });
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => done({ status: headers[':status'], headers, body }));
  req.on('error', (e) => done({ error: e.code || e.message }));
  req.end();
});
