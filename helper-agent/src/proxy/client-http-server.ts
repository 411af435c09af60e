// The listening side of the parser request side: a net.Server listens (TCP
// or a Unix socket, an inherited descriptor), and its accepted connections
// are taken as bare handles (client-stream.ts) for client-http.ts, which
// keeps them for close(), destroy() and the idle sweep.
import * as net from 'node:net';
import { ClientHttpConnection } from './client-http';
import { CLIENT_TIMEOUTS, type ClientTimeouts } from './client-timeouts';
import type { StreamHandle } from './client-stream';
import type { ClientHttpHandler } from './client-slot';
import { trimMemory } from '../platform/native';

/** Parsers freed in one sweep past which the C heap's free pages go back to the system (they stay the process's otherwise). */
const TRIM_AFTER = 64;

/** The listening handle as net.Server keeps it: its accept callback is replaced once it listens. */
type ListenHandle = { onconnection: (err: number, client?: StreamHandle) => void; setNoDelay?(on: boolean): number };

/** The listening side: accepts connections and keeps them for close() and destroy(). */
export class ClientHttpServer {
  readonly server: net.Server;
  private readonly conns = new Set<ClientHttpConnection>();
  closing = false;
  private drained: (() => void) | null = null;

  private readonly sweep: NodeJS.Timeout;

  /**
   * `onConnection`: told each accepted connection's descriptor. Connections
   * are checked against `timeouts` by one sweep every `sweepMs`; one idle for
   * a whole sweep is parked.
   */
  constructor(readonly handler: ClientHttpHandler, onConnection?: (fd: number) => void, timeouts: ClientTimeouts = CLIENT_TIMEOUTS) {
    this.server = net.createServer();
    // Connections come only from the event loop, after 'listening'.
    this.server.on('listening', () => {
      const lh = (this.server as unknown as { _handle: ListenHandle })._handle;
      // TCP: accepted connections inherit TCP_NODELAY from the listening
      // socket (Linux copies it), so it is set once here, not per connection.
      lh.setNoDelay?.(true);
      lh.onconnection = (err, client) => {
        if (err !== 0 || client === undefined || this.closing) {
          client?.close(() => undefined);
          return;
        }
        onConnection?.(client.fd);
        this.conns.add(new ClientHttpConnection(this, client));
      };
    });
    const { keepAliveMs, sweepMs } = timeouts;
    this.sweep = setInterval(() => {
      const now = Date.now();
      let freed = 0;
      for (const c of this.conns) {
        if (!c.idle) continue;
        if (c.idleSince <= now - keepAliveMs) c.timedOut();
        else if (c.idleSince <= now - sweepMs && c.park()) freed++;
      }
      if (freed >= TRIM_AFTER) trimMemory();
    }, sweepMs);
    this.sweep.unref();
  }

  forget(c: ClientHttpConnection): void {
    this.conns.delete(c);
    if (this.conns.size === 0) this.drained?.();
  }

  /** Stops accepting; idle connections close, busy ones after their responses. Resolves once all are closed or handed on. */
  close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweep);
    const listening = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const drained = this.conns.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => { this.drained = resolve; });
    for (const c of [...this.conns]) c.close();
    return Promise.all([listening, drained]).then(() => undefined);
  }

  destroy(): void {
    for (const c of [...this.conns]) c.stream.destroy();
  }
}
