'use strict';
// Preloaded (`node --require`) into the bench app by the `nginx-1conn` target:
// its server listens on the Unix socket BENCH_UNIX_SOCKET instead of a port,
// and the socket is opened to nginx's workers, which run as another user.
const fs = require('fs');
const http = require('http');

const sock = process.env.BENCH_UNIX_SOCKET;
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function listenUnix(...args) {
  const cb = args.find((a) => typeof a === 'function');
  try { fs.unlinkSync(sock); } catch { /* none */ }
  return listen.call(this, sock, () => {
    fs.chmodSync(sock, 0o666);
    if (cb) cb();
  });
};
