// The requests of one client connection, so they end with it. Node emits
// `close` only for the response that owns the socket: a pipelined response
// still queued behind it never hears that the client left. Every request is
// closed here when the connection closes, whatever it was doing, at most
// PIPELINE_DEPTH requests of one connection are with an app at a time, and at
// most PIPELINE_TAKEN are taken ahead of their answers.
import type { Socket } from 'node:net';

/**
 * At most this many requests of one connection are served at once. Later
 * pipelined requests wait, unrouted and holding nothing, until an earlier one
 * is over, and the connection is not read meanwhile, so one client cannot
 * hold more sessions than this. (While it is not read, a client that leaves
 * is noticed at the next write to it, when an earlier response comes.)
 */
export const PIPELINE_DEPTH = 4;

/**
 * Requests a connection takes ahead of their answers. Reading stops past
 * PIPELINE_DEPTH, but what one read brought is parsed to its end, and 64 KB
 * of small pipelined requests would be over 2,000 held requests (about 1.6 MB
 * of the core's memory per connection on the parser side, over 5 MB on
 * node:http's). The last one taken is answered with
 * `Connection: close`; the client sends the rest again on a new connection.
 */
export const PIPELINE_TAKEN = 32;

/** What becomes of a request that arrived: taken, taken as the connection's last, or dropped unanswered (the last was taken). */
export type Take = 'taken' | 'last' | 'dropped';

/** A request on a client connection. */
export interface ConnectionRequest {
  /** Its turn came: route it. */
  admit(): void;
  /** The connection closed: release whatever the request holds. Idempotent. */
  close(): void;
}

const kConnection = Symbol('passenger.clientConnection');
interface StreamHandle { reading?: boolean; readStop(): number; readStart(): number }
type TrackedSocket = Socket & { [kConnection]?: ClientConnection; _handle?: StreamHandle | null };

// Node's HTTP parser reads the socket's handle itself, so socket.pause() does
// not stop it: reading is stopped and started on the handle, as net.Socket
// does for its own paused reads.
function stopReading(s: TrackedSocket): void {
  const h = s._handle;
  if (h && h.reading !== false) {
    h.reading = false;
    h.readStop();
  }
}

function startReading(s: TrackedSocket): void {
  const h = s._handle;
  if (h && h.reading === false && !s.destroyed) {
    h.reading = true;
    h.readStart();
  }
}

export class ClientConnection {
  private readonly requests = new Set<ConnectionRequest>();
  private readonly held: ConnectionRequest[] = [];
  private closed = false;
  /** Reading was stopped for held requests. */
  private stopped = false;
  /** Requests take() took whose answers are not over. */
  private unanswered = 0;
  /** The last request was taken: later ones are dropped. */
  private full = false;

  constructor(private readonly socket: TrackedSocket) {
    socket.once('close', this.onClose);
  }

  /**
   * Adds a request. True: it may be routed now. False: it waits for a turn
   * (its admit() is called later), or the connection is gone already (its
   * close() has been called).
   */
  join(r: ConnectionRequest): boolean {
    if (this.closed || this.socket.destroyed) {
      r.close();
      return false;
    }
    this.requests.add(r);
    if (this.requests.size - this.held.length <= PIPELINE_DEPTH) return true;
    this.held.push(r);
    // Every time: Node resumes reading on its own after a drain.
    stopReading(this.socket);
    this.stopped = true;
    return false;
  }

  /**
   * A request arrived on node:http's side (the parser side counts its own).
   * The one with PIPELINE_TAKEN - 1 unanswered ahead of it is the last taken:
   * it is answered with Connection: close, and the ones after it are never
   * routed nor answered.
   */
  take(): Take {
    if (this.full) return 'dropped';
    if (++this.unanswered < PIPELINE_TAKEN) return 'taken';
    this.full = true;
    return 'last';
  }

  /** No request after the ones taken is taken (the last one's answer closes the connection). */
  takeNoMore(): void {
    this.full = true;
  }

  /** The answer to a request take() took is over (sent or cut short). */
  answered(): void {
    this.unanswered--;
  }

  /** The last request was taken: whatever the client sends after it is not. */
  get takesNoMore(): boolean {
    return this.full;
  }

  /** A request is over (answered, failed or abandoned): the next waiting one may go. */
  leave(r: ConnectionRequest): void {
    if (!this.requests.delete(r)) return;
    const i = this.held.indexOf(r);
    if (i !== -1) {
      this.held.splice(i, 1);
    } else if (this.held.length > 0) {
      (this.held.shift() as ConnectionRequest).admit();
    }
    if (this.held.length === 0 && this.stopped) {
      this.stopped = false;
      if (!this.closed) startReading(this.socket);
    }
  }

  private readonly onClose = (): void => {
    this.closed = true;
    this.held.length = 0;
    for (const r of [...this.requests]) r.close();
    this.requests.clear();
  };
}

/** The socket's connection took its last request (take()); false before its first. */
export function tookLast(socket: Socket): boolean {
  return (socket as TrackedSocket)[kConnection]?.takesNoMore === true;
}

/** The connection a request came on (one tracker per connection, made on its first request). */
export function connectionOf(socket: Socket): ClientConnection {
  const s = socket as TrackedSocket;
  return (s[kConnection] ??= new ClientConnection(s));
}
