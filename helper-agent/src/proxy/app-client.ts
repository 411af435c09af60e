// The agent's HTTP/1.1 client to one app process: keep-alive connections,
// each with Node's own response parser (the one node:http uses). A request's
// head goes out as one string; the response comes back as the parser's header
// list and body slices, streamed to a handler with backpressure both ways.
// Per request it allocates the head string and nothing per header.
import * as net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { HTTPParser, type Parser } from './http-parser';

export type Endpoint = { socketPath: string } | { host: string; port: number };

export interface AppRequest {
  method: string;
  path: string;
  /** Name, value, name, value... */
  headers: string[];
  /** The client's request body, streamed; null when it has none. */
  body: RequestBody | null;
}

/** A request body as the client's side delivers it: a Readable, or the parser-based request side's body (client-request.ts). */
export interface RequestBody {
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  off(event: 'data', fn: (chunk: Buffer) => void): unknown;
  off(event: 'end', fn: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** What hears the app's response (the same shape as undici's dispatch handler). */
export interface ResponseHandler {
  /** `abort` cuts the request off; onError follows. */
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(status: number, headers: string[], resume: () => void, statusText: string): boolean;
  /** false: stop reading from the app until `resume` is called. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** Before onComplete(): the response is over and the app was not sent all of the request body; the rest of it is the handler's to let go of. */
  onBodyLeft?(): void;
  onError(err: Error): void;
}

/** Idle connections close before Node's default keepAliveTimeout (5 s) would close them from the app's side: after IDLE_MS, by a sweep every SWEEP_MS (no timer per request). */
const IDLE_MS = 3000;
const SWEEP_MS = 1000;

/** Failures carry the project's codes (errors.ts), which the retry rules (retry.ts) read. */
function withCode(message: string, code: 'E_APP_CONNECTION_LOST' | 'E_APP_BAD_RESPONSE'): Error {
  return Object.assign(new Error(message), { code });
}

/** The socket's stream handle, which the parser can read from itself (as node:http's server has it do). */
interface StreamHandle { isStreamBase?: boolean; _consumed?: boolean; reading?: boolean; readStop(): number; readStart(): number }

/**
 * A request head goes to a connected socket's handle straight, past
 * net.Socket's stream machinery (a write request and callbacks per write),
 * with the bindings the default request side writes to clients with; null
 * on a Node without them (the node-http request side), which writes heads
 * through the socket.
 */
const writeNow: ((h: StreamHandle, s: string) => number) | null = (() => {
  try {
    const { writeTo } = require('./client-stream') as typeof import('./client-stream');
    return (h, s) => writeTo(h as unknown as Parameters<typeof writeTo>[0], s, null);
  } catch {
    return null;
  }
})();

class AppConnection {
  readonly sock: net.Socket;
  /** The handle the parser reads: no Buffer, stream or event per read. */
  private readonly handle: StreamHandle | null = null;
  private readonly parser: Parser;
  private handler: ResponseHandler | null = null;
  private headOnly = false;
  private interim = false;
  private keepAlive = false;
  private bodyDone = true;
  private partialHeaders: string[] = [];
  /** When it was last given back to the idle list. */
  idleSince = 0;
  private readonly resume = (): void => { this.startReading(); };
  private readonly abort = (err?: Error): void => { this.fail(err ?? new Error('the request was aborted')); };

  constructor(private readonly client: AppClient, endpoint: Endpoint) {
    if ('socketPath' in endpoint) {
      this.sock = net.connect(endpoint.socketPath);
    } else {
      this.sock = net.connect(endpoint.port, endpoint.host);
      this.sock.setNoDelay(true);
    }
    const p = new HTTPParser();
    p.initialize(HTTPParser.RESPONSE, {});
    p[HTTPParser.kOnHeaders] = (headers: string[]): void => { for (const h of headers) this.partialHeaders.push(h); };
    p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown,
      status: number, statusText: string, _upgrade: boolean, keepAlive: boolean): number => this.onHeadersComplete(headers, status, statusText, keepAlive);
    p[HTTPParser.kOnBody] = (b: Buffer): void => this.onBody(b);
    p[HTTPParser.kOnMessageComplete] = (): void => this.onMessageComplete();
    const onResult = (r: number | Error): void => {
      if (r instanceof Error) this.fail(withCode(`the app sent a malformed response: ${r.message}`, 'E_APP_BAD_RESPONSE'));
    };
    p[HTTPParser.kOnExecute] = onResult;
    this.parser = p;
    const h = (this.sock as { _handle?: StreamHandle | null })._handle;
    if (h?.isStreamBase === true && h._consumed !== true) {
      (p as unknown as { consume(h: StreamHandle): void }).consume(h);
      h._consumed = true;
      this.handle = h;
    }
    // Also when the parser reads the handle: the socket must flow to report its end.
    this.sock.on('data', (d: Buffer) => onResult(this.parser.execute(d)));
    // A response delimited by the end of the connection ends with it.
    this.sock.on('end', () => {
      const r = this.parser.finish();
      if (r instanceof Error) this.fail(withCode(`the app sent a malformed response: ${r.message}`, 'E_APP_BAD_RESPONSE'));
    });
    this.sock.on('error', (e) => this.fail(e));
    this.sock.on('close', () => {
      this.fail(withCode('the app closed the connection before its response was over', 'E_APP_CONNECTION_LOST'));
      this.client.forget(this);
      this.parser.close();
    });
  }

  start(req: AppRequest, handler: ResponseHandler): void {
    this.handler = handler;
    this.headOnly = req.method === 'HEAD';
    this.keepAlive = false;
    this.startReading();
    handler.onConnect(this.abort);
    if (this.handler !== handler) return; // aborted at once
    let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
    const h = req.headers;
    let length = false;
    let host = false;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      if (name.length === 14 && name.toLowerCase() === 'content-length') length = true;
      else if (name.length === 4 && name.toLowerCase() === 'host') host = true;
      head += `${name}: ${h[i + 1]}\r\n`;
    }
    // HTTP/1.1 requires a Host (an HTTP/1.0 client may have sent none).
    if (!host) head += 'host: localhost\r\n';
    const chunked = req.body !== null && !length;
    head = chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`;
    const sock = this.sock;
    // Straight to the handle once connected and nothing is queued before it.
    if (writeNow !== null && this.handle !== null && !sock.connecting && !sock.destroyed && sock.writableLength === 0) {
      const err = writeNow(this.handle, head);
      if (err < 0) {
        const code = getSystemErrorName(err);
        this.fail(Object.assign(new Error(`write ${code}`), { code, errno: err }));
        return;
      }
    } else {
      sock.write(head, 'latin1');
    }
    if (req.body !== null) this.sendBody(req.body, chunked);
  }

  /** Streams the client's body to the app, pausing it while the app's socket is full. */
  private sendBody(body: RequestBody, chunked: boolean): void {
    this.bodyDone = false;
    const sock = this.sock;
    let waiting = false;
    const drained = (): void => { waiting = false; body.resume(); };
    const onData = (chunk: Buffer): void => {
      if (sock.destroyed || chunk.length === 0) return;
      let ok: boolean;
      if (chunked) {
        sock.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        sock.write(chunk);
        ok = sock.write('\r\n', 'latin1');
      } else {
        ok = sock.write(chunk);
      }
      if (!ok && !waiting) {
        waiting = true;
        body.pause();
        sock.once('drain', drained);
      }
    };
    const onEnd = (): void => {
      this.detachBody();
      this.bodyDone = true;
      if (chunked && !sock.destroyed) sock.write('0\r\n\r\n', 'latin1');
    };
    this.detachBody = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      sock.off('drain', drained);
    };
    body.on('data', onData);
    body.on('end', onEnd);
  }

  private detachBody: () => void = () => undefined;

  private onHeadersComplete(headers: string[] | undefined, status: number, statusText: string, keepAlive: boolean): number {
    if (headers === undefined) {
      headers = this.partialHeaders;
      this.partialHeaders = [];
    }
    // 1xx: interim, not passed on; the real response follows on this connection.
    if (status < 200) {
      this.interim = true;
      return 1;
    }
    this.keepAlive = keepAlive;
    const h = this.handler;
    if (h !== null) {
      // A header the client side cannot take (writeHead throws) fails this request, not the agent.
      try {
        h.onHeaders(status, headers, this.resume, statusText);
      } catch (e) {
        this.fail(e as Error);
        return 1;
      }
    }
    return this.headOnly ? 1 : 0; // 1: no body follows (the answer to HEAD)
  }

  private onBody(b: Buffer): void {
    const h = this.handler;
    if (h !== null && !h.onData(b)) this.stopReading();
  }

  private stopReading(): void {
    const h = this.handle;
    if (h === null) {
      this.sock.pause();
    } else if (h.reading !== false) {
      h.reading = false;
      h.readStop();
    }
  }

  private startReading(): void {
    const h = this.handle;
    if (h === null) {
      this.sock.resume();
    } else if (h.reading === false && !this.sock.destroyed && !this.sock.connecting) {
      h.reading = true;
      h.readStart();
    }
  }

  private onMessageComplete(): void {
    if (this.interim) {
      this.interim = false;
      return;
    }
    const h = this.handler;
    if (h === null) return;
    this.handler = null;
    if (this.keepAlive && this.bodyDone) {
      this.client.release(this);
    } else {
      // The app answered before the request body was over, or will close: not reusable.
      this.detachBody();
      this.client.forget(this);
      this.sock.destroy();
      if (!this.bodyDone) h.onBodyLeft?.();
    }
    h.onComplete();
  }

  /** The request in flight (if any) fails with `err`; the connection goes. */
  fail(err: Error): void {
    const h = this.handler;
    this.handler = null;
    this.detachBody();
    this.client.forget(this);
    if (!this.sock.destroyed) this.sock.destroy();
    if (h !== null) h.onError(err);
  }
}

/** Every client with idle connections to sweep, and the one timer that does it. */
const clients = new Set<AppClient>();
let sweeper: NodeJS.Timeout | null = null;

function sweep(): void {
  const before = Date.now() - IDLE_MS;
  for (const c of clients) c.closeIdle(before);
  if (clients.size === 0 && sweeper !== null) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

/** Keep-alive connections to one app process, opened as requests need them. */
export class AppClient {
  /** Most recently used last: the oldest are at the front. */
  private readonly idle: AppConnection[] = [];
  private readonly all = new Set<AppConnection>();
  private destroyed = false;

  constructor(private readonly endpoint: Endpoint) {}

  dispatch(req: AppRequest, handler: ResponseHandler): void {
    if (this.destroyed) {
      handler.onError(withCode('the process has no connection pool', 'E_APP_CONNECTION_LOST'));
      return;
    }
    let c = this.idle.pop();
    while (c !== undefined && c.sock.destroyed) c = this.idle.pop();
    if (c === undefined) {
      c = new AppConnection(this, this.endpoint);
      this.all.add(c);
    }
    c.start(req, handler);
  }

  /** A connection whose response is over and may carry another request. */
  release(c: AppConnection): void {
    if (this.destroyed) {
      c.sock.destroy();
      return;
    }
    c.idleSince = Date.now();
    this.idle.push(c);
    if (!clients.has(this)) {
      clients.add(this);
      if (sweeper === null) {
        sweeper = setInterval(sweep, SWEEP_MS);
        sweeper.unref();
      }
    }
  }

  /** The sweep: connections idle since before `before` close (their 'close' forgets them). */
  closeIdle(before: number): void {
    const idle = this.idle;
    let n = 0;
    while (n < idle.length && idle[n].idleSince <= before) n++;
    for (const c of idle.splice(0, n)) c.sock.destroy();
    if (idle.length === 0) clients.delete(this);
  }

  forget(c: AppConnection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i !== -1) this.idle.splice(i, 1);
  }

  /** Closes every connection; requests in flight fail. */
  destroy(): void {
    this.destroyed = true;
    for (const c of [...this.all]) c.fail(withCode('the process left the pool', 'E_APP_CONNECTION_LOST'));
    this.idle.length = 0;
    clients.delete(this);
  }
}
