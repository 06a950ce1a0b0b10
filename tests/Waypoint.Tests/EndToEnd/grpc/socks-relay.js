// A client pod's way into the mesh for Node clients: a local listener on the pod's address whose every connection
// is handed to a SOCKS5 CONNECT to TARGET made from the pod's address through its node's ztunnel (grpc-js and http2
// speak no SOCKS5). relay(podIp, "socksHost:port", "targetIp:port", ready) calls ready("podIp:port") once listening.
'use strict';
const net = require('net');

function relay(podIp, socks, target, ready) {
  const [socksHost, socksPort] = socks.split(':');
  const [targetIp, targetPort] = target.split(':');
  function socks5(local) {
    const upstream = net.connect({ host: socksHost, port: Number(socksPort), localAddress: podIp });
    let stage = 0;
    let buffered = Buffer.alloc(0);
    local.pause();
    upstream.on('connect', () => upstream.write(Buffer.from([5, 1, 0])));
    upstream.on('data', function handshake(chunk) {
      buffered = Buffer.concat([buffered, chunk]);
      if (stage === 0 && buffered.length >= 2) {
        buffered = buffered.subarray(2);
        stage = 1;
        const port = Buffer.alloc(2);
        port.writeUInt16BE(Number(targetPort));
        upstream.write(Buffer.concat([Buffer.from([5, 1, 0, 1]), Buffer.from(targetIp.split('.').map(Number)), port]));
      }
      if (stage === 1 && buffered.length >= 10) {
        if (buffered[1] !== 0) {
          local.destroy();
          upstream.destroy();
          return;
        }
        upstream.removeListener('data', handshake);
        const rest = buffered.subarray(10);
        if (rest.length > 0) {
          local.write(rest);
        }
        upstream.pipe(local);
        local.pipe(upstream);
        local.resume();
      }
    });
    upstream.on('error', () => local.destroy());
    local.on('error', () => upstream.destroy());
    upstream.on('close', () => local.destroy());
    local.on('close', () => upstream.destroy());
  }
  const server = net.createServer(socks5);
  server.listen(0, podIp, () => ready(`${podIp}:${server.address().port}`));
  return server;
}

module.exports = { relay };
