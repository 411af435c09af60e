// The request path through fastify routing and @fastify/reply-from
// (`--forwarder reply-from`). It behaves as the direct path does (sessions,
// retries, streaming) at a higher cost per request; it is kept so the two can
// be compared in one benchmark run.
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool as UndiciPool } from 'undici';
import { PassengerError } from '../errors';
import type { Group, QueueTicket } from '../pool/group';
import type { AppProcess } from '../pool/process';
import { connectionOf, type ClientConnection, type ConnectionRequest } from './client-connection';
import { agentErrorResponse } from './error-pages';
import { hasBody, isConnectFailure, mayRetry, rootCode } from './retry';
import { undiciPoolOf } from './transport';

const kForward = Symbol('passenger.forward');

type TrackedResponse = ServerResponse & { [kForward]?: Forward };

export interface ReplyFromContext {
  groupFor(req: IncomingMessage): Group | PassengerError;
  log: { warn(msg: string): void };
}

/**
 * One client request through reply-from. It holds at most one session or one
 * queue ticket at a time; close() gives back whichever it holds and aborts the
 * app's side, once, whatever the request was doing.
 */
class Forward implements ConnectionRequest {
  proc: AppProcess | null = null;
  ticket: QueueTicket | null = null;
  attempts = 0;
  closed = false;
  /** Aborts the request to the app (undici's signal). */
  upstream: AbortController | null = null;

  constructor(
    readonly reply: FastifyReply,
    readonly group: Group,
    readonly conn: ClientConnection,
    readonly route: (f: Forward, avoid: AppProcess | null) => void,
  ) {}

  admit(): void {
    this.route(this, null);
  }

  /** Gives the session back (the app's part failed); the request may be routed again. */
  releaseSession(): AppProcess | null {
    const p = this.proc;
    if (p !== null) {
      this.proc = null;
      p.group.release(p);
    }
    return p;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ticket !== null) {
      this.ticket.cancel();
      this.ticket = null;
    }
    this.releaseSession();
    // After the response is over this aborts nothing.
    this.upstream?.abort(new Error('the client left'));
    this.upstream = null;
    this.conn.leave(this);
  }
}

// reply-from calls the dispatcher's request() synchronously from reply.from(),
// so the request being forwarded is handed over in this slot.
let target: Forward | null = null;
const dispatcher = {
  request(opts: object, cb: (err: Error | null, data?: unknown) => void): void {
    const f = target;
    target = null;
    const t = f === null || f.proc === null ? null : undiciPoolOf(f.proc);
    if (t === null || f === null) {
      cb(Object.assign(new Error('the process has no connection pool'), { code: 'UND_ERR_DESTROYED' }));
      return;
    }
    f.upstream = new AbortController();
    t.request({ ...(opts as Parameters<UndiciPool['request']>[0]), signal: f.upstream.signal }, cb as never);
  },
};

/** The response is over, sent or cut short (pipelined ones behind it close with the connection). */
function onResponseClose(this: TrackedResponse): void {
  this[kForward]?.close();
}

export async function registerReplyFromForwarding(app: FastifyInstance, ctx: ReplyFromContext): Promise<void> {
  await app.register(replyFrom, { base: 'http://app', undici: dispatcher as never, disableRequestLogging: true });

  // Request bodies pass through as streams, never parsed or buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  function fail(reply: FastifyReply, err: Error, group: Group | null): void {
    if (reply.sent || reply.raw.headersSent) return;
    const r = agentErrorResponse(err, group);
    void reply.code(r.status).type(r.type).send(r.body);
  }

  function forward(f: Forward, p: AppProcess): void {
    if (f.closed) {
      p.group.release(p);
      return;
    }
    f.attempts++;
    f.proc = p;
    target = f;
    f.reply.from(undefined, FROM_OPTIONS);
  }

  function route(f: Forward, avoid: AppProcess | null): void {
    if (f.closed) return;
    const p = f.group.checkout(avoid);
    if (p !== null) {
      forward(f, p);
      return;
    }
    f.ticket = f.group.wait((err, proc) => {
      f.ticket = null;
      if (proc !== null) {
        forward(f, proc);
      } else {
        fail(f.reply, err ?? new Error('no process'), f.group);
        f.close();
      }
    });
  }

  function onError(reply: FastifyReply, { error }: { error: Error }): void {
    const res = reply.raw as TrackedResponse;
    const f = res[kForward];
    if (f === undefined || f.closed) return; // the client left; nothing to answer
    const request = reply.request;
    const code = rootCode(error);
    f.upstream = null;
    const p = f.releaseSession();
    if (p !== null) {
      if (isConnectFailure(code)) {
        ctx.log.warn(`process ${p.pid} of ${p.group.name} refused a connection (${code}); taking it out of rotation`);
        p.group.detach(p);
      }
      if (!res.headersSent && !res.destroyed && mayRetry(code, request.method, hasBody(request.headers), f.attempts)) {
        route(f, p);
        return;
      }
      ctx.log.warn(`${request.method} ${request.url} on process ${p.pid} failed: ${error.message}${code ? ` (${code})` : ''}`);
    }
    fail(reply, new PassengerError('E_BAD_GATEWAY', error.message), null);
    f.close();
  }

  function rewriteRequestHeaders(request: FastifyRequest, headers: Record<string, unknown>): Record<string, unknown> {
    headers.host = request.headers.host;
    const prior = request.headers['x-forwarded-for'];
    // On a Unix socket (no address) the web server in front says who the client is.
    const addr = request.raw.socket.remoteAddress;
    const xff = addr === undefined ? prior : prior ? `${prior}, ${addr}` : addr;
    if (xff === undefined) delete headers['x-forwarded-for'];
    else headers['x-forwarded-for'] = xff;
    headers['x-forwarded-proto'] ??= 'http';
    delete headers.expect;
    // X-Passenger-*: between the web server and the agent, never for the app.
    for (const name of Object.keys(headers)) if (name.startsWith('x-passenger-')) delete headers[name];
    return headers;
  }

  // Hop-by-hop headers of the app's connection are not the client's.
  function rewriteHeaders(headers: Record<string, unknown>): Record<string, unknown> {
    delete headers.connection;
    delete headers['keep-alive'];
    return headers;
  }

  const FROM_OPTIONS = {
    onError,
    rewriteRequestHeaders,
    rewriteHeaders,
    // The app's own 503s are answers, not reasons to resend.
    retryDelay: () => null,
  } as never;

  app.all('*', (request, reply) => {
    const g = ctx.groupFor(request.raw);
    if (g instanceof PassengerError) {
      fail(reply, g, null);
      return;
    }
    const f = new Forward(reply, g, connectionOf(request.raw.socket), route);
    const res = reply.raw as TrackedResponse;
    res[kForward] = f;
    res.once('close', onResponseClose);
    if (f.conn.join(f)) route(f, null);
  });
}
