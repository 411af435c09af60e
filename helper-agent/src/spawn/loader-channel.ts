// The agent's end of the channel app loaders talk back on: a Unix socket in the
// instance directory carrying JSON lines. Loaders report readiness and, in
// direct mode, their counters. Apps of every user may connect, so a message
// counts only when it comes from the very process its token was given to:
// the connection's peer credentials (taken by the kernel at connect time)
// must name that pid, and so must the message. A token read from another
// process's environment is of no use elsewhere. The agent can answer on the
// connection a token last spoke on (a process adopted after a core crash is
// told to leave that way: its stdin belonged to the dead core).
import * as fs from 'node:fs';
import * as net from 'node:net';
import { getPeerCredentials } from '../platform/native';
import type { ProcessReport } from '../pool/process';

export interface LoaderMessage {
  type: string;
  token: string;
  pid: number;
  [k: string]: unknown;
}

/** Upper bounds of what a process may report of itself: a lying or broken app skews only its own routing, and within reason. */
const MAX_SESSIONS = 100_000;
const MAX_PROCESSED = Number.MAX_SAFE_INTEGER;

function bounded(v: unknown, max: number): number {
  const n = Math.floor(Number(v));
  return Number.isFinite(n) ? Math.min(Math.max(n, 0), max) : 0;
}

/** The counters in a direct-mode loader's "stats" message, bounded. */
export function reportOf(msg: LoaderMessage): ProcessReport {
  return { sessions: bounded(msg.sessions, MAX_SESSIONS), processed: bounded(msg.processed, MAX_PROCESSED), lastUsed: bounded(msg.lastUsed, Date.now()) };
}

interface Listener {
  pid: number;
  cb: (msg: LoaderMessage) => void;
}

export class LoaderChannel {
  private readonly listeners = new Map<string, Listener>();
  /** The connection each listened-for token last spoke on. */
  private readonly sockets = new Map<string, net.Socket>();
  private server: net.Server | null = null;

  constructor(readonly path: string, private readonly warn: (msg: string) => void = () => undefined) {}

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

  /** Calls `cb` for every message that carries `token` and comes from process `pid` itself, until forget(token). */
  on(token: string, pid: number, cb: (msg: LoaderMessage) => void): void {
    this.listeners.set(token, { pid, cb });
  }

  forget(token: string): void {
    this.listeners.delete(token);
    this.sockets.delete(token);
  }

  /** Sends a message to the process that speaks with `token`; false if it has not spoken on a live connection. */
  send(token: string, msg: { type: string; [key: string]: unknown }): boolean {
    const sock = this.sockets.get(token);
    if (!sock || sock.destroyed) return false;
    sock.write(`${JSON.stringify(msg)}\n`);
    return true;
  }

  private onConnection(sock: net.Socket): void {
    let peerPid = 0;
    try {
      const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd === 'number') peerPid = getPeerCredentials(fd).pid;
    } catch { /* unknown: nothing it says will count */ }
    let refused = false;
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
        const l = typeof msg.token === 'string' ? this.listeners.get(msg.token) : undefined;
        if (l === undefined) continue;
        if (peerPid !== l.pid || msg.pid !== l.pid) {
          if (!refused) this.warn(`loader channel: refused a message for process ${l.pid} from process ${peerPid || 'unknown'} (it may speak only for itself)`);
          refused = true;
          continue;
        }
        this.sockets.set(msg.token, sock);
        l.cb(msg);
      }
    });
  }

  close(): void {
    this.server?.close();
    this.server = null;
  }
}
