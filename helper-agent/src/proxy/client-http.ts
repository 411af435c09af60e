// The default request side: connections accepted as bare stream handles
// (client-stream.ts) and read with Node's own HTTP request parser
// (http-parser.ts), without net.Socket or node:http's request and response
// objects. A connection keeps its requests in order: the first writes
// straight to the client, the ones pipelined behind it hold
// their output until their turn (at most PIPELINE_DEPTH are served at once,
// later ones wait unrouted while the connection is not read). It answers
// what never reaches a forwarder itself: 400 for a malformed request, 431 for
// a head over the size limit, 408 for a head that does not arrive, 417 for an
// expectation it cannot meet; it sends 100 Continue when asked, closes idle
// keep-alive connections, and hands a connection on when a request needs
// more: an upgrade (WebSockets) to the upgrade forwarder with its socket and
// first bytes, a static file to node:http (the fallback request side), which
// then serves that connection to its end.
import { PIPELINE_DEPTH, PIPELINE_TAKEN } from './client-connection';
import { ClientRequest, RequestBody, type BodySource } from './client-request';
import { ClientStream, type StreamHandle, type StreamOwner } from './client-stream';
import { HTTPParser, METHODS, type ParseError, type Parser } from './http-parser';
import type { ClientHttpServer } from './client-http-server';
import { BODY, CONTINUE, EXPECT_OTHER, HOST, Slot, plainResponse, scanHead } from './client-slot';

/** Output a request behind the one being answered holds before it tells its app to wait. */
const OUT_LIMIT = 64 * 1024;
const CONTINUE_LINE = 'HTTP/1.1 100 Continue\r\n\r\n';

// Reasons the client is not read.
const HELD = 1;
const BODY_FULL = 2;
const SWITCHING = 4;

const kConn = Symbol('passenger.clientHttp');
type TrackedParser = Parser & { [kConn]?: ClientHttpConnection };

// Parser callbacks shared by every connection (no closures per connection):
// `this` is the parser, which names its connection.
function onMessageBegin(this: TrackedParser): void {
  const c = this[kConn];
  if (c !== undefined) c.inHead = true;
}
function onHeaders(this: TrackedParser, headers: string[], url: string): void {
  this[kConn]?.partial(headers, url);
}
function onHeadersComplete(this: TrackedParser, major: number, minor: number, headers: string[] | undefined, method: number,
  url: string | undefined, _status: unknown, _text: unknown, upgrade: boolean, keepAlive: boolean): number {
  const c = this[kConn];
  return c === undefined ? 0 : c.headersComplete(major, minor, headers, method, url, upgrade, keepAlive);
}
function onBody(this: TrackedParser, b: Buffer): void {
  this[kConn]?.body(b);
}
function onMessageComplete(this: TrackedParser): void {
  this[kConn]?.messageComplete();
}
function onExecute(this: TrackedParser, ret: number | Error): void {
  this[kConn]?.executed(ret, null);
}
// Parsers of closed connections, reused as node:http reuses its own.
const PARSER_POOL_MAX = 256;
const parserPool: TrackedParser[] = [];
/** The async resource every pooled parser reports (nothing here uses async hooks). */
const RESOURCE = {};

function newParser(): TrackedParser {
  const p: TrackedParser = new HTTPParser();
  p[HTTPParser.kOnMessageBegin] = onMessageBegin;
  p[HTTPParser.kOnHeaders] = onHeaders;
  p[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
  p[HTTPParser.kOnBody] = onBody;
  p[HTTPParser.kOnMessageComplete] = onMessageComplete;
  p[HTTPParser.kOnExecute] = onExecute;
  return p;
}

type PooledParser = TrackedParser & { consume(h: StreamHandle): void; unconsume(): void; free(): void; getCurrentBuffer(): Buffer };

/** Parsers taken and not yet given back: a parser is never dropped, since only close() frees its C++ side. */
let parsersOut = 0;

/** How many parsers connections hold (or are about to give back): 0 once every connection closed, parked or was handed on. */
export function parsersInUse(): number {
  return parsersOut;
}

function takeParser(c: ClientHttpConnection): PooledParser {
  const p = (parserPool.pop() ?? newParser()) as PooledParser;
  p.initialize(HTTPParser.REQUEST, RESOURCE);
  p[kConn] = c;
  parsersOut++;
  return p;
}

/** Lets go of a parser that reads a handle: back to the pool, or closed (true) when the pool is full. */
function giveBack(p: PooledParser): boolean {
  parsersOut--;
  p[kConn] = undefined;
  p.unconsume();
  if (parserPool.length < PARSER_POOL_MAX) {
    p.free();
    parserPool.push(p);
    return false;
  }
  p.close();
  return true;
}

export class ClientHttpConnection implements BodySource, StreamOwner {
  /** Reads the handle while the connection is in use; an idle one gives it back (park()) and takes one with its next bytes. */
  private parser: PooledParser | null;
  /** Requests in order; the first is the one being answered. */
  private readonly queue: Slot[] = [];
  /** The request whose body is being read. */
  private current: Slot | null = null;
  private currentBody: RequestBody | null = null;
  private partialHeaders: string[] = [];
  private partialUrl = '';
  private stops = 0;
  /** Nothing more is read: the last request asked to close, the client ended, the server closes, or the input broke. */
  private ended = false;
  /** A head has begun and is not complete. */
  inHead = false;
  /** Answered once the requests before it are: a malformed request (400, 431), a head that did not come (408). */
  private refusal: number | null = null;
  /** A request that takes the connection elsewhere, once the requests before it are answered. */
  private switchTo: { upgrade: boolean; req: ClientRequest; rest: Buffer } | null = null;
  /** When it last went idle (waiting for a request), for the keep-alive sweep. */
  idleSince = Date.now();
  private gone = false;
  /** The accepted handle; the parser reads it itself: no Buffer, stream or event per read. */
  readonly stream: ClientStream;

  constructor(private readonly server: ClientHttpServer, handle: StreamHandle) {
    const p = takeParser(this);
    this.parser = p;
    this.stream = new ClientStream(handle, this);
    p.consume(handle);
    this.stream.readStart();
  }

  // From the stream.

  /** Bytes that came while no parser read the handle (the connection was parked): a parser takes them, then the handle. */
  data(d: Buffer): void {
    if (this.ended || this.parser !== null) return;
    const p = takeParser(this);
    this.parser = p;
    this.executed(p.execute(d), d);
    if (this.parser === p && !this.gone) p.consume(this.stream.handle);
  }

  /** After the parser went through `d` (null: what it read from the handle itself). */
  executed(r: number | Error, d: Buffer | null): void {
    if (this.switchTo !== null) {
      this.switchTo.rest = (d ?? (this.parser as PooledParser).getCurrentBuffer()).subarray(r as number);
      this.endInput(SWITCHING);
      this.maybeSwitch();
    } else if (r instanceof Error) {
      this.parseError(r as ParseError);
    }
  }

  /**
   * The client ended its side. As with node:http, that is the client
   * leaving: whatever its requests hold is given back now (an app answer
   * could only be written to a client that may be gone).
   */
  clientEnded(): void {
    if (this.queue.length > 0 || this.current !== null || this.inHead) {
      this.stream.destroy();
      return;
    }
    this.endInput(0);
    this.finish();
  }

  closed(): void {
    this.gone = true;
    this.ended = true;
    const q = this.queue.splice(0);
    for (const s of q) s.responder.close();
    this.current = null;
    this.currentBody = null;
    this.server.forget(this);
    if (this.parser !== null) giveBack(this.parser);
    this.parser = null;
  }

  /**
   * Idle since the last sweep, between requests: the parser goes back to
   * the pool, and the handle's next bytes come to data(). A connection that
   * only waits keeps its handle and two small objects. True: a parser was
   * freed (the pool was full), ~2 KB of C heap.
   */
  park(): boolean {
    if (this.parser === null || this.queue.length > 0 || this.inHead || this.ended || this.stops !== 0) return false;
    const freed = giveBack(this.parser);
    this.parser = null;
    return freed;
  }

  drain(): void {
    this.queue[0]?.responder.drained();
  }

  /** Idle for the keep-alive time (the server's sweep, client-timeouts.ts), counted from when it last went idle: an idle connection closes, a head that has not arrived gets 408. */
  timedOut(): void {
    if (this.queue.length > 0 || this.gone) return;
    if (this.inHead && !this.ended) {
      this.endInput(0);
      this.refusal = 408;
      this.finish();
      return;
    }
    this.stream.destroy();
  }

  // From the parser.

  partial(headers: string[], url: string): void {
    for (const h of headers) this.partialHeaders.push(h);
    if (url) this.partialUrl += url;
  }

  headersComplete(major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
    upgrade: boolean, keepAlive: boolean): number {
    if (headers === undefined) {
      headers = this.partialHeaders;
      this.partialHeaders = [];
    }
    if (!url) {
      url = this.partialUrl;
      this.partialUrl = '';
    }
    this.inHead = false;
    // Read from the handle after the input ended (the client is still read,
    // to notice it leaving): nothing more is taken, and nothing of it is kept.
    if (this.ended) return 2;
    const req = new ClientRequest(METHODS[method], url, headers, major === 1 ? minor : 0, this.stream);
    const flags = scanHead(headers);
    if (major !== 1 || (minor === 1 && (flags & HOST) === 0) || METHODS[method] === 'CONNECT') {
      // HTTP/1.1 requires Host (as node:http); CONNECT is no request for an app.
      this.refuse(400);
      return 2;
    }
    if (upgrade || this.server.handler.handsOver(req)) {
      this.switchTo = { upgrade, req, rest: EMPTY };
      return 2; // the parser stops after this head
    }
    const slot = new Slot(req, keepAlive && !this.server.closing && this.queue.length < PIPELINE_TAKEN - 1, (flags & BODY) !== 0);
    const body = (flags & BODY) !== 0 ? new RequestBody(this) : null;
    this.current = slot;
    this.currentBody = body;
    this.queue.push(slot);
    const admitted = this.queue.length <= PIPELINE_DEPTH;
    if (!admitted) this.stopReading(HELD);
    if ((flags & EXPECT_OTHER) !== 0) {
      // Refused before its body: the rest of it is read and dropped, then the connection closes (finish()).
      body?.drop();
      slot.keepAlive = false;
      this.end(slot, plainResponse(417, false, '', '', false));
      return 0;
    }
    if ((flags & CONTINUE) !== 0 && minor === 1 && body !== null) this.write(slot, CONTINUE_LINE);
    this.server.handler.request(this, slot, body, admitted);
    return 0;
  }

  body(b: Buffer): void {
    this.currentBody?.push(b);
  }

  messageComplete(): void {
    const s = this.current;
    if (s === null) return;
    s.bodyDone = true;
    this.current = null;
    const body = this.currentBody;
    this.currentBody = null;
    body?.end();
    if (!s.keepAlive) this.ended = true; // the client said it sends no more
    // A dropped body is over: its request was answered, the connection goes.
    if (body !== null && body.dropping) this.finish();
  }

  // BodySource.

  bodyFull(): void {
    this.stopReading(BODY_FULL);
  }

  bodyFree(): void {
    this.startReading(BODY_FULL);
  }

  // For the forwarder: output in request order.

  /** Output for the client; false: wait for drained() before writing more. */
  write(slot: Slot, data: string | Buffer): boolean {
    if (this.queue[0] === slot) return this.stream.write(data);
    (slot.out ??= []).push(data);
    slot.outBytes += data.length;
    return slot.outBytes < OUT_LIMIT;
  }

  /** The response is complete, `data` being its last bytes. */
  end(slot: Slot, data?: string | Buffer): void {
    if (slot.done) return;
    if (data !== undefined && data.length > 0) this.write(slot, data);
    slot.done = true;
    if (this.queue[0] === slot) this.advance();
  }

  /**
   * The agent answers `slot` before its body is over: the rest of the body is
   * read and dropped, and the connection closes at its end (finish()).
   */
  dropBody(slot: Slot): void {
    if (this.current === slot) this.currentBody?.drop();
  }

  /** The response broke off: the client must see it cut short. */
  cut(): void {
    this.stream.destroy();
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /** No request is being answered (it waits for one, or for the rest of a head). */
  get idle(): boolean {
    return this.queue.length === 0;
  }

  /**
   * The server closes: an idle connection closes now; one answering closes
   * after its answers, reading no more; one whose head is under way reads
   * that request and answers it with Connection: close (as node:http does).
   */
  close(): void {
    for (const s of this.queue) s.keepAlive = false;
    if (this.queue.length > 0) this.endInput(0);
    else if (!this.inHead) this.stream.destroy();
  }

  // Inside.

  private advance(): void {
    const q = this.queue;
    while (q.length > 0 && q[0].done) {
      const s = q.shift() as Slot;
      if (!s.keepAlive || !s.bodyDone) {
        // No further request is read on this connection; the ones pipelined behind it are dropped with it.
        this.endInput(0);
        for (const r of q.splice(0)) r.responder.close();
        this.finish();
        return;
      }
      if (q.length >= PIPELINE_DEPTH) q[PIPELINE_DEPTH - 1].responder.admit();
      const next = q[0];
      if (next !== undefined && next.out !== null) {
        const out = next.out;
        next.out = null;
        next.outBytes = 0;
        for (const d of out) this.stream.write(d);
        if (!this.stream.needDrain) next.responder.drained();
      }
    }
    if (q.length <= PIPELINE_DEPTH) this.startReading(HELD);
    if (q.length === 0) {
      if (this.switchTo !== null) this.maybeSwitch();
      else if (this.ended) this.finish();
      else this.idleSince = Date.now();
    }
  }

  private refuse(status: number): void {
    if (this.refusal === null) this.refusal = status;
    this.endInput(0);
    if (this.queue.length === 0) this.finish();
  }

  private parseError(err: ParseError): void {
    if (this.ended) return;
    if (this.current !== null) {
      // A body that breaks off midway: its request cannot be completed.
      this.stream.destroy();
      return;
    }
    this.refuse(err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400);
  }

  /** The last response is out (or none is owed): a refusal goes, then the connection ends. */
  private finish(): void {
    if (this.gone || this.queue.length > 0) return;
    const s = this.stream;
    if (s.destroyed) return;
    // A body whose request was answered before it was over (the agent's own
    // answer: 413 past its limit, 503, 502, 403, 417...; or the app's, given
    // without reading it) is read to its end and dropped before the
    // connection closes: a web server that sends all of it before it reads
    // the answer would otherwise find the connection reset under its writes
    // and answer 502. Its end calls here again; the
    // idle sweep closes a connection whose body has not ended within the
    // keep-alive time, and a client that leaves meanwhile is closed at once.
    if (this.currentBody !== null && this.currentBody.dropping) {
      this.idleSince = Date.now();
      return;
    }
    if (this.refusal !== null) {
      s.write(plainResponse(this.refusal, false, '', '', true));
    } else if (s.writableLength === 0 && this.stops === 0) {
      // All of it is with the kernel, and every byte the client sent was
      // read: closing sends what is left, then the FIN (no shutdown first).
      s.destroy();
      return;
    }
    s.end();
  }

  private endInput(reason: number): void {
    this.ended = true;
    if (reason !== 0) this.stopReading(reason);
  }

  private stopReading(reason: number): void {
    if (this.stops === 0) this.stream.readStop();
    this.stops |= reason;
  }

  private startReading(reason: number): void {
    if ((this.stops & reason) === 0) return;
    this.stops &= ~reason;
    if (this.stops === 0 && !this.gone) this.stream.readStart();
  }

  /** Once every earlier request is answered, the connection goes to the upgrade forwarder or to node:http. */
  private maybeSwitch(): void {
    const sw = this.switchTo;
    if (sw === null || this.queue.length > 0 || this.gone) return;
    this.switchTo = null;
    // A client that left while the requests before it were answered (a write
    // to it failed) is not handed on: its handle is closing, and a Socket made
    // from it would never close, holding an upgrade's session for good.
    // closed() follows.
    if (this.stream.destroyed) return;
    this.gone = true;
    // The parser may be in the middle of a callback (its own code still runs
    // after it): it stops reading now and goes back once the stack unwound.
    const p = this.parser as PooledParser;
    this.parser = null;
    p[kConn] = undefined;
    p.unconsume();
    setImmediate(giveBack, p);
    this.server.forget(this);
    const s = this.stream.handOver();
    if (sw.upgrade) this.server.handler.upgrade(sw.req, s, sw.rest);
    else this.server.handler.toNodeHttp(s, Buffer.concat([Buffer.from(sw.req.wireHead(), 'latin1'), sw.rest]));
  }
}

const EMPTY = Buffer.alloc(0);
