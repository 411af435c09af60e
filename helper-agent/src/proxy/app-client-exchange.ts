// What the request sides that forward through our own app client share
// (forward-builtin.ts, forward-node-http.ts): a request goes to its process's
// keep-alive client, max_request_time is watched while the app has it, and
// the app's side is cut off when the exchange ends first. The sides differ
// only in how they write to the client.
import { PassengerError } from '../errors';
import type { Session } from '../pool/session';
import type { AppRequest, ResponseHandler } from './app-client';
import { Exchange } from './exchange';
import { appClientOf } from './transport';

const NO_CLIENT = Object.assign(new Error('the process has no connection pool'), { code: 'E_APP_CONNECTION_LOST' });
/** What an app request cut off by us fails with (the exchange is over by then, so nobody reads it). */
const CUT_OFF = new Error('the exchange ended before the app had answered');

export abstract class AppClientExchange extends Exchange implements ResponseHandler {
  /** The request as the app client sends it; set by the side's constructor. */
  protected abstract readonly opts: AppRequest;
  private abortUpstream: ((err?: Error) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;

  abstract onHeaders(status: number, headers: string[], resume: () => void, statusText: string): boolean;
  abstract onData(chunk: Buffer): boolean;
  abstract onComplete(): void;
  abstract onError(err: Error): void;
  /** The exchange is over (after its session or ticket went back): the side forgets it. */
  protected abstract ended(): void;

  protected send(s: Session): void {
    this.abortUpstream = null;
    const t = appClientOf(s.process);
    if (t === null) {
      this.onError(NO_CLIENT);
      return;
    }
    const limit = this.group.options.maxRequestTime;
    if (limit > 0 && this.timer === null) this.timer = setTimeout(onTimeout, limit * 1000, this, limit);
    t.dispatch(this.opts, this);
  }

  /** max_request_time passed: answer 504, cut the app's request off, replace its process. */
  timedOut(limit: number): void {
    this.timer = null;
    if (this.state !== 'forwarded' && this.state !== 'responding') return;
    const p = this.session?.process ?? null;
    this.log.warn(`${this.req.method} ${this.req.url} ran longer than ${limit} s (max_request_time)${p ? `; replacing process ${p.pid}` : ''}`);
    if (p !== null) p.group.retire(p, 'max_request_time');
    // Answered (or cut short) first: the abort that close() sends the app's
    // side reports back through onError, which then has nothing left to do.
    if (this.state === 'responding') {
      this.cutClient();
      this.close();
    } else {
      this.fail(new PassengerError('E_REQUEST_TIMEOUT', `the request ran longer than ${limit} s (max_request_time)`));
    }
  }

  // ResponseHandler: the app client reports here.

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.state === 'closed') abort(CUT_OFF);
  }

  protected abortApp(): void {
    const abort = this.abortUpstream;
    this.abortUpstream = null;
    abort?.(CUT_OFF);
  }

  protected onClosed(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.ended();
  }
}

function onTimeout(ex: AppClientExchange, limit: number): void {
  ex.timedOut(limit);
}
