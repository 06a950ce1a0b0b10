// An MCP server (a service registry, as Nacos serves Istio) on Node's own gRPC stack (@grpc/grpc-js +
// @grpc/proto-loader + protobufjs), loading the agent's .proto files: state-of-the-world ADS, type URLs given as GVKs,
// each resource an istio.mcp.v1alpha1.Resource around an Istio ServiceEntry. Usage: node mcp-server.js PROTO_DIR IP_PREFIX
// Prints {"port":N} once listening, then one JSON line per request the agent sends.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const protoDir = process.argv[2];
const prefix = process.argv[3]; // e.g. "127.65.4": the endpoint gets .20, the VIP .100

const loadOptions = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [protoDir] };
const definition = protoLoader.loadSync(['envoy/discovery.proto'], loadOptions);
const ads = grpc.loadPackageDefinition(definition).envoy.service.discovery.v3.AggregatedDiscoveryService;

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(protoDir, target));
root.loadSync(['istio/mcp.proto', 'istio/networking.proto'], { keepCase: true });
const McpResource = root.lookupType('istio.mcp.v1alpha1.Resource');
const ServiceEntry = root.lookupType('istio.networking.v1alpha3.ServiceEntry');

const typeName = (type) => type.fullName.slice(1);
const any = (type, message) => ({ type_url: `type.googleapis.com/${typeName(type)}`, value: type.encode(type.fromObject(message)).finish() });
const mcp = (name, body) => any(McpResource, {
  metadata: { name, version: '7', labels: { registry: 'node' } },
  body: { type_url: body.type_url, value: body.value },
});

const snapshots = {
  'networking.istio.io/v1/ServiceEntry': [
    mcp('shop/node-echo', any(ServiceEntry, {
      hosts: ['node-echo.shop.registry'], addresses: [`${prefix}.100`],
      ports: [{ number: 80, name: 'tcp', protocol: 'TCP', target_port: 8080 }],
      location: 'MESH_INTERNAL', resolution: 'STATIC',
      endpoints: [{ address: `${prefix}.20`, service_account: 'echo', labels: { app: 'node-echo' }, ports: { tcp: 9090 } }],
    })),
    // The namespace is missing from its name: the agent must NACK this one by name and still apply the one above.
    mcp('no-namespace', any(ServiceEntry, { hosts: ['broken.registry'], resolution: 'STATIC' })),
  ],
  'networking.istio.io/v1/WorkloadEntry': [],
};

let nonce = 0;
function streamAggregatedResources(call) {
  call.on('data', (request) => {
    process.stdout.write(JSON.stringify({
      type_url: request.type_url,
      node_id: request.node ? request.node.id : null,
      version_info: request.version_info || '',
      response_nonce: request.response_nonce || '',
      error: request.error_detail ? request.error_detail.message : null,
    }) + '\n');
    if (!request.response_nonce && snapshots[request.type_url]) {
      call.write({ type_url: request.type_url, version_info: 'node-v1', nonce: `node-nonce-${++nonce}`, resources: snapshots[request.type_url] });
    }
  });
  call.on('end', () => call.end());
  call.on('error', () => {});
}

const server = new grpc.Server();
server.addService(ads.service, {
  streamAggregatedResources,
  StreamAggregatedResources: streamAggregatedResources,
  deltaAggregatedResources: (call) => call.end(),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) { process.stderr.write(`${err}\n`); process.exit(1); }
  process.stdout.write(JSON.stringify({ port }) + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
