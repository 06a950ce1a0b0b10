// gRPC backends on Node's own stack (@grpc/grpc-js): one server per "name=ip" argument, each on an ephemeral port of
// its pod address. Usage: node grpc-server.js PROTO name=ip [name=ip...]. Prints {"name":..,"port":N} per server once
// listening; stops when stdin closes. A backend told "fail-first=N" on stdin fails the next N calls with UNAVAILABLE.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync(process.argv[2], { keepCase: true, longs: Number, defaults: true });
const pkg = grpc.loadPackageDefinition(definition).ambient.test;
let failFirst = 0;

function reply(name, call, extra) {
  const headers = {};
  for (const [k, v] of Object.entries(call.metadata.getMap())) {
    headers[k] = Buffer.isBuffer(v) ? v.toString('base64') : String(v);
  }
  return { backend: name, text: call.request.text, path: call.getPath(), headers, request_bytes: call.request.padding.length, ...extra };
}

function failure(code) {
  const trailer = new grpc.Metadata();
  trailer.set('x-failed-by', 'test');
  return { code, details: `asked to fail with ${code}`, metadata: trailer };
}

for (const arg of process.argv.slice(3)) {
  const [name, ip] = arg.split('=');
  const server = new grpc.Server();
  server.addService(pkg.Echo.service, {
    Say(call, callback) {
      if (failFirst > 0) {
        failFirst--;
        callback({ code: grpc.status.UNAVAILABLE, details: 'failing the first attempt' });
        return;
      }
      if (call.request.fail_code !== 0) {
        callback(failure(call.request.fail_code));
        return;
      }
      callback(null, reply(name, call, {}));
    },
    Count(call) {
      for (let i = 0; i < call.request.count; i++) {
        call.write(reply(name, call, { index: i }));
      }
      if (call.request.fail_code !== 0) {
        call.emit('error', failure(call.request.fail_code));
      } else {
        call.end();
      }
    },
  });
  server.addService(pkg.Other.service, {
    Say(call, callback) { callback(null, reply(name, call, { text: 'other' })); },
  });
  server.bindAsync(`${ip}:0`, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      console.error(err.message);
      process.exit(1);
    }
    console.log(JSON.stringify({ name, port }));
  });
}

process.stdin.on('data', (data) => {
  const m = /fail-first=(\d+)/.exec(data.toString());
  if (m) {
    failFirst = Number(m[1]);
    console.log(JSON.stringify({ failFirst }));
  }
});
process.stdin.on('end', () => process.exit(0));
