// A Delta ADS control plane on Node's own gRPC stack (@grpc/grpc-js + @grpc/proto-loader), loading the agent's .proto
// files, so the wire format is checked against a peer that is not ours. Usage: node xds-server.js PROTO_DIR IP_PREFIX
// Prints {"port":N} once listening, then one JSON line per request the agent sends.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const protoDir = process.argv[2];
const prefix = process.argv[3]; // e.g. "127.63.4": the workload gets .20, the service VIP .100

const loadOptions = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [protoDir] };
const definition = protoLoader.loadSync(['envoy/discovery.proto'], loadOptions);
const ads = grpc.loadPackageDefinition(definition).envoy.service.discovery.v3.AggregatedDiscoveryService;

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('google/protobuf/') ? target : path.join(protoDir, target));
root.loadSync(['istio/workload.proto', 'istio/authorization.proto'], { keepCase: true });
const Address = root.lookupType('istio.workload.Address');
const Authorization = root.lookupType('istio.security.Authorization');

const ip = (text) => Buffer.from(text.split('.').map(Number));
const any = (type, message) => ({ type_url: `type.googleapis.com/${type.fullName.slice(1)}`, value: type.encode(type.fromObject(message)).finish() });

const resources = {
  'type.googleapis.com/istio.workload.Address': [
    { name: 'Kubernetes//Pod/shop/node-echo', version: 'node-1', resource: any(Address, { workload: {
      uid: 'Kubernetes//Pod/shop/node-echo', name: 'node-echo', namespace: 'shop', addresses: [ip(`${prefix}.20`)],
      tunnel_protocol: 1, service_account: 'echo', node: 'node-b',
      services: { 'shop/node-echo.shop.svc.cluster.local': { ports: [{ service_port: 80, target_port: 8080 }] } },
    } }) },
    { name: 'shop/node-echo.shop.svc.cluster.local', version: 'node-2', resource: any(Address, { service: {
      name: 'node-echo', namespace: 'shop', hostname: 'node-echo.shop.svc.cluster.local',
      addresses: [{ network: '', address: ip(`${prefix}.100`) }], ports: [{ service_port: 80, target_port: 8080 }],
    } }) },
    // Three address bytes: the agent must NACK this one by name and still apply the two above.
    { name: 'Kubernetes//Pod/shop/broken', version: 'node-3', resource: any(Address, { workload: {
      uid: 'Kubernetes//Pod/shop/broken', name: 'broken', namespace: 'shop', addresses: [Buffer.from([127, 0, 1])],
    } }) },
  ],
  'type.googleapis.com/istio.security.Authorization': [
    { name: 'shop/deny-bad', version: 'node-4', resource: any(Authorization, {
      name: 'deny-bad', namespace: 'shop', scope: 2, action: 1,
      rules: [{ clauses: [{ matches: [{ principals: [{ exact: 'cluster.local/ns/shop/sa/bad' }], destination_ports: [8080] }] }] }],
    }) },
  ],
};

let nonce = 0;
function deltaAggregatedResources(call) {
  call.on('data', (request) => {
    const metadata = {};
    const fields = (request.node && request.node.metadata && request.node.metadata.fields) || {};
    for (const [k, v] of Object.entries(fields)) metadata[k] = v.stringValue !== undefined ? v.stringValue : v.string_value;
    process.stdout.write(JSON.stringify({
      type_url: request.type_url,
      node_id: request.node ? request.node.id : null,
      metadata,
      response_nonce: request.response_nonce || '',
      error: request.error_detail ? request.error_detail.message : null,
      authorization: call.metadata.get('authorization')[0] || null,
      clusterid: call.metadata.get('clusterid')[0] || null,
    }) + '\n');
    if (!request.response_nonce && resources[request.type_url]) {
      call.write({ type_url: request.type_url, nonce: `node-nonce-${++nonce}`, resources: resources[request.type_url], removed_resources: [] });
    }
  });
  call.on('end', () => call.end());
  call.on('error', () => {});
}

const server = new grpc.Server();
server.addService(ads.service, {
  deltaAggregatedResources,
  DeltaAggregatedResources: deltaAggregatedResources,
  streamAggregatedResources: (call) => call.end(),
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) { process.stderr.write(`${err}\n`); process.exit(1); }
  process.stdout.write(JSON.stringify({ port }) + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
