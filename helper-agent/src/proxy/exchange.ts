// The request core every request path shares: one client request on its way
// to an app process and back. It routes (sticky cookie, least-busy process,
// the group's queue), holds at most one session or one queue ticket, decides
// after a failure at the app's side (retry.ts), and gives back whatever it
// holds, once, whatever state it is in. The paths differ only in how bytes
// move: each subclass sends the request, answers the client itself, and cuts
// either side off.
import type { RequestSnapshot } from '../admin/protocol';
import { PassengerError } from '../errors';
import type { Group, QueueTicket } from '../pool/group';
import type { AppProcess } from '../pool/process';
import { Session } from '../pool/session';
import type { ConnectionRequest } from './client-connection';
import type { BodyOverflow } from './client-request';
import { clientOf, type RequestHead } from './headers';
import { mayRetry, rootCode, shouldDetach, upstreamCode, upstreamError } from './retry';
import { cookieFor, requestedProcess } from './sticky';
import type { StaticFiles } from './static-files';

export interface ForwardingContext {
  /** The group a request belongs to, or an error to answer with. */
  groupFor(req: RequestHead): Group | PassengerError;
  /** Behind a web server: the request body limit it sent (body-limit.ts), or null. Absent where no web server is trusted to say. */
  bodyLimitOf?(req: RequestHead): number | null;
  log: { warn(msg: string): void };
  /** Standalone: the app's public/ files, served without the app. */
  staticFiles?: StaticFiles;
}

/**
 * held: not routed yet (pipelined behind earlier requests of its connection);
 * queued: waiting in the group's queue, holding a ticket;
 * forwarded: holding a session, the request sent, no answer yet;
 * responding: the app's answer is being relayed;
 * websocket: an upgraded connection, its session turned into a WebSocket;
 * closed: over, holding nothing.
 */
export type ExchangeState = 'held' | 'queued' | 'forwarded' | 'responding' | 'websocket' | 'closed';

export abstract class Exchange implements ConnectionRequest, BodyOverflow {
  // Changed only by the methods below; a subclass and the outside read them.
  private st: ExchangeState = 'held';
  private held: Session | null = null;
  private ticket: QueueTicket | null = null;
  private attempts = 0;
  /** The sticky cookie's value the client sent (null: none, or stickiness off). */
  private stickyId: string | null = null;
  readonly startedAt = Date.now();
  private request: RequestHead;

  constructor(
    req: RequestHead,
    readonly group: Group,
    readonly log: ForwardingContext['log'],
  ) {
    this.request = req;
  }

  /** The client's request (a stand-in once it was let go: letRequestGo()). */
  get req(): RequestHead {
    return this.request;
  }

  /** Nothing more is read of the request (an open WebSocket): `standIn` takes its place, so the request itself can go. */
  protected letRequestGo(standIn: RequestHead): void {
    this.request = standIn;
  }

  get state(): ExchangeState {
    return this.st;
  }

  /** The session it holds, if any. */
  get session(): Session | null {
    return this.held;
  }

  /** The request has a body (it cannot be sent twice). */
  abstract readonly withBody: boolean;
  /** Sends the request to the session's process. */
  protected abstract send(s: Session): void;
  /** The agent answers the client itself (no process, queue full, the app failed before answering). */
  protected abstract answer(err: Error): void;
  /** The client can no longer be answered. */
  protected abstract clientGone(): boolean;
  /** Cuts off a response already under way at the client's side. */
  protected abstract cutClient(): void;
  /** Cuts off the app's side of an exchange that ends before the app's part did. */
  protected abstract abortApp(): void;
  /** Whatever the path keeps besides the session goes (bookkeeping, sockets). */
  protected abstract onClosed(): void;

  /** Its turn on its client connection came (it was pipelined behind others): route it. */
  admit(): void {
    this.start();
  }

  /** Routes it: to the process its sticky cookie names if that one has room, else the least busy, else the queue. */
  start(): void {
    if (this.st !== 'held') return;
    const id = requestedProcess(this.group.options, this.req);
    this.stickyId = id;
    if (id !== null) {
      const p = this.group.processes.find((x) => String(x.id) === id);
      const s = p === undefined ? null : Session.checkoutOn(this.group, p);
      if (s !== null) {
        this.dispatch(s);
        return;
      }
    }
    this.route(null);
  }

  /** Checks out a session (now, or when a process frees up in the group's queue) and sends the request. */
  private route(avoid: AppProcess | null): void {
    const s = Session.checkout(this.group, avoid);
    if (s !== null) {
      this.dispatch(s);
      return;
    }
    this.st = 'queued';
    const ticket = this.group.wait((err, proc) => {
      this.ticket = null;
      if (proc !== null) this.dispatch(new Session(proc));
      else this.fail(err ?? new Error('no process'));
    });
    // The group may have answered at once (queue full, a process free): then there is no place to hold.
    if (this.st === 'queued') this.ticket = ticket;
  }

  private dispatch(s: Session): void {
    if (this.st === 'closed') {
      s.close();
      return;
    }
    this.st = 'forwarded';
    this.held = s;
    this.ticket = null;
    this.attempts++;
    this.send(s);
  }

  /** The app's answer reached the client's side. */
  protected responding(): void {
    if (this.st === 'forwarded') this.st = 'responding';
  }

  /** The app answered 101: the session becomes a WebSocket on its process. */
  protected upgraded(): void {
    if (this.st !== 'forwarded' || this.held === null) return;
    this.st = 'websocket';
    this.held.upgrade();
  }

  /** The Set-Cookie pinning the client to the process answering, or null. */
  protected stickyCookie(): string | null {
    const s = this.held;
    return s === null ? null : cookieFor(this.group.options, s.process.id, this.stickyId, this.req);
  }

  /**
   * The app's side failed. Before any answer: the process leaves rotation if
   * it refused us, and the request goes to another process when it may, else
   * the client gets a 502. While relaying: the client must see it cut short.
   */
  upstreamFailed(err: Error): void {
    const state = this.st;
    if (state === 'responding' || state === 'websocket') {
      this.log.warn(`${this.req.method} ${this.req.url} on process ${this.held?.process.pid}: the response broke off (${rootCode(err) ?? err.message})`);
      this.cutClient();
      this.end(false); // the app's side is over already
      return;
    }
    if (state !== 'forwarded') return; // answered or abandoned already
    const s = this.held as Session; // forwarded: it holds one
    this.held = null;
    const p = s.process;
    const code = upstreamCode(err);
    const cause = rootCode(err);
    if (shouldDetach(code)) {
      this.log.warn(`process ${p.pid} of ${p.group.name} refused a connection (${cause}); taking it out of rotation`);
      s.detachProcess();
    }
    s.close();
    if (this.clientGone()) {
      this.end(false);
      return;
    }
    if (mayRetry(code, this.req.method as string, this.withBody, this.attempts)) {
      this.route(p);
      return;
    }
    this.log.warn(`${this.req.method} ${this.req.url} on process ${p.pid} failed: ${err.message} (${code}${cause && cause !== code ? `: ${cause}` : ''}); attempt ${this.attempts}${this.withBody ? ', with a body: not retried' : ''}`);
    this.answer(upstreamError(err, code));
    this.end(false);
  }

  /** The agent answers with `err` and the exchange is over. */
  fail(err: Error): void {
    if (this.st === 'closed') return;
    this.answer(err);
    this.close();
  }

  /**
   * The client's body passed the web server's limit: 413 while the app has
   * not answered, else the response is cut short; the app's request is cut
   * off either way, so the app never takes what it got for the whole body.
   */
  bodyTooLarge(limit: number): void {
    const state = this.st;
    if (state === 'closed') return;
    if (state === 'responding' || state === 'websocket') {
      this.log.warn(`${this.req.method} ${this.req.url}: the request body passed ${limit} bytes (the web server's limit) after the app answered; the response is cut short`);
      this.cutClient();
      this.close();
      return;
    }
    this.log.warn(`${this.req.method} ${this.req.url}: the request body passed ${limit} bytes (the web server's limit): answered 413`);
    this.fail(new PassengerError('E_BODY_TOO_LARGE', `the request body passed ${limit} bytes, the web server's limit`));
  }

  /** The app's part is over: its process is free (the client may still be receiving). */
  protected complete(): void {
    this.end(false);
  }

  /**
   * The exchange is over, or its client left: the queue ticket or session is
   * given back and an app request still under way is cut off. Idempotent.
   */
  close(): void {
    this.end(true);
  }

  private end(abort: boolean): void {
    const was = this.st;
    if (was === 'closed') return;
    this.st = 'closed';
    if (this.ticket !== null) {
      this.ticket.cancel();
      this.ticket = null;
    }
    if (abort && (was === 'forwarded' || was === 'responding' || was === 'websocket')) this.abortApp();
    const s = this.held;
    if (s !== null) {
      this.held = null;
      s.close();
    }
    this.onClosed();
  }

  snapshot(now: number): RequestSnapshot {
    const st = this.st;
    return {
      method: this.req.method ?? '?',
      path: this.req.url ?? '?',
      group: this.group.name,
      pid: this.held?.process.pid ?? null,
      state: st === 'responding' || st === 'websocket' || st === 'forwarded' ? st : 'queued',
      age_ms: now - this.startedAt,
      client: clientOf(this.req),
    };
  }
}
