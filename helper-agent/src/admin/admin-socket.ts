// The admin socket (in the instance directory; any local user may connect,
// the admin API answers each by its peer credentials). It is bound as
// soon as the core starts, so passenger-status reaches a server whose apps
// are still booting; the admin API behind it loads on the first admin request
// (a core nobody asks never loads it).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { ErrorBody } from './protocol';

export interface AdminHandler {
  handle(req: http.IncomingMessage, res: http.ServerResponse): void;
  close(): Promise<void>;
}

export class AdminSocket {
  private loading: Promise<AdminHandler> | null = null;
  private constructor(private readonly server: http.Server, private readonly load: () => Promise<AdminHandler>) {}

  /**
   * Binds in a private (0700) directory, sets the socket's mode, then moves
   * it into place: no window with another mode. (A process-wide
   * umask would also reach any app spawned while the bind is under way.)
   */
  static async bind(socketPath: string, load: () => Promise<AdminHandler>): Promise<AdminSocket> {
    const server = http.createServer();
    const admin = new AdminSocket(server, load);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      admin.handler().then((h) => h.handle(req, res), (e: Error) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        const body: ErrorBody = { code: 'E_ADMIN', message: `the admin API could not load: ${e.message}` };
        res.end(JSON.stringify(body));
      });
    });
    try { fs.unlinkSync(socketPath); } catch { /* none */ }
    const privateDir = fs.mkdtempSync(path.join(path.dirname(socketPath), '.admin-'));
    try {
      const bound = path.join(privateDir, path.basename(socketPath));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(bound, () => { server.off('error', reject); resolve(); });
      });
      // Any local user may ask; the admin API answers each by its peer credentials.
      fs.chmodSync(bound, 0o666);
      fs.renameSync(bound, socketPath);
    } finally {
      fs.rmSync(privateDir, { recursive: true, force: true });
    }
    return admin;
  }

  /** The admin API, loading it on first use. */
  handler(): Promise<AdminHandler> {
    this.loading ??= this.load();
    return this.loading;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.loading) await (await this.loading.catch(() => null))?.close();
  }
}
