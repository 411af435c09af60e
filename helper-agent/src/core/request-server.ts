// The server requests arrive on. By default (`--forwarder builtin`) a
// net.Server's connections are read with Node's own HTTP parser and their
// requests forwarded (client-http.ts, forward-builtin.ts); a connection that
// asks for a static file goes on to a node:http server that is never listened
// on (loaded with the first one). `--forwarder
// node-http` uses that node:http server for everything (the fallback), and
// `--forwarder reply-from` runs every request through fastify's routing and
// @fastify/reply-from instead. All of them hand upgrades to forward-upgrade.ts.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import type * as net from 'node:net';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Options } from '../config';
import type { AppProcess } from '../pool/process';
import type { UpgradeForwarder } from '../proxy/forward-upgrade';
import type { RequestSnapshot } from '../admin/protocol';
import type { ForwardingContext, NodeHttpForwarder } from '../proxy/forward-node-http';
import { CLIENT_TIMEOUTS, nodeHttpOptions, onNodeHttpClientError, onNodeHttpTimeout, type ClientTimeouts } from '../proxy/client-timeouts';

export interface RequestServer {
  listen(): Promise<void>;
  /** Stops accepting, closes idle keep-alive connections, lets requests in flight finish. */
  close(): Promise<void>;
  /** Closes every client connection still open (the end of a stop). */
  destroy(): void;
  /** A process stopped taking requests for good: its WebSockets are closed (abort_websockets_on_process_shutdown). */
  processLeaving(p: AppProcess): void;
  /** The requests in flight. */
  requests(): RequestSnapshot[];
}

function listenOptions(o: Options, listenFd: number | null): { fd: number } | { path: string } | { host: string; port: number } {
  if (listenFd !== null) return { fd: listenFd };
  if (o.socket) {
    try { fs.unlinkSync(o.socket); } catch { /* none */ }
    return { path: o.socket };
  }
  return { host: o.address, port: o.port };
}

export interface NodeHttpSide {
  /** Never listened on by the default side, which hands it connections. */
  server: http.Server;
  forwarder: NodeHttpForwarder;
  upgrades: UpgradeForwarder;
}

/**
 * A node:http server that keeps to the request side's timeouts
 * (client-timeouts.ts), its requests answered by `listener`. node:http sets
 * up what checks its connections (the head timeout, closeIdleConnections(),
 * closeAllConnections()) when it starts listening: a server that is only
 * handed connections (`listens` false) is told it did, else a head trickled
 * onto one of them would never time out.
 */
export async function nodeHttpServer(listener: http.RequestListener, listens: boolean, timeouts: ClientTimeouts = CLIENT_TIMEOUTS): Promise<http.Server> {
  const http = await import('node:http');
  const server = http.createServer(nodeHttpOptions(timeouts), listener);
  server.on('timeout', onNodeHttpTimeout);
  server.on('clientError', onNodeHttpClientError);
  if (!listens) server.emit('listening');
  return server;
}

/** The fastify server of `--forwarder reply-from`, its routes not yet added, with the node:http side's client timeouts. */
export async function fastifyServer(timeouts: ClientTimeouts = CLIENT_TIMEOUTS): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({
    logger: false, http: nodeHttpOptions(timeouts), keepAliveTimeout: timeouts.keepAliveMs, requestTimeout: 0,
    clientErrorHandler: onNodeHttpClientError, return503OnClosing: false, forceCloseConnections: 'idle',
  });
  app.server.on('timeout', onNodeHttpTimeout);
  return app;
}

/** The node:http server with its forwarder and the upgrade forwarder, both keeping to `timeouts`. */
export async function nodeHttpSide(ctx: ForwardingContext, listens: boolean, timeouts: ClientTimeouts = CLIENT_TIMEOUTS): Promise<NodeHttpSide> {
  const { NodeHttpForwarder, capPipelining } = await import('../proxy/forward-node-http.js');
  const forwarder = new NodeHttpForwarder(ctx, timeouts);
  const server = await nodeHttpServer(forwarder.handle, listens, timeouts);
  server.on('connection', capPipelining);
  server.on('checkExpectation', forwarder.refuseExpectation);
  return { server, forwarder, upgrades: await upgradeForwarder(server, ctx) };
}

/**
 * Upgrade requests (WebSockets) go to the 'upgrade' event; without a
 * listener Node would hand them to the request listener as plain requests
 * and the app would answer them with a page instead of a 101.
 */
async function upgradeForwarder(server: http.Server, ctx: ForwardingContext): Promise<UpgradeForwarder> {
  const { UpgradeForwarder } = await import('../proxy/forward-upgrade.js');
  const up = new UpgradeForwarder(ctx);
  server.on('upgrade', up.handle);
  return up;
}

function listenOn(server: net.Server, o: Options, listenFd: number | null): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenOptions(o, listenFd), () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * The default side runs on Node's internal stream bindings (client-stream.ts);
 * a Node that has none gets the node:http side, said once in the log.
 */
async function builtinAvailable(ctx: ForwardingContext): Promise<boolean> {
  try {
    await import('../proxy/client-stream.js');
    return true;
  } catch (e) {
    ctx.log.warn(`this Node (${process.version}) lacks what the builtin request side needs (${(e as Error).message}): serving with --forwarder node-http`);
    return false;
  }
}

/** A socket's descriptor (-1 when it has none). */
function socketFd(sock: Socket): number {
  return (sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
}

export async function createRequestServer(o: Options, listenFd: number | null, ctx: ForwardingContext, onConnection?: (fd: number) => void): Promise<RequestServer> {
  if (o.forwarder === 'reply-from') {
    const { registerReplyFromForwarding } = await import('../proxy/forward-reply-from.js');
    const app = await fastifyServer();
    await registerReplyFromForwarding(app, ctx);
    const upgrades = await upgradeForwarder(app.server, ctx);
    const { capPipelining } = await import('../proxy/forward-node-http.js');
    app.server.on('connection', capPipelining);
    if (onConnection) app.server.on('connection', (sock: Socket) => onConnection(socketFd(sock)));
    return {
      listen: async () => {
        await app.ready();
        await new Promise<void>((resolve, reject) => {
          app.server.once('error', reject);
          app.server.listen(listenOptions(o, listenFd), () => resolve());
        });
      },
      close: () => app.close(),
      destroy: () => app.server.closeAllConnections(),
      processLeaving: (p) => upgrades.processLeaving(p),
      requests: () => upgrades.requests(),
    };
  }
  if (o.forwarder === 'node-http' || !(await builtinAvailable(ctx))) {
    const { server, forwarder, upgrades } = await nodeHttpSide(ctx, true);
    if (onConnection) server.on('connection', (sock: Socket) => onConnection(socketFd(sock)));
    return {
      listen: () => listenOn(server, o, listenFd),
      close: () => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
      destroy: () => server.closeAllConnections(),
      processLeaving: (p) => upgrades.processLeaving(p),
      requests: () => [...forwarder.requests(), ...upgrades.requests()].sort((a, b) => b.age_ms - a.age_ms),
    };
  }
  // The default: the parser-based side. The node:http server (for the
  // connections it hands over with a static file) and the upgrade forwarder
  // are loaded by the first connection that needs them: a core whose apps
  // have neither keeps them out of its memory.
  const { BuiltinForwarder } = await import('../proxy/forward-builtin.js');
  const { ClientHttpServer } = await import('../proxy/client-http-server.js');
  let side: NodeHttpSide | null = null;
  let loading: Promise<NodeHttpSide> | null = null;
  const later = (sock: Socket, then: (s: NodeHttpSide) => void): void => {
    if (side !== null) { then(side); return; }
    loading ??= nodeHttpSide(ctx, false).then((s) => (side = s));
    // A client that left while it loaded is not handed on: nothing would see its socket close.
    loading.then((s) => { if (!sock.destroyed) then(s); }, (e: Error) => {
      ctx.log.warn(`cannot load the node:http side for a handed-over connection: ${e.message}`);
      sock.destroy();
    });
  };
  const parsed = new BuiltinForwarder(ctx, {
    toNodeHttp: (sock, head) => later(sock, (s) => {
      sock.unshift(head);
      s.server.emit('connection', sock);
    }),
    upgrade: (req, sock, head) => later(sock, (s) => s.upgrades.handle(req, sock, head)),
  });
  const front = new ClientHttpServer(parsed, onConnection);
  return {
    listen: () => listenOn(front.server, o, listenFd),
    close: () => {
      side?.server.closeIdleConnections();
      return front.close();
    },
    destroy: () => {
      front.destroy();
      side?.server.closeAllConnections();
    },
    processLeaving: (p) => side?.upgrades.processLeaving(p),
    requests: () => [...parsed.requests(), ...(side?.forwarder.requests() ?? []), ...(side?.upgrades.requests() ?? [])].sort((a, b) => b.age_ms - a.age_ms),
  };
}
