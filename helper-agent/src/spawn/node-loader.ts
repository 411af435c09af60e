// Preloaded into every Node app process (`node --require node-loader.js app.js`).
// The app's first http server listen() goes to the Unix socket the agent chose,
// whatever port the app asked for; the loader then tells the agent over its
// channel that the process is ready. When the agent asks the process to leave
// (over the channel, or by closing its stdin), the app's own shutdown runs:
// an exit listener registered through Passenger's loader API
// (`PhusionPassenger.on('exit', fn)`), else SIGTERM to its process group, so
// its `process.on('SIGTERM')` handlers run; an app with neither exits at
// once, as a Node process does on SIGTERM (the agent tells it only once its
// requests are done, or their time is up). Plain CommonJS with no imports of
// ours: it runs inside the app.
/* eslint-disable @typescript-eslint/no-var-requires */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';

const ENV_SOCKET = 'PASSENGER_LOADER_SOCKET';
const ENV_CHANNEL = 'PASSENGER_LOADER_CHANNEL';
const ENV_TOKEN = 'PASSENGER_LOADER_TOKEN';
const ENV_LISTEN_FD = 'PASSENGER_LOADER_LISTEN_FD';
const ENV_SHUTDOWN_TIMEOUT = 'PASSENGER_LOADER_SHUTDOWN_TIMEOUT';
/** Direct mode: how often the counters go to the agent (only when they changed). */
const REPORT_MS = 1000;
/** stdin closed: how long to wait for the channel to say whether the core died (then we stay) or asks us to leave. */
const STDIN_END_GRACE_MS = 200;

/**
 * Passenger's loader API, for apps written against it: `PhusionPassenger.on('exit', fn)`
 * takes over the leaving (the app exits by itself, within shutdown_timeout);
 * `configure()` is accepted (the first listen() is taken whatever it says).
 */
class LoaderApi extends EventEmitter {
  configure(_options?: Record<string, unknown>): void { /* accepted */ }
}

function install(): void {
  const socketPath = process.env[ENV_SOCKET];
  const channelPath = process.env[ENV_CHANNEL];
  const token = process.env[ENV_TOKEN] ?? '';
  const listenFd = process.env[ENV_LISTEN_FD] ? Number(process.env[ENV_LISTEN_FD]) : null;
  const shutdownSeconds = Number(process.env[ENV_SHUTDOWN_TIMEOUT]) || 30;
  if (!socketPath) return;
  delete process.env[ENV_SHUTDOWN_TIMEOUT];
  const g = globalThis as { PhusionPassenger?: unknown };
  const api = new LoaderApi();
  if (g.PhusionPassenger === undefined) g.PhusionPassenger = api;
  // Log rotation scripts send SIGUSR1 to whatever they find; unhandled, it
  // would open Node's inspector on 127.0.0.1:9229 in the app. A listener that
  // does nothing keeps it shut; the app's own listeners still run.
  process.on('SIGUSR1', () => undefined);
  delete process.env[ENV_LISTEN_FD];
  // The app's own child processes must not inherit the hook or the agent's socket.
  delete process.env[ENV_SOCKET];
  delete process.env[ENV_CHANNEL];
  delete process.env[ENV_TOKEN];
  const at = process.execArgv.findIndex((a, i) => (a === '--require' || a === '-r') && process.execArgv[i + 1] === __filename);
  if (at !== -1) process.execArgv.splice(at, 2);

  // The channel back to the agent core. If the core dies, the process lives
  // on and reconnects, for the next core to adopt; if no core comes back
  // within ORPHAN_MS, there is nobody left to serve: it leaves.
  const ORPHAN_MS = 60_000;
  let channel: net.Socket | null = null;
  let connected = false;
  let lostAt = 0;
  let readyMsg: string | null = null;
  const connect = (): void => {
    if (!channelPath) return;
    const sock = net.connect(channelPath);
    channel = sock;
    sock.unref();
    sock.on('connect', () => {
      connected = true;
      lostAt = 0;
      if (readyMsg !== null) sock.write(readyMsg);
    });
    sock.on('error', () => undefined);
    // The agent speaks rarely: {"type":"leave","drainMs":N} when it wants us
    // gone (a core that adopted us has no stdin of ours); in direct mode N
    // bounds how long our requests in flight may run.
    let inbox = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      inbox += chunk;
      let nl: number;
      while ((nl = inbox.indexOf('\n')) !== -1) {
        const line = inbox.slice(0, nl);
        inbox = inbox.slice(nl + 1);
        if (line.includes('"leave"')) leave(drainOf(line));
      }
      if (inbox.length > 4096) inbox = '';
    });
    sock.on('close', () => {
      connected = false;
      if (lostAt === 0) lostAt = Date.now();
      if (Date.now() - lostAt > ORPHAN_MS) {
        askApp();
        setTimeout(() => process.exit(0), shutdownSeconds * 1000).unref();
        return;
      }
      setTimeout(connect, 250).unref();
    });
  };
  const send = (msg: Record<string, unknown>): void => {
    readyMsg = `${JSON.stringify({ ...msg, token, pid: process.pid })}\n`;
    if (channel === null) connect();
    else if (connected) channel.write(readyMsg);
  };

  const originalListen = http.Server.prototype.listen;
  let claimed: http.Server | null = null;
  http.Server.prototype.listen = function listen(this: http.Server, ...args: unknown[]) {
    if (claimed !== null) return originalListen.apply(this, args as Parameters<typeof originalListen>);
    claimed = this;
    const last = args[args.length - 1];
    const cb = typeof last === 'function' ? (last as () => void) : undefined;
    this.once('listening', () => send({ type: 'ready', socket: socketPath, node: process.version }));
    let where: string | { fd: number } = socketPath;
    if (listenFd === null) presentAsLoopback(this);
    if (listenFd !== null) {
      // Direct mode: accept from the agent's listening socket, and count.
      where = { fd: listenFd };
      account(this);
    } else {
      try { fs.unlinkSync(socketPath); } catch { /* not there */ }
    }
    return cb ? originalListen.call(this, where, cb) : originalListen.call(this, where);
  } as typeof originalListen;

  /**
   * The app's connections come from the agent over a Unix socket, whose
   * remoteAddress is undefined: Express's req.ip, morgan's :remote-addr and
   * hapi's remoteAddress would be empty. As Passenger's loader does, the
   * socket presents itself as 127.0.0.1 (port 0), the agent's side of a local
   * connection; the client's own address is in X-Forwarded-For (trust proxy).
   */
  function presentAsLoopback(server: http.Server): void {
    server.prependListener('connection', (sock: net.Socket) => {
      if (sock.remoteAddress !== undefined) return;
      Object.defineProperties(sock, {
        remoteAddress: { value: '127.0.0.1', configurable: true },
        remoteFamily: { value: 'IPv4', configurable: true },
        remotePort: { value: 0, configurable: true },
      });
    });
  }

  // An app that forks node:cluster workers would have them listen where the
  // agent never looks, and the spawn would time out: the agent runs and
  // balances the processes itself, so it says so at once.
  const cluster = require('node:cluster') as import('node:cluster').Cluster;
  cluster.fork = function fork(): never {
    process.stderr.write('passenger-ts: this app forks node:cluster workers (cluster.fork()); the server starts and balances the app\'s '
      + 'processes itself, so cluster mode is not supported: start the app without cluster (e.g. when process.env.IN_PASSENGER is set) '
      + 'and set min_instances / max_pool_size instead\n');
    process.exit(1);
  } as typeof cluster.fork;

  // Direct mode accounting: sessions in flight, requests done, last use;
  // sent in one message a second at most, not one per request.
  let sessions = 0;
  let processed = 0;
  let lastUsed = Date.now();
  let reported = '';
  let draining = false;
  // Connections that served a request and have none in flight: the ones a
  // leaving process may close (a fresh connection's request may be on its way).
  const conns = new Set<net.Socket>();
  const kActive = Symbol('active');
  type Tracked = net.Socket & { [kActive]?: number };
  function forget(this: net.Socket): void {
    conns.delete(this);
  }
  function onResponseClose(this: http.ServerResponse): void {
    sessions--;
    processed++;
    lastUsed = Date.now();
    const sock = this.socket as Tracked | null;
    if (sock) sock[kActive] = (sock[kActive] ?? 1) - 1;
  }
  function account(server: http.Server): void {
    server.on('connection', (sock: net.Socket) => {
      conns.add(sock);
      sock.on('close', forget);
    });
    // Before the app's own listener, which may answer at once.
    server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      sessions++;
      const sock = req.socket as Tracked;
      sock[kActive] = (sock[kActive] ?? 0) + 1;
      if (draining && !res.headersSent) res.setHeader('connection', 'close');
      res.on('close', onResponseClose);
    });
    setInterval(() => {
      const line = `${sessions} ${processed} ${lastUsed}`;
      if (line === reported || !connected) return;
      reported = line;
      channel?.write(`${JSON.stringify({ type: 'stats', token, pid: process.pid, sessions, processed, lastUsed })}\n`);
    }, REPORT_MS).unref();
  }

  /**
   * The app's own shutdown: its loader API exit listeners if it has any,
   * else, if it handles SIGTERM, SIGTERM to its process group (its children
   * hear it too). An app with neither exits now, as SIGTERM would end it:
   * the agent asks only once its requests are done or their time is up (a
   * long poll would otherwise hold it), and answers what is left open itself.
   */
  let asked = false;
  function askApp(): void {
    if (asked) return;
    asked = true;
    if (api.listenerCount('exit') > 0) {
      api.emit('exit');
      return;
    }
    if (process.listenerCount('SIGTERM') > 0) {
      try {
        process.kill(-process.pid, 'SIGTERM');
      } catch {
        process.kill(process.pid, 'SIGTERM');
      }
      return;
    }
    process.exit(0);
  }

  /** The drain bound a leave message names, if any. */
  function drainOf(line: string): number | null {
    try {
      const n = (JSON.parse(line) as { drainMs?: unknown }).drainMs;
      return typeof n === 'number' && n >= 0 ? n : null;
    } catch {
      return null;
    }
  }

  /** Leaves: in direct mode after the requests in flight (new ones get Connection: close), for `drainMs` at most. */
  function leave(drainMs: number | null = null): void {
    if (draining) return;
    draining = true;
    const server = claimed;
    if (listenFd === null || server === null) {
      askApp();
      return;
    }
    // net.Server's close, not http.Server's: that one also closes every
    // connection without a request in flight, fresh ones included, whose
    // request is already on its way.
    net.Server.prototype.close.call(server, askApp);
    // Idle keep-alive connections go now; busy ones after their response
    // (Connection: close); a fresh one serves the request it was opened for.
    for (const sock of conns) if ((sock as Tracked)[kActive] === 0) sock.destroy();
    // By default half the shutdown timeout for the requests, the rest for the app's shutdown.
    setTimeout(askApp, drainMs ?? (shutdownSeconds * 1000) / 2).unref();
  }

  // Closed stdin = the agent asks us to leave (its sessions here have ended),
  // unless the agent core died (its channel closed too): then we stay, for
  // the next core to adopt.
  const stdin = process.stdin as unknown as net.Socket;
  stdin.on('error', () => undefined);
  stdin.on('end', () => {
    setTimeout(() => { if (connected || !channelPath) leave(); }, STDIN_END_GRACE_MS);
  });
  // Our output pipes belonged to the core; after its death, writes fail quietly.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  stdin.resume();
  if (typeof stdin.unref === 'function') stdin.unref();
}

install();
