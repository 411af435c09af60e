// The listening side of the parser request side: accepts client
// connections (client-http.ts) and keeps them for close(), destroy() and the
// idle sweep.
import * as net from 'node:net';
import { ClientHttpConnection, KEEP_ALIVE_MS } from './client-http';
import type { ClientHttpHandler } from './client-slot';

/** How often connections are checked against KEEP_ALIVE_MS (one timer for all, none per connection or request). */
const SWEEP_MS = 5_000;

/** The listening side: accepts connections and keeps them for close() and destroy(). */
export class ClientHttpServer {
  readonly server: net.Server;
  private readonly conns = new Set<ClientHttpConnection>();
  closing = false;

  private readonly sweep: NodeJS.Timeout;

  constructor(readonly handler: ClientHttpHandler, onConnection?: (sock: net.Socket) => void) {
    // allowHalfOpen: the connection decides what a client's end means (clientEnded).
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
      onConnection?.(sock);
      this.conns.add(new ClientHttpConnection(this, sock));
    });
    this.sweep = setInterval(() => {
      const before = Date.now() - KEEP_ALIVE_MS;
      for (const c of this.conns) if (c.idle && c.idleSince <= before) c.timedOut();
    }, SWEEP_MS);
    this.sweep.unref();
  }

  forget(c: ClientHttpConnection): void {
    this.conns.delete(c);
  }

  /** Stops accepting; idle connections close, busy ones after their responses. */
  close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweep);
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of [...this.conns]) c.close();
    return done;
  }

  destroy(): void {
    for (const c of [...this.conns]) c.socket.destroy();
  }
}
