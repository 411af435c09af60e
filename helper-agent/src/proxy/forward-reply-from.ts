// The request path through fastify routing and @fastify/reply-from
// (`--forwarder reply-from`). It shares the request core (exchange.ts) with
// the default path, so sessions, the queue, retries, the sticky cookie and
// header rules are the same; it costs more per request and is kept so the
// two can be compared in one benchmark run.
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool as UndiciPool } from 'undici';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { Session } from '../pool/session';
import { connectionOf, type ClientConnection } from './client-connection';
import { agentErrorResponse } from './error-pages';
import { Exchange, type ForwardingContext } from './exchange';
import { rewriteAppHeaders, stripResponseHopByHopObject } from './headers';
import { hasBody } from './retry';
import { undiciPoolOf } from './transport';

const kForward = Symbol('passenger.forward');
type Tracked<T> = T & { [kForward]?: ReplyFromExchange };

export type ReplyFromContext = Pick<ForwardingContext, 'groupFor' | 'log'>;

const NO_POOL = Object.assign(new Error('the process has no connection pool'), { code: 'E_APP_CONNECTION_LOST' });

function fail(reply: FastifyReply, err: Error, group: Group | null): void {
  if (reply.sent || reply.raw.headersSent) return;
  const r = agentErrorResponse(err, group);
  if (r.close) reply.header('connection', 'close');
  void reply.code(r.status).type(r.type).send(r.body);
}

/** One client request through reply-from. */
class ReplyFromExchange extends Exchange {
  readonly withBody: boolean;
  /** Aborts the request to the app (undici's signal). */
  upstream: AbortController | null = null;

  constructor(
    readonly reply: FastifyReply,
    group: Group,
    log: ForwardingContext['log'],
    readonly conn: ClientConnection,
  ) {
    super(reply.request.raw, group, log);
    this.withBody = hasBody(reply.request.headers);
  }

  protected send(_s: Session): void {
    target = this;
    this.reply.from(undefined, FROM_OPTIONS);
  }

  /** The app's response head arrived: the Set-Cookie of a sticky session joins it. */
  onResponseHeaders(headers: Record<string, unknown>): void {
    this.responding();
    const cookie = this.stickyCookie();
    if (cookie === null) return;
    const prior = headers['set-cookie'];
    headers['set-cookie'] = prior === undefined ? cookie : Array.isArray(prior) ? [...prior, cookie] : [prior, cookie];
  }

  protected answer(err: Error): void {
    fail(this.reply, err, this.group);
  }

  protected clientGone(): boolean {
    const res = this.reply.raw;
    return res.headersSent || res.destroyed;
  }

  protected cutClient(): void {
    this.reply.raw.destroy();
  }

  protected abortApp(): void {
    // Mid-response this ends the app's body stream too; after the response is over it aborts nothing.
    this.upstream?.abort(new Error('the client left'));
    this.upstream = null;
  }

  protected onClosed(): void {
    this.upstream = null;
    this.conn.leave(this);
  }
}

// reply-from calls the dispatcher's request() synchronously from reply.from(),
// so the request being forwarded is handed over in this slot.
let target: ReplyFromExchange | null = null;
const dispatcher = {
  request(opts: object, cb: (err: Error | null, data?: unknown) => void): void {
    const f = target;
    target = null;
    const t = f === null || f.session === null ? null : undiciPoolOf(f.session.process);
    if (t === null || f === null) {
      cb(NO_POOL);
      return;
    }
    f.upstream = new AbortController();
    t.request({ ...(opts as Parameters<UndiciPool['request']>[0]), signal: f.upstream.signal }, cb as never);
  },
};

const kTaken = Symbol('passenger.taken');
type TakenResponse = Tracked<ServerResponse> & { [kTaken]?: ClientConnection };

/** The response is over, sent or cut short (pipelined ones behind it close with the connection). */
function onResponseClose(this: TakenResponse): void {
  this[kTaken]?.answered();
  this[kForward]?.close();
}

function onError(reply: FastifyReply, { error }: { error: Error }): void {
  const f = (reply.raw as Tracked<ServerResponse>)[kForward];
  if (f === undefined) return;
  f.upstream = null;
  f.upstreamFailed(error);
}

function rewriteRequestHeaders(request: FastifyRequest, headers: Record<string, unknown>): Record<string, unknown> {
  // reply-from names its base URL as the host; the app hears the client's.
  headers.host = request.headers.host;
  return rewriteAppHeaders(headers, request.raw);
}

function rewriteHeaders(headers: Record<string, unknown>, request?: FastifyRequest): Record<string, unknown> {
  stripResponseHopByHopObject(headers);
  if (request !== undefined) (request.raw as Tracked<IncomingMessage>)[kForward]?.onResponseHeaders(headers);
  return headers;
}

const FROM_OPTIONS = {
  onError,
  rewriteRequestHeaders,
  rewriteHeaders,
  // The app's own 503s are answers, not reasons to resend.
  retryDelay: () => null,
} as never;

export async function registerReplyFromForwarding(app: FastifyInstance, ctx: ReplyFromContext): Promise<void> {
  await app.register(replyFrom, { base: 'http://app', undici: dispatcher as never, disableRequestLogging: true });

  // Request bodies pass through as streams, never parsed or buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.all('*', (request, reply) => {
    const conn = connectionOf(request.raw.socket);
    // At most PIPELINE_TAKEN requests of a connection ahead of their answers,
    // as on the other request sides (capPipelining stops the parser past the
    // last; without node:http's internals the ones past it are dropped here).
    const take = conn.take();
    if (take === 'dropped') return;
    const res = reply.raw as TakenResponse;
    if (take === 'last') res.shouldKeepAlive = false;
    res[kTaken] = conn;
    res.once('close', onResponseClose);
    const g = ctx.groupFor(request.raw);
    if (g instanceof PassengerError) {
      fail(reply, g, null);
      return;
    }
    const f = new ReplyFromExchange(reply, g, ctx.log, conn);
    (request.raw as Tracked<IncomingMessage>)[kForward] = f;
    res[kForward] = f;
    if (f.conn.join(f)) f.start();
  });
}
