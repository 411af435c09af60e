// The WebSocket bench's app: a dependency-free echo server (RFC 6455
// handshake and frames by hand), the same under every target. Listens on
// $PORT (3000 when unset, which the agent redirects).
'use strict';
const crypto = require('crypto');
const http = require('http');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function frame(opcode, payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : Buffer.from([0x80 | opcode, 126, n >> 8, n & 0xff]);
  return Buffer.concat([head, payload]);
}

const server = http.createServer((req, res) => res.end(`hello from ${process.pid}\n`));
server.on('upgrade', (req, socket, head) => {
  const accept = crypto.createHash('sha1').update(req.headers['sec-websocket-key'] + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.setNoDelay(true);
  let buf = head.length > 0 ? Buffer.from(head) : Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.on('data', (d) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      const mask = off;
      off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      for (let i = 0; i < len; i++) payload[i] ^= buf[mask + (i & 3)];
      buf = buf.subarray(off + len);
      if (opcode === 8) { socket.end(frame(8, payload)); return; }
      socket.write(frame(opcode, payload));
    }
  });
});
server.listen(Number(process.env.PORT) || 3000, '127.0.0.1');
