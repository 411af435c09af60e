// WebSockets (and any other HTTP/1.1 protocol upgrade) through the agent:
// the request server's 'upgrade' event, on both request paths. An upgrade
// request takes a session as any request does (the request core of
// exchange.ts: same group, sticky cookie, queue, retries and error answers);
// it goes to its process over a connection of its own, because after a 101
// that connection becomes the client's tunnel and never returns to a
// keep-alive pool. A 101 turns the session into a WebSocket on the process
// (Group.upgraded) and bytes flow both ways, with backpressure, until either
// side closes; then both go. Any other answer is relayed as a response that
// ends the client's connection. When a process leaves, its WebSockets are
// closed with a close frame (1001, going away) put between two of the app's
// frames (websocket-frames.ts), unless abort_websockets_on_process_shutdown
// is off.
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { AppProcess } from '../pool/process';
import type { Session } from '../pool/session';
import type { RequestSnapshot } from '../admin/protocol';
import { Exchange, type ForwardingContext } from './exchange';
import { appHeaders, clientOf, stripResponseHopByHop, type RequestHead } from './headers';
import { FrameBoundaries, GOING_AWAY } from './websocket-frames';
import { destroyOnError, endThenDestroy, headLines, kUpgrade, sendAgentResponse, sideClosed, type Side, type TunnelOwner } from './tunnel-ends';
import { TunnelSide, type SideOwner } from './tunnel-relay';

/** Stands for the handshake's request once a WebSocket is open, so the request itself can go. */
const HANDSHAKE_DONE = { method: '?', url: '?', headers: {}, rawHeaders: [], socket: {} } as unknown as RequestHead;
/** How long a client that was sent a close frame has to close its side, and an app to finish the frame it is in the middle of. */
const CLOSING_MS = 5000;

/** One upgrade request, from the client's handshake to the end of its tunnel. */
class Upgrade extends Exchange implements TunnelOwner, SideOwner {
  /** The body of an upgrade request is the tunnel's first bytes, never resent. */
  readonly withBody = false;
  private appReq: http.ClientRequest | null = null;
  /** The app's answer when it was not a 101, while it is relayed. */
  private appRes: http.IncomingMessage | null = null;
  /** The app's side of the tunnel, once upgraded. */
  private appSock: Socket | null = null;
  /** The tunnel's two sides, once upgraded: how each is read and written. */
  private appSide: TunnelSide | null = null;
  private clientSide: TunnelSide | null = null;
  /** Frames from the app to the client (WebSockets only): where a close frame may go. */
  private frames: FrameBoundaries | null = null;
  /** The process is leaving: the close frame goes at the next boundary, and the sockets outlive the exchange until then. */
  private closing = false;
  /** Once upgraded: what the list of requests shows of it. */
  private shown: { method: string; path: string; client: string | null } | null = null;

  constructor(
    private readonly forwarder: UpgradeForwarder,
    req: RequestHead,
    readonly client: Socket,
    group: Group,
  ) {
    super(req, group, forwarder.log);
  }

  protected send(s: Session): void {
    const headers = appHeaders(this.req);
    headers.push('connection', 'upgrade', 'upgrade', this.req.headers.upgrade as string);
    const ep = s.process.handle.endpoint;
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
    r.on('error', (e: Error) => { this.appReq = null; this.upstreamFailed(e); });
    r.end();
  }

  /** The app switched protocols: relay its 101, then join the two connections. */
  private onUpgrade(res: http.IncomingMessage, sock: Socket, head: Buffer): void {
    this.appReq = null;
    const p = this.session?.process;
    if (this.state !== 'forwarded' || p === undefined) {
      sock.destroy();
      return;
    }
    this.appSock = sock;
    const cookie = this.stickyCookie();
    this.upgraded();
    const client = this.client;
    client.write(headLines(101, res.statusMessage, res.rawHeaders, cookie === null ? [] : ['set-cookie', cookie]), 'latin1');
    if (head.length > 0) client.write(head);
    sock.setNoDelay(true);
    sock.setTimeout(0);
    // An open WebSocket keeps only what its listing shows, not the handshake's request.
    const req = this.req;
    this.shown = { method: req.method ?? '?', path: req.url ?? '?', client: clientOf(req) };
    if (String(req.headers.upgrade).toLowerCase() === 'websocket') this.frames = new FrameBoundaries();
    this.letRequestGo(HANDSHAKE_DONE);
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
    this.appSide = new TunnelSide(sock, this);
    this.clientSide = new TunnelSide(client, this);
    // Its process began to leave while the handshake was under way.
    if (p.life !== 'alive' && this.group.options.abortWebsocketsOnProcessShutdown) this.abort();
  }

  read(side: TunnelSide, chunk: Buffer): void {
    if (side === this.appSide) this.relayFromApp(chunk);
    else this.relayFromClient(chunk);
  }

  drained(side: TunnelSide): void {
    (side === this.appSide ? this.clientSide : this.appSide)?.resume();
  }

  /** Bytes from the app, for the client. */
  private relayFromApp(chunk: Buffer): void {
    const frames = this.frames;
    const client = this.clientSide as TunnelSide;
    if (this.closing) {
      if (frames === null) return; // not a WebSocket, or its close frame has gone
      chunk = chunk.subarray(0, frames.feed(chunk, true));
      if (chunk.length > 0) client.write(chunk);
      if (frames.atBoundary()) this.sendGoingAway();
      return;
    }
    if (this.state === 'closed') return; // the client's side is ending
    frames?.feed(chunk);
    if (!client.write(chunk)) this.appSide?.pause();
  }

  /** Bytes from the client, for the app. */
  private relayFromClient(chunk: Buffer): void {
    if (this.closing || this.state === 'closed') return;
    if (this.appSide !== null && !this.appSide.write(chunk)) this.clientSide?.pause();
  }

  /**
   * The process leaves (abort_websockets_on_process_shutdown): the WebSocket
   * is freed on it at once and closed cleanly: a close frame (1001) goes to
   * the client between two of the app's frames, the client's answer is read
   * and dropped, and the app's side is ended. Other upgraded protocols are
   * ended both ways.
   */
  abort(): void {
    const sock = this.appSock;
    if (this.state !== 'websocket' || sock === null) return;
    // The exchange ends now (unlisted, its WebSocket freed on the process); its sockets live on until the close frame is out.
    this.closing = true;
    this.close();
    const client = this.client;
    // What the client sends from now on (its answer to the close frame) is read and dropped.
    this.clientSide?.resume();
    const cut = setTimeout(() => { client.destroy(); sock.destroy(); }, CLOSING_MS);
    cut.unref();
    client.once('close', () => clearTimeout(cut));
    if (this.frames === null) {
      endThenDestroy(sock);
      endThenDestroy(client);
      return;
    }
    // Until the app's current frame is through: read on, whatever the client's pace.
    this.appSide?.resume();
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
    if (this.state !== 'forwarded') {
      res.destroy();
      return;
    }
    const kept = stripResponseHopByHop(res.rawHeaders.slice());
    this.responding();
    // The body goes out as the app's parser delivers it: delimited by its
    // content-length if it had one, else by the end of the connection.
    this.appRes = res;
    this.client.write(headLines(res.statusCode ?? 502, res.statusMessage, kept, ['connection', 'close']), 'latin1');
    // The app's part is over at its end: the session goes back, the client's connection ends after the last byte.
    res.on('end', () => this.complete());
    res.on('error', () => this.client.destroy());
    this.client.once('finish', () => this.client.destroy());
    res.pipe(this.client);
  }

  protected answer(err: Error): void {
    sendAgentResponse(this.client, err, this.group);
  }

  protected clientGone(): boolean {
    return this.client.destroyed;
  }

  protected cutClient(): void {
    this.client.destroy();
  }

  /** A client that left cuts the app's side off too: its handshake, a relayed answer, or the tunnel. */
  protected abortApp(): void {
    this.appReq?.destroy();
    this.appReq = null;
    if (this.appRes !== null && !this.appRes.complete) this.appRes.destroy();
  }

  protected onClosed(): void {
    this.forwarder.forget(this);
    this.appRes = null;
    if (this.closing) return; // abort() closes the sockets itself, after the close frame
    if (this.appSock !== null) endThenDestroy(this.appSock);
    endThenDestroy(this.client);
  }

  override snapshot(now: number): RequestSnapshot {
    return { ...super.snapshot(now), ...this.shown };
  }
}

export class UpgradeForwarder {
  readonly log: ForwardingContext['log'];
  private readonly live = new Set<Upgrade>();

  constructor(private readonly ctx: ForwardingContext) {
    this.log = ctx.log;
  }

  /** The listener for the server's 'upgrade' event. */
  readonly handle = (req: RequestHead, socket: Socket, head: Buffer): void => {
    // Bytes the client sent after its handshake wait for the tunnel.
    if (head.length > 0) socket.unshift(head);
    // The server's keep-alive timeout must not cut a long-lived connection.
    socket.setTimeout(0);
    socket.on('error', destroyOnError);
    const g = this.ctx.groupFor(req);
    if (g instanceof PassengerError) {
      sendAgentResponse(socket, g, null);
      return;
    }
    const up = new Upgrade(this, req, socket, g);
    this.live.add(up);
    (socket as Side)[kUpgrade] = up;
    socket.on('close', sideClosed);
    up.start();
  };

  /** An exchange that ended: no longer listed. */
  forget(up: Upgrade): void {
    this.live.delete(up);
  }

  /** A process leaves: its WebSockets are closed now, unless its app lets them end by themselves. */
  processLeaving(p: AppProcess): void {
    if (!p.group.options.abortWebsocketsOnProcessShutdown) return;
    for (const up of [...this.live]) if (up.session?.process === p) up.abort();
  }

  /** Upgrade requests waiting or forwarded, and open WebSockets. */
  requests(): RequestSnapshot[] {
    const now = Date.now();
    return [...this.live].map((u) => u.snapshot(now));
  }
}
