// A gRPC client on Node's own stack (@grpc/grpc-js) in a client pod. The pod reaches the mesh through its node's
// ztunnel SOCKS5 port, which grpc-js cannot speak, so a local listener hands each connection grpc-js opens to a SOCKS5
// CONNECT made from the pod's address. Usage: node grpc-client.js PROTO POD_IP SOCKS_HOST:PORT TARGET_IP:PORT CALLS_JSON
// CALLS_JSON: [{"method":"Say"|"Count"|"Other", "text":.., "fail_code":.., "count":.., "padding":N, "metadata":{..}}]
// Prints one JSON array: per call {code, details, replies, trailers}.
'use strict';
const { relay } = require('./socks-relay');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [protoPath, podIp, socks, target, callsJson] = process.argv.slice(2);
const calls = JSON.parse(callsJson);

const definition = protoLoader.loadSync(protoPath, { keepCase: true, longs: Number, defaults: true });
const pkg = grpc.loadPackageDefinition(definition).ambient.test;
const server = relay(podIp, socks, target, async (address) => {
  // The authority the client would use without the relay: the service address it dialled.
  const options = { 'grpc.default_authority': target };
  const echo = new pkg.Echo(address, grpc.credentials.createInsecure(), options);
  const other = new pkg.Other(address, grpc.credentials.createInsecure(), options);
  const results = [];
  for (const c of calls) {
    results.push(await run(c.method === 'Other' ? other : echo, c));
  }
  console.log(JSON.stringify(results));
  echo.close();
  other.close();
  server.close();
  process.exit(0);
});

function run(client, c) {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(c.metadata || {})) {
    metadata.set(k, v);
  }
  const request = { text: c.text || '', fail_code: c.fail_code || 0, count: c.count || 0, padding: Buffer.alloc(c.padding || 0, 7) };
  const deadline = new Date(Date.now() + 20000);
  return new Promise((resolve) => {
    const result = { code: -1, details: '', replies: [], trailers: {} };
    const onStatus = (status) => {
      result.code = status.code;
      result.details = status.details;
      for (const [k, v] of Object.entries(status.metadata.getMap())) {
        result.trailers[k] = String(v);
      }
    };
    if (c.method === 'Count') {
      const call = client.Count(request, metadata, { deadline });
      call.on('data', (r) => result.replies.push(r));
      call.on('error', () => {});
      call.on('status', (s) => { onStatus(s); resolve(result); });
    } else {
      const call = client.Say(request, metadata, { deadline }, (err, r) => {
        if (r) {
          result.replies.push(r);
        }
      });
      call.on('status', (s) => { onStatus(s); setImmediate(() => resolve(result)); });
    }
  });
}
