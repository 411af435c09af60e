// The default request path: a plain Node request listener that checks out a
// session and dispatches straight onto the process's keep-alive client
// (app-client.ts), streaming the response back as it arrives. Per request it
// allocates one Exchange and one header list; no URL parsing, no promise, no
// stream wrapper, no closure.
// (The @fastify/reply-from path in forward-reply-from.ts does several times
// this work per request; README.md has the numbers.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassengerError } from '../errors';
import type { Group, QueueTicket } from '../pool/group';
import type { AppProcess } from '../pool/process';
import { agentErrorResponse } from './error-pages';
import { hasBody, isConnectFailure, mayRetry, rootCode } from './retry';
import type { StaticFiles } from './static-files';
import type { AppRequest, ResponseHandler } from './app-client';
import { connectionOf, type ClientConnection, type ConnectionRequest } from './client-connection';
import { appClientOf } from './transport';

export interface ForwardingContext {
  /** The group a request belongs to, or an error to answer with. */
  groupFor(req: IncomingMessage): Group | PassengerError;
  log: { warn(msg: string): void };
  /** Standalone: the app's public/ files, served without the app. */
  staticFiles?: StaticFiles;
}

const kExchange = Symbol('passenger.exchange');
type TrackedResponse = ServerResponse & { [kExchange]?: Exchange };

const COMMA = ', ';

/**
 * Request headers for the app: the client's, minus hop-by-hop ones (which
 * describe the client's connection, not ours to the app), plus
 * X-Forwarded-For/-Proto. Names are compared lowercased only when their
 * length matches one we drop.
 */
export function appHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let xff: string | null = null;
  let proto = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    // X-Passenger-*: between the web server and us, never for the app.
    if (name.length > 12 && name.charCodeAt(1) === 45 && (name.charCodeAt(0) | 32) === 120 && name.slice(2, 12).toLowerCase() === 'passenger-') continue;
    switch (name.length) {
      case 2: case 6: case 7: case 10: case 15: case 16: case 17: {
        const n = name.toLowerCase();
        if (n === 'connection' || n === 'keep-alive' || n === 'transfer-encoding' || n === 'upgrade'
          || n === 'expect' || n === 'proxy-connection' || n === 'te') continue;
        if (n === 'x-forwarded-for') { xff = xff === null ? raw[i + 1] : xff + COMMA + raw[i + 1]; continue; }
        if (n === 'x-forwarded-proto') proto = true;
        break;
      }
      default:
        break;
    }
    out.push(name, raw[i + 1]);
  }
  const addr = req.socket.remoteAddress;
  if (addr === undefined) {
    // A Unix socket: the web server in front says who the client is.
    if (xff !== null) out.push('x-forwarded-for', xff);
  } else {
    out.push('x-forwarded-for', xff === null ? addr : xff + COMMA + addr);
  }
  if (!proto) out.push('x-forwarded-proto', 'http');
  return out;
}

/** True for the response header names that belong to the app's connection, not the client's. */
function isHopByHop(name: string): boolean {
  const len = name.length;
  if (len !== 10 && len !== 17) return false;
  const s = name.toLowerCase();
  return s === 'connection' || s === 'keep-alive' || s === 'transfer-encoding';
}

/** A request in flight, for `passenger-status --show=requests`. */
export interface RequestSnapshot {
  method: string;
  path: string;
  group: string;
  /** null while it waits for a process */
  pid: number | null;
  /** websocket: an upgraded connection, open since age_ms */
  state: 'queued' | 'forwarded' | 'responding' | 'websocket';
  age_ms: number;
  client: string | null;
}

/**
 * One client request on its way to (and back from) an app process. It holds
 * at most one session (`proc`) or one queue ticket at a time; close() gives
 * back whichever it holds and cuts off the app's side, once, whatever the
 * exchange was doing.
 */
class Exchange implements ResponseHandler, ConnectionRequest {
  proc: AppProcess | null = null;
  attempts = 0;
  responded = false;
  /** No more is written to the client (answered, cut short, or it left). */
  finished = false;
  /** Over: nothing held, nothing more to do. */
  closed = false;
  /** Its place in the group's queue while it waits for a process. */
  queued: QueueTicket | null = null;
  readonly startedAt = Date.now();
  private abortUpstream: ((err?: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The sticky cookie's value the client sent (null: none, or stickiness off). */
  stickyId: string | null = null;
  private readonly opts: AppRequest;

  constructor(
    readonly forwarder: DirectForwarder,
    readonly req: IncomingMessage,
    readonly res: TrackedResponse,
    readonly group: Group,
    readonly conn: ClientConnection,
  ) {
    const withBody = hasBody(req.headers);
    this.opts = { path: req.url as string, method: req.method as string, headers: appHeaders(req), body: withBody ? req : null };
  }

  get withBody(): boolean {
    return this.opts.body !== null;
  }

  /** Its turn on the client connection came (pipelined behind others): route it. */
  admit(): void {
    this.forwarder.start(this);
  }

  dispatch(p: AppProcess): void {
    if (this.closed) {
      p.group.release(p);
      return;
    }
    this.proc = p;
    this.queued = null;
    this.attempts++;
    this.abortUpstream = null;
    const t = appClientOf(p);
    if (t === null) {
      this.onError(Object.assign(new Error('the process has no connection pool'), { code: 'UND_ERR_DESTROYED' }));
      return;
    }
    const limit = this.group.options.maxRequestTime;
    if (limit > 0 && this.timer === null) this.timer = setTimeout(() => this.onTimeout(limit), limit * 1000);
    t.dispatch(this.opts, this);
  }

  /** max_request_time passed: answer 504, cut the app's request off, replace its process. */
  private onTimeout(limit: number): void {
    this.timer = null;
    if (this.finished) return;
    const p = this.proc;
    this.forwarder.log.warn(`${this.req.method} ${this.req.url} ran longer than ${limit} s (max_request_time)${p ? `; replacing process ${p.pid}` : ''}`);
    if (p !== null) p.group.replace(p);
    // Answer first: the abort below reports back through onError, which then has nothing left to do.
    if (this.responded) {
      this.finished = true;
      this.res.destroy();
      this.close();
    } else {
      this.forwarder.respond(this, new PassengerError('E_REQUEST_TIMEOUT', `the request ran longer than ${limit} s (max_request_time)`));
    }
    this.abortUpstream?.(new Error('max_request_time'));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.closed) abort();
  }

  /**
   * The exchange is over, or its client left: the queue ticket or session is
   * given back, and a response still under way is cut off at the app's side
   * too (else its connection is left paused). Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.forwarder.inFlight.delete(this);
    this.clearTimer();
    if (this.queued !== null) {
      this.queued.cancel();
      this.queued = null;
    }
    const p = this.proc;
    if (p !== null) {
      this.proc = null;
      p.group.release(p);
    }
    if (!this.finished) {
      this.finished = true;
      this.abortUpstream?.(new Error('the client left'));
    }
    this.conn.leave(this);
  }

  onHeaders(status: number, headers: string[], resume: () => void, statusText: string): boolean {
    if (this.res.headersSent) return false;
    // The list is ours: drop the hop-by-hop headers in place.
    let w = 0;
    for (let i = 0; i < headers.length; i += 2) {
      if (isHopByHop(headers[i])) continue;
      headers[w] = headers[i];
      headers[w + 1] = headers[i + 1];
      w += 2;
    }
    headers.length = w;
    const o = this.group.options;
    if (o.stickySessions && this.proc !== null && this.stickyId !== String(this.proc.id)) {
      headers.push('set-cookie', stickyCookie(o.stickySessionsCookieName, this.proc.id, o.stickySessionsCookieAttributes, this.req));
    }
    this.responded = true;
    this.resume = resume;
    this.res.writeHead(status, statusText || undefined, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const ok = this.res.write(chunk);
    if (!ok && this.resume) this.res.once('drain', this.resume);
    return ok;
  }

  onComplete(): void {
    this.finished = true;
    this.res.end();
    // The app's part is over: its process is free even while the response
    // still waits, pipelined, behind an earlier one to the client.
    this.close();
  }

  clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  onError(err: Error): void {
    const p = this.proc;
    const code = rootCode(err);
    if (this.finished || this.res.writableEnded) return; // answered already (e.g. max_request_time)
    if (this.responded) {
      // The response was under way: the client must see it cut short.
      this.forwarder.log.warn(`${this.req.method} ${this.req.url} on process ${p?.pid}: the response broke off (${code ?? err.message})`);
      this.finished = true;
      this.res.destroy();
      this.close();
      return;
    }
    if (this.closed) return;
    if (this.res.destroyed) {
      this.close();
      return;
    }
    if (p !== null) {
      this.proc = null;
      if (isConnectFailure(code)) {
        this.forwarder.log.warn(`process ${p.pid} of ${p.group.name} refused a connection (${code}); taking it out of rotation`);
        p.group.detach(p);
      }
      p.group.release(p);
    }
    if (mayRetry(code, this.req.method as string, this.withBody, this.attempts)) {
      this.forwarder.route(this, p);
      return;
    }
    this.forwarder.log.warn(`${this.req.method} ${this.req.url}${p ? ` on process ${p.pid}` : ''} failed: ${err.message}${code ? ` (${code})` : ''}; attempt ${this.attempts}${this.withBody ? ', with a body: not retried' : ''}`);
    this.forwarder.respond(this, new PassengerError('E_BAD_GATEWAY', `the app process failed to answer: ${err.message}`));
  }

  snapshot(now: number): RequestSnapshot {
    return {
      method: this.req.method ?? '?',
      path: this.req.url ?? '?',
      group: this.group.name,
      pid: this.proc?.pid ?? null,
      state: this.proc === null ? 'queued' : this.responded ? 'responding' : 'forwarded',
      age_ms: now - this.startedAt,
      client: this.req.socket.remoteAddress ?? null,
    };
  }
}

/** The sticky cookie for a process: Secure only when the client came over HTTPS (else browsers drop it). */
export function stickyCookie(name: string, id: number, attributes: string, req: IncomingMessage): string {
  const https = (req.socket as { encrypted?: boolean }).encrypted === true || req.headers['x-forwarded-proto'] === 'https';
  const attrs = attributes.replace(/;?\s*Secure\s*;?/i, ';').replace(/^;|;\s*$/g, '').trim();
  return `${name}=${id}; Path=/${attrs ? `; ${attrs}` : ''}${https ? '; Secure' : ''}`;
}

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  let i = header.indexOf(name);
  while (i !== -1) {
    const before = i === 0 ? ' ' : header[i - 1];
    if ((before === ' ' || before === ';') && header[i + name.length] === '=') {
      const start = i + name.length + 1;
      const end = header.indexOf(';', start);
      return header.slice(start, end === -1 ? undefined : end).trim();
    }
    i = header.indexOf(name, i + 1);
  }
  return null;
}

/**
 * The client's response is over, finished or cut short. (Node emits this only
 * for the response that owns the socket; pipelined ones behind it are closed
 * with the connection, client-connection.ts.)
 */
function onResponseClose(this: TrackedResponse): void {
  this[kExchange]?.close();
}

export class DirectForwarder {
  readonly log: ForwardingContext['log'];
  /** Requests in flight (queued or forwarded). */
  readonly inFlight = new Set<Exchange>();

  constructor(private readonly ctx: ForwardingContext) {
    this.log = ctx.log;
  }

  /** The request listener for the HTTP server. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.ctx.staticFiles !== undefined && this.ctx.staticFiles.tryServe(req, res, this.forward)) return;
    this.forward(req, res);
  };

  /** Sends the request to its app: at once, or after a static file turned out not to be one. */
  private readonly forward = (req: IncomingMessage, res: ServerResponse): void => {
    const g = this.ctx.groupFor(req);
    if (g instanceof PassengerError) {
      sendAgentResponse(res, g, null);
      return;
    }
    const ex = new Exchange(this, req, res as TrackedResponse, g, connectionOf(req.socket));
    // A request without a body is read (nothing) now: else the server drains
    // it after the response, with a listener sweep and a tick per request.
    if (!ex.withBody) req.read();
    (res as TrackedResponse)[kExchange] = ex;
    // on(), not once(): once() wraps the listener in a new closure per call.
    res.on('close', onResponseClose);
    this.inFlight.add(ex);
    if (ex.conn.join(ex)) this.start(ex);
  };

  /** Routes an exchange whose turn on its client connection has come. */
  start(ex: Exchange): void {
    if (ex.closed) return;
    if (ex.group.options.stickySessions && this.routeSticky(ex)) return;
    this.route(ex);
  }

  /** A client with a sticky cookie for a live process with room goes to that process. */
  private routeSticky(ex: Exchange): boolean {
    const id = cookieValue(ex.req.headers.cookie, ex.group.options.stickySessionsCookieName);
    ex.stickyId = id;
    if (id === null) return false;
    const p = ex.group.processes.find((x) => String(x.id) === id);
    if (p === undefined || !ex.group.checkoutOn(p)) return false;
    ex.dispatch(p);
    return true;
  }

  /** Checks out a session for the exchange (now, or when a process frees up) and dispatches it. */
  route(ex: Exchange, avoid: AppProcess | null = null): void {
    const p = ex.group.checkout(avoid);
    if (p !== null) {
      ex.dispatch(p);
      return;
    }
    ex.queued = ex.group.wait((err, proc) => {
      ex.queued = null;
      if (proc !== null) {
        ex.dispatch(proc);
      } else {
        this.respond(ex, err ?? new Error('no process'));
      }
    });
  }

  respond(ex: Exchange, err: Error): void {
    ex.finished = true;
    sendAgentResponse(ex.res, err, ex.group);
    ex.close();
  }

  requests(): RequestSnapshot[] {
    const now = Date.now();
    return [...this.inFlight].map((ex) => ex.snapshot(now)).sort((a, b) => b.age_ms - a.age_ms);
  }
}

function sendAgentResponse(res: ServerResponse, err: Error, group: Group | null): void {
  if (res.headersSent || res.destroyed) return;
  const r = agentErrorResponse(err, group);
  res.writeHead(r.status, { 'content-type': r.type, 'content-length': Buffer.byteLength(r.body) });
  res.end(r.body);
}
