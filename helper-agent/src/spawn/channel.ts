// The agent's end of the channel app loaders talk back on: a Unix socket in the
// instance directory carrying JSON lines. Loaders report readiness and, in
// direct mode, their counters; each message carries the spawn's token, so a
// process cannot speak for another. The agent can answer on the connection a
// token last spoke on (a process adopted after a core crash is told to leave
// that way: its stdin belonged to the dead core).
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { ProcessReport } from '../pool/process';

export interface LoaderMessage {
  type: string;
  token: string;
  pid: number;
  [k: string]: unknown;
}

/** The counters in a direct-mode loader's "stats" message. */
export function reportOf(msg: LoaderMessage): ProcessReport {
  return { sessions: Number(msg.sessions) || 0, processed: Number(msg.processed) || 0, lastUsed: Number(msg.lastUsed) || 0 };
}

export class Channel {
  private readonly listeners = new Map<string, (msg: LoaderMessage) => void>();
  /** The connection each listened-for token last spoke on. */
  private readonly sockets = new Map<string, net.Socket>();
  private server: net.Server | null = null;

  constructor(readonly path: string) {}

  async listen(): Promise<void> {
    try { fs.unlinkSync(this.path); } catch { /* none */ }
    const server = net.createServer((sock) => this.onConnection(sock));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // App processes connect from their own users' accounts: the socket is
    // open to all, and what a connection may say is decided by its token.
    fs.chmodSync(this.path, 0o666);
  }

  /** Calls `cb` for every message that carries `token`, until forget(token). */
  on(token: string, cb: (msg: LoaderMessage) => void): void {
    this.listeners.set(token, cb);
  }

  forget(token: string): void {
    this.listeners.delete(token);
    this.sockets.delete(token);
  }

  /** Sends a message to the process that speaks with `token`; false if it has not spoken on a live connection. */
  send(token: string, msg: { type: string }): boolean {
    const sock = this.sockets.get(token);
    if (!sock || sock.destroyed) return false;
    sock.write(`${JSON.stringify(msg)}\n`);
    return true;
  }

  private onConnection(sock: net.Socket): void {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 1 << 20) {
        sock.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: LoaderMessage;
        try {
          msg = JSON.parse(line) as LoaderMessage;
        } catch {
          continue;
        }
        const cb = typeof msg.token === 'string' ? this.listeners.get(msg.token) : undefined;
        if (cb) {
          this.sockets.set(msg.token, sock);
          cb(msg);
        }
      }
    });
  }

  close(): void {
    this.server?.close();
    this.server = null;
  }
}
