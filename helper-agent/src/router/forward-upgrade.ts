// WebSockets (and any other HTTP/1.1 protocol upgrade) through the agent:
// the request server's 'upgrade' event, on both request paths. An upgrade
// request takes a session as any request does (same group, sticky cookie,
// queue, and the same error answers); it goes to its process over a
// connection of its own, because after a 101 that connection becomes the
// client's tunnel and never returns to a keep-alive pool. A 101 turns the
// session into a WebSocket on the process (Group.upgraded) and bytes flow
// both ways, with backpressure, until either side closes; then both go. Any
// other answer is relayed as a response that ends the client's connection.
// When a process leaves, its WebSockets are closed with a close frame
// (1001, going away) put between two of the app's frames, unless
// abort_websockets_on_process_shutdown is off.
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { PassengerError } from '../errors';
import type { Group, QueueTicket } from '../pool/group';
import type { AppProcess } from '../pool/process';
import { agentErrorResponse } from './error-pages';
import { appHeaders, cookieValue, stickyCookie, type ForwardingContext, type RequestSnapshot } from './forward-direct';
import { isConnectFailure, mayRetry, rootCode } from './retry';

/** Stands for the handshake's request once a WebSocket is open, so the request itself can go. */
const HANDSHAKE_DONE = { method: '?', url: '?', headers: {}, socket: {} } as unknown as http.IncomingMessage;

/** A server's close frame: status 1001, "going away" (RFC 6455 7.4.1). */
const GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9]);
/** How long a client that was sent a close frame has to close its side, and an app to finish the frame it is in the middle of. */
const CLOSING_MS = 5000;

/**
 * Follows the frame boundaries of one direction of a WebSocket (RFC 6455
 * 5.2), so that a close frame can be put between two frames. It reads only
 * headers (2 to 14 bytes a frame) and skips payloads by their length.
 */
export class FrameBoundaries {
  /** Payload (and mask) bytes of the current frame still to come. */
  private need = 0;
  /** Header bytes read so far of a header split across chunks. */
  private head: number[] = [];

  atBoundary(): boolean {
    return this.need === 0 && this.head.length === 0;
  }

  /** Reads `buf` to its end or, when `stopAtBoundary`, up to the first frame boundary; returns the bytes read. */
  feed(buf: Buffer, stopAtBoundary = false): number {
    let i = 0;
    while (i < buf.length) {
      if (this.need > 0) {
        const n = Math.min(this.need, buf.length - i);
        this.need -= n;
        i += n;
        continue;
      }
      if (stopAtBoundary && this.head.length === 0) return i;
      const h = this.head;
      h.push(buf[i++]);
      if (h.length < 2) continue;
      const len7 = h[1] & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      if (h.length < 2 + ext) continue;
      let len = len7;
      if (ext > 0) {
        len = 0;
        for (let k = 2; k < 2 + ext; k++) len = len * 256 + h[k];
      }
      this.need = len + ((h[1] & 0x80) !== 0 ? 4 : 0);
      this.head = [];
    }
    return i;
  }
}

const kUpgrade = Symbol('passenger.upgrade');
type Side = Socket & { [kUpgrade]?: Upgrade };

function fromApp(this: Side, chunk: Buffer): void {
  this[kUpgrade]?.relayFromApp(chunk);
}

function fromClient(this: Side, chunk: Buffer): void {
  this[kUpgrade]?.relayFromClient(chunk);
}

/** The app's side took what was written: the client may send more. */
function appDrained(this: Side): void {
  this[kUpgrade]?.client.resume();
}

/** The client's side took what was written: the app may send more. */
function clientDrained(this: Side): void {
  this[kUpgrade]?.appSock?.resume();
}

function sideClosed(this: Side): void {
  const up = this[kUpgrade];
  if (up !== undefined) up.forwarder.closed(up);
}

function destroyOnError(this: Socket): void {
  this.destroy();
}

/** Response headers that describe the app's connection, not the client's. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

function headLines(status: number, message: string | undefined, raw: string[], extra: string[]): string {
  let head = `HTTP/1.1 ${status} ${message || http.STATUS_CODES[status] || ''}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** Who the client is: its address, or behind a web server (a Unix socket) the last X-Forwarded-For entry. */
function clientOf(req: http.IncomingMessage): string | null {
  const addr = req.socket.remoteAddress;
  if (addr !== undefined) return addr;
  const xff = req.headers['x-forwarded-for'];
  if (typeof xff !== 'string' || xff === '') return null;
  return xff.slice(xff.lastIndexOf(',') + 1).trim();
}

/** One upgrade request, from the client's handshake to the end of its tunnel. */
class Upgrade {
  proc: AppProcess | null = null;
  queued: QueueTicket | null = null;
  state: 'queued' | 'forwarded' | 'websocket' = 'queued';
  attempts = 0;
  /** Over: answered, or the tunnel closed. */
  done = false;
  stickyId: string | null = null;
  readonly startedAt = Date.now();
  private appReq: http.ClientRequest | null = null;
  /** The app's answer when it was not a 101, while it is relayed. */
  private appRes: http.IncomingMessage | null = null;
  appSock: Socket | null = null;
  /** Frames from the app to the client (WebSockets only): where a close frame may go. */
  private frames: FrameBoundaries | null = null;
  /** The process is leaving: the close frame goes at the next boundary. */
  private closing = false;
  /** Once upgraded: what the list of requests shows of it. */
  private shown: { method: string; path: string; client: string | null } | null = null;

  constructor(
    readonly forwarder: UpgradeForwarder,
    public req: http.IncomingMessage,
    readonly client: Socket,
    readonly group: Group,
  ) {}

  route(avoid: AppProcess | null = null): void {
    const g = this.group;
    if (avoid === null && g.options.stickySessions) {
      const id = cookieValue(this.req.headers.cookie, g.options.stickySessionsCookieName);
      this.stickyId = id;
      const p = id === null ? undefined : g.processes.find((x) => String(x.id) === id);
      if (p !== undefined && g.checkoutOn(p)) {
        this.dispatch(p);
        return;
      }
    }
    const p = g.checkout(avoid);
    if (p !== null) {
      this.dispatch(p);
      return;
    }
    this.queued = g.wait((err, proc) => {
      this.queued = null;
      if (proc === null) {
        this.answer(err ?? new Error('no process'));
      } else if (this.done) {
        proc.group.release(proc);
      } else {
        this.dispatch(proc);
      }
    });
  }

  private dispatch(p: AppProcess): void {
    this.proc = p;
    this.state = 'forwarded';
    this.attempts++;
    const headers = appHeaders(this.req);
    headers.push('connection', 'upgrade', 'upgrade', this.req.headers.upgrade as string);
    const ep = p.handle.endpoint;
    const r = http.request({
      ...('socketPath' in ep ? { socketPath: ep.socketPath } : { host: ep.host, port: ep.port }),
      method: this.req.method,
      path: this.req.url,
      headers: headers as unknown as http.OutgoingHttpHeaders,
      agent: false,
      setHost: false,
    });
    this.appReq = r;
    r.on('upgrade', (res: http.IncomingMessage, sock: Socket, head: Buffer) => this.onUpgrade(res, sock, head));
    r.on('response', (res: http.IncomingMessage) => this.onResponse(res));
    r.on('error', (e: Error) => this.onAppError(e));
    r.end();
  }

  /** The app switched protocols: relay its 101, then join the two connections. */
  private onUpgrade(res: http.IncomingMessage, sock: Socket, head: Buffer): void {
    const p = this.proc as AppProcess;
    this.appReq = null;
    if (this.done) {
      sock.destroy();
      return;
    }
    this.appSock = sock;
    this.state = 'websocket';
    p.group.upgraded(p);
    const o = this.group.options;
    const extra = o.stickySessions && this.stickyId !== String(p.id)
      ? ['set-cookie', stickyCookie(o.stickySessionsCookieName, p.id, o.stickySessionsCookieAttributes, this.req)] : [];
    const client = this.client;
    client.write(headLines(101, res.statusMessage, res.rawHeaders, extra), 'latin1');
    if (head.length > 0) client.write(head);
    sock.setNoDelay(true);
    sock.setTimeout(0);
    // An open WebSocket keeps only what its listing shows, not the handshake's request.
    this.shown = { method: this.req.method ?? '?', path: this.req.url ?? '?', client: clientOf(this.req) };
    const websocket = String(this.req.headers.upgrade).toLowerCase() === 'websocket';
    this.req = HANDSHAKE_DONE;
    if (websocket) this.frames = new FrameBoundaries();
    // Listeners shared by every tunnel (no closures): an idle WebSocket
    // should cost the agent as little memory as can be.
    (sock as Side)[kUpgrade] = this;
    sock.on('error', destroyOnError);
    sock.on('close', sideClosed);
    // WebSockets make no use of half-closed connections, and an app or
    // client that half-closes would otherwise hold the tunnel open for ever:
    // an end on either side ends the exchange (what was written still goes out).
    sock.on('end', sideClosed);
    client.on('end', sideClosed);
    // Each side pauses while the other cannot take more. The app's side of
    // a WebSocket is read frame by frame, so that it can be closed cleanly.
    sock.on('data', fromApp);
    client.on('data', fromClient);
    sock.on('drain', appDrained);
    client.on('drain', clientDrained);
    // Its process began to leave while the handshake was under way.
    if (p.life !== 'alive' && o.abortWebsocketsOnProcessShutdown) this.abort();
  }

  /** Bytes from the app, for the client. */
  relayFromApp(chunk: Buffer): void {
    const frames = this.frames;
    if (this.closing) {
      if (frames === null) return; // not a WebSocket, or its close frame has gone
      chunk = chunk.subarray(0, frames.feed(chunk, true));
      if (chunk.length > 0) this.client.write(chunk);
      if (frames.atBoundary()) this.sendGoingAway();
      return;
    }
    frames?.feed(chunk);
    if (!this.client.write(chunk)) this.appSock?.pause();
  }

  /** Bytes from the client, for the app. */
  relayFromClient(chunk: Buffer): void {
    if (this.closing || this.done) return;
    if (this.appSock !== null && !this.appSock.write(chunk)) this.client.pause();
  }

  /**
   * The process leaves (abort_websockets_on_process_shutdown): the WebSocket
   * is freed on it at once and closed cleanly: a close frame (1001) goes to
   * the client between two of the app's frames, the client's answer is read
   * and dropped, and the app's side is ended. Other upgraded protocols are
   * ended both ways.
   */
  abort(): void {
    const p = this.proc;
    const sock = this.appSock;
    if (this.done || this.state !== 'websocket' || p === null || sock === null) return;
    this.forwarder.forget(this);
    this.done = true;
    this.proc = null;
    p.group.websocketClosed(p);
    const client = this.client;
    // What the client sends from now on (its answer to the close frame) is read and dropped.
    this.closing = true;
    client.resume();
    const cut = setTimeout(() => { client.destroy(); sock.destroy(); }, CLOSING_MS);
    cut.unref();
    client.once('close', () => clearTimeout(cut));
    if (this.frames === null) {
      endThenDestroy(sock);
      endThenDestroy(client);
      return;
    }
    // Until the app's current frame is through: read on, whatever the client's pace.
    sock.resume();
    // An app that goes in the middle of a frame leaves nothing clean to do.
    sock.once('close', () => { if (this.frames !== null) endThenDestroy(client); });
    if (this.frames.atBoundary()) this.sendGoingAway();
  }

  /** The close frame, then the end of our side; the client closes its own when it has answered. */
  private sendGoingAway(): void {
    if (this.frames === null) return;
    this.frames = null;
    const sock = this.appSock;
    if (sock !== null) {
      sock.removeAllListeners('data');
      sock.destroy();
    }
    if (!this.client.destroyed) this.client.end(GOING_AWAY);
  }

  /** Not upgraded: the app's answer goes to the client as a response, and the connection ends with it. */
  private onResponse(res: http.IncomingMessage): void {
    this.appReq = null;
    if (this.done) {
      res.destroy();
      return;
    }
    const raw = res.rawHeaders;
    const kept: string[] = [];
    for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i].toLowerCase())) kept.push(raw[i], raw[i + 1]);
    // The body goes out as the app's parser delivers it: delimited by its
    // content-length if it had one, else by the end of the connection.
    this.appRes = res;
    this.client.write(headLines(res.statusCode ?? 502, res.statusMessage, kept, ['connection', 'close']), 'latin1');
    res.on('end', () => this.finish());
    res.on('error', () => this.client.destroy());
    this.client.once('finish', () => this.client.destroy());
    res.pipe(this.client);
  }

  /** The exchange is over as a plain request: release the session once. */
  private finish(): void {
    const p = this.proc;
    this.proc = null;
    if (p !== null) p.group.release(p);
  }

  private onAppError(err: Error): void {
    this.appReq = null;
    const p = this.proc;
    const code = rootCode(err);
    if (this.done || p === null) return;
    this.proc = null;
    if (isConnectFailure(code)) {
      this.forwarder.log.warn(`process ${p.pid} of ${p.group.name} refused a connection (${code}); taking it out of rotation`);
      p.group.detach(p);
    }
    p.group.release(p);
    if (mayRetry(code, this.req.method as string, false, this.attempts)) {
      this.route(p);
      return;
    }
    this.forwarder.log.warn(`upgrade ${this.req.method} ${this.req.url} on process ${p.pid} failed: ${err.message}${code ? ` (${code})` : ''}`);
    this.answer(new PassengerError('E_BAD_GATEWAY', `the app process failed to answer: ${err.message}`));
  }

  /** Answers the client as the plain request path would (no process, queue full, refused root, ...). */
  answer(err: Error): void {
    if (this.done) return;
    sendAgentResponse(this.client, err, this.group);
  }

  /** The client's connection closed (or the tunnel did): everything of this exchange goes. */
  teardown(): void {
    if (this.done) return;
    this.done = true;
    if (this.queued !== null) {
      this.queued.cancel();
      this.queued = null;
    }
    this.appReq?.destroy();
    this.appReq = null;
    // A client that left in the middle of a relayed answer cuts it off at the app too.
    if (this.appRes !== null && !this.appRes.complete) this.appRes.destroy();
    this.appRes = null;
    const p = this.proc;
    this.proc = null;
    if (p !== null) {
      if (this.state === 'websocket') p.group.websocketClosed(p);
      else p.group.release(p);
    }
    if (this.appSock !== null) endThenDestroy(this.appSock);
    endThenDestroy(this.client);
  }

  snapshot(now: number): RequestSnapshot {
    return {
      method: this.shown?.method ?? this.req.method ?? '?',
      path: this.shown?.path ?? this.req.url ?? '?',
      group: this.group.name,
      pid: this.proc?.pid ?? null,
      state: this.state,
      age_ms: now - this.startedAt,
      client: this.shown !== null ? this.shown.client : clientOf(this.req),
    };
  }
}

/**
 * Closes a side whose peer went: what was already written to it (a close
 * frame, the end of a response) still goes out first, unless it broke.
 */
function endThenDestroy(s: Socket): void {
  if (s.destroyed) return;
  if (!s.writableEnded) s.end();
  if (s.writableFinished) s.destroy();
  else s.once('finish', () => s.destroy());
}

function sendAgentResponse(client: Socket, err: Error, group: Group | null): void {
  const r = agentErrorResponse(err, group);
  client.end(headLines(r.status, undefined, ['content-type', r.type, 'content-length', String(Buffer.byteLength(r.body)), 'connection', 'close'], []) + r.body);
  client.once('finish', () => client.destroy());
}

export class UpgradeForwarder {
  readonly log: ForwardingContext['log'];
  private readonly live = new Set<Upgrade>();

  constructor(private readonly ctx: ForwardingContext) {
    this.log = ctx.log;
  }

  /** The listener for the server's 'upgrade' event. */
  readonly handle = (req: http.IncomingMessage, socket: Socket, head: Buffer): void => {
    // Bytes the client sent after its handshake wait for the tunnel.
    if (head.length > 0) socket.unshift(head);
    // The server's keep-alive timeout must not cut a long-lived connection.
    socket.setTimeout(0);
    const g = this.ctx.groupFor(req);
    if (g instanceof PassengerError) {
      socket.on('error', () => socket.destroy());
      sendAgentResponse(socket, g, null);
      return;
    }
    const up = new Upgrade(this, req, socket, g);
    this.live.add(up);
    (socket as Side)[kUpgrade] = up;
    socket.on('error', destroyOnError);
    socket.on('close', sideClosed);
    up.route();
  };

  /** Either side of an exchange closed: both go, and its session or WebSocket is freed at once. */
  closed(up: Upgrade): void {
    if (!this.live.delete(up)) return;
    up.teardown();
  }

  /** An exchange that ends itself (abort()): no longer listed. */
  forget(up: Upgrade): void {
    this.live.delete(up);
  }

  /** A process leaves: its WebSockets are closed now, unless its app lets them end by themselves. */
  processLeaving(p: AppProcess): void {
    if (!p.group.options.abortWebsocketsOnProcessShutdown) return;
    for (const up of [...this.live]) if (up.proc === p) up.abort();
  }

  /** Upgrade requests waiting or forwarded, and open WebSockets. */
  requests(): RequestSnapshot[] {
    const now = Date.now();
    return [...this.live].map((u) => u.snapshot(now));
  }
}
