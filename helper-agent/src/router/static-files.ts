// Standalone mode serves the files under the app's public/ directory itself,
// as Passenger Standalone does. The set of files is listed in the background
// (at start, then every stat_throttle_rate seconds), so a request costs one
// Set lookup, never a filesystem call, to learn whether it names a file.
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';

const MAX_FILES = 20_000;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.ico': 'image/x-icon', '.webp': 'image/webp', '.woff': 'font/woff',
  '.woff2': 'font/woff2', '.pdf': 'application/pdf', '.wasm': 'application/wasm', '.xml': 'application/xml',
};

export class StaticFiles {
  private files = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly root: string) {}

  async start(refreshSeconds: number): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), Math.max(1, refreshSeconds) * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    const found = new Set<string>();
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries: fs.Dirent[];
      try { entries = await fs.promises.readdir(dir, { withFileTypes: true }); } catch { return; }
      for (const e of entries) {
        if (found.size >= MAX_FILES) return;
        const r = `${rel}/${e.name}`;
        if (e.isFile()) found.add(r);
        else if (e.isDirectory()) await walk(path.join(dir, e.name), r);
      }
    };
    await walk(this.root, '');
    this.files = found;
  }

  /** Serves the request if it names a file under public/ (GET and HEAD only). */
  tryServe(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.files.size === 0 || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const url = req.url as string;
    const q = url.indexOf('?');
    let p = q === -1 ? url : url.slice(0, q);
    if (p.includes('%')) {
      try { p = decodeURIComponent(p); } catch { return false; }
    }
    if (!this.files.has(p) || p.includes('/../')) return false;
    const file = path.join(this.root, p);
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(p).toLowerCase()] ?? 'application/octet-stream',
        'content-length': st.size,
        'last-modified': st.mtime.toUTCString(),
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const stream = fs.createReadStream(file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    });
    return true;
  }
}
