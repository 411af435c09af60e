// The default request path: a plain Node request listener that checks out a
// session and dispatches straight onto the process's keep-alive client
// (app-client.ts), streaming the response back as it arrives. Per request it
// allocates one exchange, one session and one header list; no URL parsing,
// no promise, no stream wrapper, no closure.
// (The @fastify/reply-from path in forward-reply-from.ts does several times
// this work per request; README.md has the numbers.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { AppRequest } from './app-client';
import { connectionOf, tookLast, type ClientConnection } from './client-connection';
import { CLIENT_TIMEOUTS, type ClientTimeouts } from './client-timeouts';
import { agentErrorResponse } from './error-pages';
import type { RequestSnapshot } from '../admin/protocol';
import { AppClientExchange } from './app-client-exchange';
import { limitedBody } from './body-limit';
import { RequestBody } from './client-request';
import type { ForwardingContext } from './exchange';
import { appHeaders, stripResponseHopByHop } from './headers';
import { hasBody } from './retry';

export type { ForwardingContext } from './exchange';

const kExchange = Symbol('passenger.exchange');
const kConnection = Symbol('passenger.connection');
type TrackedResponse = ServerResponse & { [kExchange]?: NodeHttpExchange; [kConnection]?: ClientConnection };

/** One client request on the default path: the request core plus the app client's response handler. */
class NodeHttpExchange extends AppClientExchange {
  readonly withBody: boolean;
  private resume: (() => void) | null = null;
  protected readonly opts: AppRequest;

  constructor(
    readonly forwarder: NodeHttpForwarder,
    req: IncomingMessage,
    readonly res: TrackedResponse,
    group: Group,
    readonly conn: ClientConnection,
    bodyLimitOf: ForwardingContext['bodyLimitOf'],
  ) {
    super(req, group, forwarder.log);
    this.withBody = hasBody(req.headers);
    // Behind a web server that sent a body limit, the body is counted against it (body-limit.ts).
    const limit = this.withBody && bodyLimitOf !== undefined ? bodyLimitOf(req) : null;
    const body = !this.withBody ? null : limit === null ? req : limitedBody(req, limit, this);
    this.opts = { path: req.url as string, method: req.method as string, headers: appHeaders(req), body };
  }

  // ResponseHandler: the app client reports here.

  onHeaders(status: number, headers: string[], resume: () => void, statusText: string): boolean {
    if (this.state !== 'forwarded' || this.res.headersSent) return false;
    stripResponseHopByHop(headers); // the list is ours
    const cookie = this.stickyCookie();
    if (cookie !== null) headers.push('set-cookie', cookie);
    this.responding();
    this.resume = resume;
    // An answer before the body is over ends the connection (onBodyLeft()).
    if (this.withBody && !(this.req as IncomingMessage).complete) this.res.shouldKeepAlive = false;
    this.res.writeHead(status, statusText || undefined, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const ok = this.res.write(chunk);
    if (!ok && this.resume) this.res.once('drain', this.resume);
    return ok;
  }

  onComplete(): void {
    this.res.end();
    // The app's part is over: its process is free even while the response
    // still waits, pipelined, behind an earlier one to the client.
    this.complete();
  }

  onBodyLeft(): void {
    answeredBeforeBody(this.req as IncomingMessage, this.res, this.opts.body, this.conn, this.forwarder.lingerMs);
  }

  onError(err: Error): void {
    this.upstreamFailed(err);
  }

  // The request core's hooks.

  protected answer(err: Error): void {
    sendAgentResponse(this.req as IncomingMessage, this.res, err, this.group, this.forwarder.lingerMs, this.opts.body);
  }

  protected clientGone(): boolean {
    return this.res.destroyed;
  }

  protected cutClient(): void {
    this.res.destroy();
  }

  protected ended(): void {
    this.forwarder.inFlight.delete(this);
    this.conn.leave(this);
  }
}


/**
 * The client's response is over, finished or cut short. (Node emits this only
 * for the response that owns the socket; pipelined ones behind it are closed
 * with the connection, client-connection.ts.)
 */
function onResponseClose(this: TrackedResponse): void {
  this[kConnection]?.answered();
  this[kExchange]?.close();
}

const kOnIncoming = Symbol('passenger.onIncoming');
type OnIncoming = (req: IncomingMessage, keepAlive: boolean) => number;
/** node:http's parser of a connection (`socket.parser`, not public), which hands each request head to its `onIncoming`. */
interface ServerParser { socket: Socket | null; onIncoming: OnIncoming | null }
type ParsedSocket = Socket & { parser?: ServerParser | null; [kOnIncoming]?: OnIncoming };

/**
 * A head past the connection's last request is answered to the parser with
 * 2, "no body, and what follows is no HTTP" (as node:http's client does for
 * an upgrade): the parser stops there and the rest of the read is dropped.
 * Else node:http would parse it to its end and make a request and a response
 * of every head in it (over 2,000 for 64 KB of small pipelined requests),
 * only for handle() to drop them.
 */
function onIncoming(this: ServerParser, req: IncomingMessage, keepAlive: boolean): number {
  const sock = this.socket as ParsedSocket;
  if (tookLast(sock)) return 2;
  return (sock[kOnIncoming] as OnIncoming)(req, keepAlive);
}

/** For the server's 'connection' event, after node:http's own: the connection's parser stops at the first head past its last request. */
export function capPipelining(sock: Socket): void {
  const s = sock as ParsedSocket;
  const p = s.parser;
  // A Node without it parses on; handle() drops what comes past the last.
  if (p == null || typeof p.onIncoming !== 'function') return;
  s[kOnIncoming] = p.onIncoming;
  p.onIncoming = onIncoming;
}

export class NodeHttpForwarder {
  readonly log: ForwardingContext['log'];
  /** Requests in flight (held, queued or forwarded). */
  readonly inFlight = new Set<NodeHttpExchange>();

  /** How long the rest of a body answered before its end is read and dropped at most: the keep-alive time. */
  readonly lingerMs: number;

  constructor(private readonly ctx: ForwardingContext, timeouts: ClientTimeouts = CLIENT_TIMEOUTS) {
    this.log = ctx.log;
    this.lingerMs = timeouts.keepAliveMs;
  }

  /** node:http's 'checkExpectation': an expectation other than 100-continue is refused, as on the parser side (417, then the connection closes after the body). */
  readonly refuseExpectation = (req: IncomingMessage, res: ServerResponse): void => {
    res.shouldKeepAlive = false;
    res.writeHead(417, { 'content-length': 0 });
    if (!hasBody(req.headers) || req.complete) {
      res.end();
      return;
    }
    res.flushHeaders();
    endAfterBody(req, res, null, this.lingerMs);
  };

  /** The request listener for the HTTP server. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const conn = connectionOf(req.socket);
    const take = conn.take();
    // Past the connection's last request: never routed nor answered; the
    // connection ends after the last one's answer.
    if (take === 'dropped') return;
    if (take === 'last') res.shouldKeepAlive = false;
    (res as TrackedResponse)[kConnection] = conn;
    // on(), not once(): once() wraps the listener in a new closure per call.
    res.on('close', onResponseClose);
    if (this.ctx.staticFiles !== undefined && this.ctx.staticFiles.tryServe(req, res, this.forward)) return;
    this.forward(req, res);
  };

  /** Sends the request to its app: at once, or after a static file turned out not to be one. */
  private readonly forward = (req: IncomingMessage, res: ServerResponse): void => {
    const g = this.ctx.groupFor(req);
    if (g instanceof PassengerError) {
      sendAgentResponse(req, res, g, null, this.lingerMs);
      return;
    }
    const ex = new NodeHttpExchange(this, req, res as TrackedResponse, g, (res as TrackedResponse)[kConnection] as ClientConnection, this.ctx.bodyLimitOf);
    // A request without a body is read (nothing) now: else the server drains
    // it after the response, with a listener sweep and a tick per request.
    if (!ex.withBody) req.read();
    (res as TrackedResponse)[kExchange] = ex;
    this.inFlight.add(ex);
    if (ex.conn.join(ex)) ex.start();
  };

  requests(): RequestSnapshot[] {
    const now = Date.now();
    return [...this.inFlight].map((ex) => ex.snapshot(now)).sort((a, b) => b.age_ms - a.age_ms);
  }
}

/** The agent's own answer. One given before the request's body is over goes out at once with Connection: close, and ends after the body (endAfterBody()). */
function sendAgentResponse(req: IncomingMessage, res: ServerResponse, err: Error, group: Group | null, lingerMs: number, body: AppRequest['body'] = null): void {
  if (res.headersSent || res.destroyed) return;
  const r = agentErrorResponse(err, group);
  const early = hasBody(req.headers) && !req.complete;
  const length = Buffer.byteLength(r.body);
  res.writeHead(r.status, r.close || early ? { 'content-type': r.type, 'content-length': length, connection: 'close' } : { 'content-type': r.type, 'content-length': length });
  if (!early) {
    res.end(r.body);
    return;
  }
  res.write(r.body);
  endAfterBody(req, res, body, lingerMs);
}

/**
 * A response given before its request's body is over ends (and node:http,
 * for one with Connection: close, closes the connection) only once the rest
 * of the body was read and dropped: a web server that sends all of it before
 * it reads the answer would otherwise find the connection reset under its
 * writes and answer 502. As the parser side does (client-http.ts): a body
 * that has not ended within the keep-alive time is cut off, and a client
 * that leaves meanwhile closes the response at once.
 */
function endAfterBody(req: IncomingMessage, res: ServerResponse, body: AppRequest['body'], lingerMs: number): void {
  if (res.destroyed) return;
  const timer = setTimeout(destroy, lingerMs, res);
  req.once('end', () => { res.end(); });
  res.once('close', () => { clearTimeout(timer); });
  letBodyFlow(req, body);
}

/**
 * Whatever read the body before (the app's side) lets go of it, maybe
 * paused, maybe holding slices (a counted body): it flows, unread.
 */
function letBodyFlow(req: IncomingMessage, body: AppRequest['body']): void {
  if (body instanceof RequestBody) body.drop();
  req.resume();
}

function destroy(what: { destroy(): unknown }): void {
  what.destroy();
}

/**
 * The app's answer is over (ending next) before the app took all of the
 * body: the rest flows, unread. A body still arriving (its answer said
 * Connection: close) is read to its end before the connection closes, as
 * after the agent's own early answers; node:http would close it as soon as
 * the answer is out, and the web server, still writing the body, would find
 * it reset. The answer itself ends at once all the same: a chunked one's last
 * chunk cannot wait for the body, which a web server may stop sending once it
 * has an answer.
 */
function answeredBeforeBody(req: IncomingMessage, res: ServerResponse, body: AppRequest['body'], conn: ClientConnection, lingerMs: number): void {
  letBodyFlow(req, body);
  if (req.complete || res.destroyed) return;
  const sock = req.socket;
  // No request behind it is taken, and node:http keeps the connection open
  // after the answer: `_last` is its own flag for closing after a response,
  // not public (checked on Node 20.20.2); without it the connection closes
  // at the answer's end, as before.
  conn.takeNoMore();
  (res as ServerResponse & { _last: boolean })._last = false;
  const timer = setTimeout(destroy, lingerMs, sock);
  req.once('end', () => { sock.destroySoon(); });
  sock.once('close', () => { clearTimeout(timer); });
}
