// The request path: check out a session on the least-busy process of the
// request's group and forward with @fastify/reply-from over a keep-alive
// connection pool to that process. Bodies stream both ways. A request that
// never reached its process, or got no response bytes from a process that
// died, is retried on another process when it is safe to send it again.
import replyFrom from '@fastify/reply-from';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { Pool as UndiciPool } from 'undici';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { AppProcess } from '../pool/process';
import { queueFullPage, spawnErrorPage } from './error-pages';

const kProcess = Symbol('passenger.process');
const kAttempts = Symbol('passenger.attempts');
const MAX_ATTEMPTS = 3;

type TrackedResponse = ServerResponse & { [kProcess]?: AppProcess | null; [kAttempts]?: number };

/** Opens the keep-alive connection pool to a process; called once per process. */
export function openTransport(p: AppProcess): void {
  const ep = p.handle.endpoint;
  p.transport = 'socketPath' in ep
    ? new UndiciPool('http://app', { socketPath: ep.socketPath, connections: null, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 4000 })
    : new UndiciPool(`http://${ep.host}:${ep.port}`, { connections: null, pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 4000 });
}

export function closeTransport(p: AppProcess): void {
  const t = p.transport as UndiciPool | null;
  p.transport = null;
  if (t) void t.destroy().catch(() => undefined);
}

// reply-from calls the dispatcher's request() synchronously from reply.from(),
// so the process chosen for this request is handed over in this slot: no
// per-request dispatcher, URL or closure.
let target: AppProcess | null = null;
const dispatcher = {
  request(opts: object, cb: (err: Error | null, data?: unknown) => void): void {
    const p = target;
    target = null;
    const t = p?.transport as UndiciPool | null | undefined;
    if (!t) {
      cb(Object.assign(new Error('process has no transport'), { code: 'ECONNREFUSED' }));
      return;
    }
    t.request(opts as Parameters<UndiciPool['request']>[0], cb as never);
  },
};

/** Releases the session when the client's response is over, finished or aborted. */
function onResponseClose(this: TrackedResponse): void {
  const p = this[kProcess];
  if (p) {
    this[kProcess] = null;
    p.group.release(p);
  }
}

const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE']);
const NO_RESPONSE_FAILURES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function hasBody(req: FastifyRequest): boolean {
  const h = req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

function rootCode(err: unknown): string | undefined {
  let e = err as { code?: string; cause?: unknown } | undefined;
  for (let i = 0; e && i < 4; i++) {
    if (e.cause === undefined) return e.code;
    e = e.cause as typeof e;
  }
  return e?.code;
}

export interface ForwardingContext {
  /** The group a request belongs to, or an error to answer with. */
  groupFor(req: FastifyRequest): Group | PassengerError;
  log: { warn(msg: string): void; error(msg: string): void };
}

export async function registerForwarding(app: FastifyInstance, ctx: ForwardingContext): Promise<void> {
  await app.register(replyFrom, { base: 'http://app', undici: dispatcher as never, disableRequestLogging: true });

  // Request bodies pass through as streams, never parsed or buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  function fail(reply: FastifyReply, err: Error, group: Group | null): void {
    if (reply.sent) return;
    if (err instanceof PassengerError && err.code === 'E_QUEUE_FULL') {
      reply.code(503).type('text/html; charset=utf-8').send(queueFullPage());
      return;
    }
    if (err instanceof PassengerError && err.code === 'E_APP_ROOT_DENIED') {
      reply.code(403).type('text/plain; charset=utf-8').send(`${err.message}\n`);
      return;
    }
    const friendly = group?.options.friendlyErrorPages ?? false;
    if (friendly) {
      reply.code(500).type('text/html; charset=utf-8').send(spawnErrorPage(err, group));
    } else {
      reply.code(500).type('text/plain; charset=utf-8').send('Internal Server Error: the application could not be started. The server log says why.\n');
    }
  }

  function forward(request: FastifyRequest, reply: FastifyReply, p: AppProcess): void {
    const res = reply.raw as TrackedResponse;
    if (res[kAttempts] === undefined) {
      res[kAttempts] = 0;
      res.once('close', onResponseClose);
    }
    if (res.destroyed) {
      // The client left while we waited for a process.
      p.group.release(p);
      return;
    }
    res[kAttempts]!++;
    res[kProcess] = p;
    target = p;
    reply.from(undefined, FROM_OPTIONS);
  }

  function checkoutAndForward(request: FastifyRequest, reply: FastifyReply, g: Group): void {
    const p = g.checkout();
    if (p !== null) {
      forward(request, reply, p);
      return;
    }
    g.wait((err, proc) => {
      if (err !== null || proc === null) fail(reply, err ?? new Error('no process'), g);
      else forward(request, reply, proc);
    });
  }

  function onError(reply: FastifyReply, { error }: { error: Error }): void {
    const res = reply.raw as TrackedResponse;
    const p = res[kProcess] ?? null;
    const request = reply.request;
    const code = rootCode(error);
    if (p) {
      res[kProcess] = null;
      const connectFailed = code !== undefined && CONNECT_FAILURES.has(code) && code !== 'ECONNRESET' && code !== 'EPIPE';
      if (connectFailed) {
        // Its socket refuses: the process is gone or broken; stop routing to it.
        ctx.log.warn(`process ${p.pid} of ${p.group.name} refused a connection (${code}); taking it out of rotation`);
        p.group.detach(p);
      }
      p.group.release(p);
      const retryable = !reply.sent && !res.headersSent && (res[kAttempts] ?? 0) < MAX_ATTEMPTS && !hasBody(request)
        && (connectFailed || (code !== undefined && NO_RESPONSE_FAILURES.has(code) && IDEMPOTENT.has(request.method)));
      if (retryable && !res.destroyed) {
        checkoutAndForward(request, reply, p.group);
        return;
      }
      ctx.log.warn(`${request.method} ${request.url} to process ${p.pid} failed: ${error.message}${code ? ` (${code})` : ''}`);
    }
    if (!reply.sent && !res.headersSent) reply.code(502).type('text/plain; charset=utf-8').send('Bad Gateway: the application process failed to answer.\n');
  }

  function rewriteRequestHeaders(request: FastifyRequest, headers: Record<string, unknown>): Record<string, unknown> {
    headers.host = request.headers.host;
    const prior = request.headers['x-forwarded-for'];
    const addr = request.raw.socket.remoteAddress;
    headers['x-forwarded-for'] = prior ? `${prior}, ${addr}` : addr;
    headers['x-forwarded-proto'] = 'http';
    return headers;
  }

  // Hop-by-hop headers of the app's connection are not the client's.
  function rewriteHeaders(headers: Record<string, unknown>): Record<string, unknown> {
    if (headers.connection !== undefined) delete headers.connection;
    if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
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
    const g = ctx.groupFor(request);
    if (g instanceof PassengerError) {
      fail(reply, g, null);
      return;
    }
    checkoutAndForward(request, reply, g);
  });
}
