// The request path through fastify routing and @fastify/reply-from
// (`--forwarder reply-from`). It behaves as the direct path does (sessions,
// retries, streaming) at a higher cost per request; it is kept so the two can
// be compared in one benchmark run.
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool as UndiciPool } from 'undici';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { AppProcess } from '../pool/process';
import { agentErrorResponse } from './error-pages';
import { hasBody, isConnectFailure, mayRetry, rootCode } from './retry';
import { undiciPoolOf } from './transport';

const kProcess = Symbol('passenger.process');
const kAttempts = Symbol('passenger.attempts');

type TrackedResponse = ServerResponse & { [kProcess]?: AppProcess | null; [kAttempts]?: number };

export interface ReplyFromContext {
  groupFor(req: IncomingMessage): Group | PassengerError;
  log: { warn(msg: string): void };
}

// reply-from calls the dispatcher's request() synchronously from reply.from(),
// so the process chosen for this request is handed over in this slot.
let target: AppProcess | null = null;
const dispatcher = {
  request(opts: object, cb: (err: Error | null, data?: unknown) => void): void {
    const p = target;
    target = null;
    const t = p === null ? null : undiciPoolOf(p);
    if (t === null) {
      cb(Object.assign(new Error('the process has no connection pool'), { code: 'UND_ERR_DESTROYED' }));
      return;
    }
    t.request(opts as Parameters<UndiciPool['request']>[0], cb as never);
  },
};

function onResponseClose(this: TrackedResponse): void {
  const p = this[kProcess];
  if (p) {
    this[kProcess] = null;
    p.group.release(p);
  }
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

  function forward(reply: FastifyReply, p: AppProcess): void {
    const res = reply.raw as TrackedResponse;
    if (res[kAttempts] === undefined) {
      res[kAttempts] = 0;
      res.once('close', onResponseClose);
    }
    if (res.destroyed) {
      p.group.release(p);
      return;
    }
    res[kAttempts] = (res[kAttempts] ?? 0) + 1;
    res[kProcess] = p;
    target = p;
    reply.from(undefined, FROM_OPTIONS);
  }

  function route(reply: FastifyReply, g: Group, avoid: AppProcess | null = null): void {
    const p = g.checkout(avoid);
    if (p !== null) {
      forward(reply, p);
      return;
    }
    g.wait((err, proc) => {
      if (proc !== null) forward(reply, proc);
      else fail(reply, err ?? new Error('no process'), g);
    });
  }

  function onError(reply: FastifyReply, { error }: { error: Error }): void {
    const res = reply.raw as TrackedResponse;
    const p = res[kProcess] ?? null;
    const request = reply.request;
    const code = rootCode(error);
    if (p !== null) {
      res[kProcess] = null;
      if (isConnectFailure(code)) {
        ctx.log.warn(`process ${p.pid} of ${p.group.name} refused a connection (${code}); taking it out of rotation`);
        p.group.detach(p);
      }
      p.group.release(p);
      if (!res.headersSent && !res.destroyed && mayRetry(code, request.method, hasBody(request.headers), res[kAttempts] ?? 0)) {
        route(reply, p.group, p);
        return;
      }
      ctx.log.warn(`${request.method} ${request.url} on process ${p.pid} failed: ${error.message}${code ? ` (${code})` : ''}`);
    }
    fail(reply, new PassengerError('E_BAD_GATEWAY', error.message), null);
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
    if (g instanceof PassengerError) fail(reply, g, null);
    else route(reply, g);
  });
}
