// WebSockets (and any other HTTP/1.1 protocol upgrade) through the agent:
// the request server's 'upgrade' event, on both request paths. An upgrade
// request takes a session as any request does (the request core of
// exchange.ts: same group, sticky cookie, queue, retries and error answers);
// it goes to its process over a connection of its own, because after a 101
// that connection becomes the client's tunnel and never returns to a
// keep-alive pool. A 101 turns the session into a WebSocket on the process
// (Group.upgraded) and bytes flow both ways, with backpressure, until either
// side closes; then both go. Any other answer is relayed as a response that
// ends the client's connection.
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { Session } from '../pool/session';
import { agentErrorResponse } from './error-pages';
import { Exchange, type ForwardingContext, type RequestSnapshot } from './exchange';
import { appHeaders, stripResponseHopByHop } from './headers';

function headLines(status: number, message: string | undefined, raw: string[], extra: string[]): string {
  let head = `HTTP/1.1 ${status} ${message || http.STATUS_CODES[status] || ''}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** One upgrade request, from the client's handshake to the end of its tunnel. */
class Upgrade extends Exchange {
  /** The body of an upgrade request is the tunnel's first bytes, never resent. */
  readonly withBody = false;
  private appReq: http.ClientRequest | null = null;
  /** The app's answer when it was not a 101, while it is relayed. */
  private appRes: http.IncomingMessage | null = null;
  private appSock: Socket | null = null;

  constructor(
    private readonly forwarder: UpgradeForwarder,
    req: http.IncomingMessage,
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
    r.on('error', (e: Error) => {
      this.appReq = null;
      this.upstreamFailed(e);
    });
    r.end();
  }

  /** The app switched protocols: relay its 101, then join the two connections. */
  private onUpgrade(res: http.IncomingMessage, sock: Socket, head: Buffer): void {
    this.appReq = null;
    if (this.state !== 'forwarded') {
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
    const close = (): void => this.close();
    sock.on('error', () => sock.destroy());
    sock.on('close', close);
    // WebSockets make no use of half-closed connections, and an app or
    // client that half-closes would otherwise hold the tunnel open for ever:
    // an end on either side ends the exchange (what was written still goes out).
    sock.on('end', close);
    client.on('end', close);
    // pipe(): each side pauses while the other cannot take more; an end of
    // input is passed on as a half close, a close takes both down.
    sock.pipe(client);
    client.pipe(sock);
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
    if (this.appSock !== null) endThenDestroy(this.appSock);
    endThenDestroy(this.client);
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
    socket.on('error', () => socket.destroy());
    // Either side closing ends the exchange: both go, and its session or WebSocket is freed at once.
    socket.on('close', () => up.close());
    up.start();
  };

  forget(up: Upgrade): void {
    this.live.delete(up);
  }

  /** Upgrade requests waiting or forwarded, and open WebSockets. */
  requests(): RequestSnapshot[] {
    const now = Date.now();
    return [...this.live].map((u) => u.snapshot(now));
  }
}
