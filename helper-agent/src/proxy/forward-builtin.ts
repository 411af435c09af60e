// The default request path: requests read by client-http.ts go through the
// request core (exchange.ts) to the process's keep-alive client
// (app-client.ts), and the app's answer is written back as it arrives: the
// head as one string, the body slices straight to the client's socket (in
// one write with the head when the first slice comes with it). Per request
// it allocates the exchange, its session, the head strings and the header
// list; no stream, promise or closure.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { RequestSnapshot } from '../admin/protocol';
import type { AppRequest } from './app-client';
import type { ClientHttpConnection } from './client-http';
import { KEEP_ALIVE_FIELDS, httpDate, plainResponse, type ClientHttpHandler, type Responder, type Slot } from './client-slot';
import type { ClientRequest, RequestBody } from './client-request';
import { agentErrorResponse } from './error-pages';
import { AppClientExchange } from './app-client-exchange';
import type { ForwardingContext } from './exchange';
import { appHeaders, isResponseHopByHop } from './headers';

/** The end of a response head, by whether the connection stays open (made once, not per response). */
const HEAD_END_KEEP = `${KEEP_ALIVE_FIELDS}\r\n\r\n`;
const HEAD_END_CLOSE = 'connection: close\r\n\r\n';

/** Body slices up to this size go out in one string with the head (one write); larger ones in writes of their own. */
const JOIN_LIMIT = 8192;

/** The agent's own answer to a request (error pages). */
function agentAnswer(conn: ClientHttpConnection, slot: Slot, err: Error, group: Group | null): void {
  if (conn.destroyed) return;
  const r = agentErrorResponse(err, group);
  // A body not read to its end leaves nothing to read the next request
  // from: the rest of it is dropped, and the connection closes after it.
  if (!slot.bodyDone) conn.dropBody(slot);
  slot.keepAlive &&= slot.bodyDone && !r.close;
  conn.end(slot, plainResponse(r.status, slot.keepAlive, `content-type: ${r.type}\r\n`, r.body, slot.req.method === 'HEAD'));
}

class BuiltinExchange extends AppClientExchange implements Responder {
  readonly withBody: boolean;
  private resume: (() => void) | null = null;
  protected readonly opts: AppRequest;
  private readonly body: RequestBody | null;
  /** The response head, written with the first body bytes (or at the end). */
  private head: string | null = null;
  private chunked = false;
  /** The app was told to wait until the client takes what was written. */
  private waiting = false;

  constructor(
    readonly forwarder: BuiltinForwarder,
    req: ClientRequest,
    readonly conn: ClientHttpConnection,
    readonly slot: Slot,
    group: Group,
    body: RequestBody | null,
  ) {
    super(req, group, forwarder.log);
    this.withBody = body !== null;
    this.body = body;
    this.opts = { path: req.url, method: req.method, headers: appHeaders(req), body };
  }

  // Responder: the client connection reports here.

  drained(): void {
    if (!this.waiting) return;
    this.waiting = false;
    this.resume?.();
  }

  // ResponseHandler: the app client reports here.

  onHeaders(status: number, headers: string[], resume: () => void, statusText: string): boolean {
    if (this.state !== 'forwarded') return false;
    const slot = this.slot;
    let head = `HTTP/1.1 ${status} ${statusText || STATUS_CODES[status] || ''}\r\n`;
    let length = false;
    let date = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name.length === 14) {
        if (name.toLowerCase() === 'content-length') length = true;
      } else if (name.length === 4) {
        if (name.toLowerCase() === 'date') date = true;
      } else if (isResponseHopByHop(name)) {
        continue;
      }
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    const cookie = this.stickyCookie();
    if (cookie !== null) head += `set-cookie: ${cookie}\r\n`;
    if (!date) head += `date: ${httpDate()}\r\n`;
    // Framing for the client: the app's length if it gave one; else chunks
    // for HTTP/1.1, the end of the connection for HTTP/1.0.
    const bodiless = this.req.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (!bodiless && !length) {
      if ((this.req as ClientRequest).httpVersionMinor === 1) {
        this.chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else {
        slot.keepAlive = false;
      }
    }
    // An answer before the body is over ends the connection (onBodyLeft()).
    if (!slot.bodyDone) slot.keepAlive = false;
    head += slot.keepAlive ? HEAD_END_KEEP : HEAD_END_CLOSE;
    this.responding();
    this.resume = resume;
    this.head = head;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    const head = this.head;
    let ok: boolean;
    if (this.chunked) {
      const size = `${head ?? ''}${chunk.length.toString(16)}\r\n`;
      this.head = null;
      if (chunk.length <= JOIN_LIMIT) {
        ok = this.conn.write(this.slot, `${size}${chunk.toString('latin1')}\r\n`);
      } else {
        this.conn.write(this.slot, size);
        this.conn.write(this.slot, chunk);
        ok = this.conn.write(this.slot, '\r\n');
      }
    } else if (head !== null) {
      this.head = null;
      if (chunk.length <= JOIN_LIMIT) {
        ok = this.conn.write(this.slot, head + chunk.toString('latin1'));
      } else {
        this.conn.write(this.slot, head);
        ok = this.conn.write(this.slot, chunk);
      }
    } else {
      ok = this.conn.write(this.slot, chunk);
    }
    if (!ok) this.waiting = true;
    return ok;
  }

  /**
   * The app answered without taking all of the body: the rest is read and
   * dropped, and a body still arriving ends the connection at its end, as
   * after the agent's own early answers (client-http.ts).
   */
  onBodyLeft(): void {
    this.body?.drop();
  }

  onComplete(): void {
    const head = this.head;
    this.head = null;
    this.conn.end(this.slot, this.chunked ? `${head ?? ''}0\r\n\r\n` : head ?? undefined);
    // The app's part is over: its process is free even while the response
    // still waits, pipelined, behind an earlier one to the client.
    this.complete();
  }

  onError(err: Error): void {
    this.upstreamFailed(err);
  }

  // The request core's hooks.

  protected answer(err: Error): void {
    agentAnswer(this.conn, this.slot, err, this.group);
  }

  protected clientGone(): boolean {
    return this.conn.destroyed;
  }

  protected cutClient(): void {
    this.conn.cut();
  }

  protected ended(): void {
    this.forwarder.inFlight.delete(this);
  }
}


/** What the connections of the parser-based request side hand their requests to. */
export interface Handover {
  /** node:http's side (the fallback), for a connection that needs it from a request on. */
  toNodeHttp(socket: Socket, head: Buffer): void;
  /** The upgrade forwarder's listener. */
  upgrade(req: ClientRequest, socket: Socket, head: Buffer): void;
}

export class BuiltinForwarder implements ClientHttpHandler {
  readonly log: ForwardingContext['log'];
  /** Requests in flight (held, queued or forwarded). */
  readonly inFlight = new Set<BuiltinExchange>();

  constructor(private readonly ctx: ForwardingContext, private readonly handover: Handover) {
    this.log = ctx.log;
  }

  request(conn: ClientHttpConnection, slot: Slot, body: RequestBody | null, admitted: boolean): void {
    const g = this.ctx.groupFor(slot.req);
    if (g instanceof PassengerError) {
      agentAnswer(conn, slot, g, null);
      return;
    }
    const ex = new BuiltinExchange(this, slot.req, conn, slot, g, body);
    if (body !== null && this.ctx.bodyLimitOf !== undefined) {
      const limit = this.ctx.bodyLimitOf(slot.req);
      if (limit !== null) body.limit(limit, ex);
    }
    slot.responder = ex;
    this.inFlight.add(ex);
    if (admitted) ex.start();
  }

  handsOver(req: ClientRequest): boolean {
    const sf = this.ctx.staticFiles;
    return sf !== undefined && sf.fileFor(req.method, req.url) !== null;
  }

  toNodeHttp(socket: Socket, head: Buffer): void {
    this.handover.toNodeHttp(socket, head);
  }

  upgrade(req: ClientRequest, socket: Socket, head: Buffer): void {
    this.handover.upgrade(req, socket, head);
  }

  requests(): RequestSnapshot[] {
    const now = Date.now();
    return [...this.inFlight].map((ex) => ex.snapshot(now));
  }
}
