// A session: one request's claim on one process, from checkout until it is
// given back. close() gives it back exactly once, however many paths of the
// request's end reach it; a WebSocket keeps its process counted apart from
// sessions (Group.upgraded) until its close().
import type { Group } from './group';
import type { AppProcess } from './process';

export type SessionState = 'open' | 'websocket' | 'closed';

export class Session {
  state: SessionState = 'open';

  constructor(readonly process: AppProcess) {}

  /** A session on the least-busy process (avoiding `avoid` if another has room), or null when the request must wait. */
  static checkout(group: Group, avoid: AppProcess | null): Session | null {
    const p = group.checkout(avoid);
    return p === null ? null : new Session(p);
  }

  /** A session on this particular process, if it has room (sticky sessions). */
  static checkoutOn(group: Group, p: AppProcess): Session | null {
    return group.checkoutOn(p) ? new Session(p) : null;
  }

  /** The app answered 101: the request is over and the connection lives on as a WebSocket. */
  upgrade(): void {
    if (this.state !== 'open') return;
    this.state = 'websocket';
    this.process.group.upgraded(this.process);
  }

  /** The process refused a connection: it leaves rotation (the session still needs its close()). */
  detachProcess(): void {
    this.process.group.retire(this.process, 'unreachable');
  }

  /** Gives the process back. Safe to call twice. */
  close(): void {
    const was = this.state;
    if (was === 'closed') return;
    this.state = 'closed';
    const p = this.process;
    if (was === 'open') p.group.release(p);
    else p.group.websocketClosed(p);
  }
}
