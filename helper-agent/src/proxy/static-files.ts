// Standalone mode serves the files under the app's public/ directory itself,
// as Passenger Standalone does. The set of files is listed in the background
// (at start, then every stat_throttle_rate seconds), so a request that names
// no file costs one Set lookup, never a filesystem call.
//
// The listing only says which requests to try: it may be stale, and the agent
// often runs as root while public/ belongs to someone else. What is served is
// decided on the opened file: a regular file whose real path (read back from
// the open descriptor, so a rename or symlink swap cannot race it) lies under
// the real path of public/ taken at start. Anything else, and every dotfile
// or dot-directory, goes to the app as the client sent it.
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { pipeline } from 'node:stream';
import { byteRange, etagOf, ifRangeHolds, notModified } from './file-response';

const MAX_FILES = 20_000;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.ico': 'image/x-icon', '.webp': 'image/webp', '.woff': 'font/woff',
  '.woff2': 'font/woff2', '.pdf': 'application/pdf', '.wasm': 'application/wasm', '.xml': 'application/xml',
};

// NOFOLLOW: a last component swapped for a symlink is refused outright (the
// listing never holds symlinks). NONBLOCK: a FIFO swapped in fails fstat's
// check instead of holding a thread-pool thread in open() forever.
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Where a request that is not served from public/ goes: the app. */
export type Fallback = (req: IncomingMessage, res: ServerResponse) => void;

const ignore = (): void => undefined;

export class StaticFiles {
  private files = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  /** The real path of public/ at start, with a trailing slash: every file served lies under it. */
  private realRoot = '';
  /** The owner of public/: a file with other hard links must be theirs (a link to someone else's file is not theirs to publish). */
  private rootOwner = -1;

  constructor(readonly root: string) {}

  async start(refreshSeconds: number): Promise<void> {
    // Pinned once: public/ replaced by a symlink later moves nothing we serve.
    this.realRoot = `${await fs.promises.realpath(this.root)}/`;
    this.rootOwner = (await fs.promises.stat(this.realRoot)).uid;
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
        if (e.name.startsWith('.')) continue; // dotfiles and dot-directories are never static files
        const r = `${rel}/${e.name}`;
        if (e.isFile()) found.add(r);
        else if (e.isDirectory()) await walk(path.join(dir, e.name), r);
      }
    };
    await walk(this.realRoot, '');
    this.files = found;
  }

  /**
   * Takes the request if it names a listed file under public/ (GET and HEAD
   * only). A taken request whose file fails the checks on opening goes to
   * `fallback` untouched.
   */
  tryServe(req: IncomingMessage, res: ServerResponse, fallback: Fallback): boolean {
    const p = this.fileFor(req.method as string, req.url as string);
    if (p === null) return false;
    void this.serve(req, res, p, fallback);
    return true;
  }

  /** The listed file a request names (GET and HEAD only), decoded, or null: the request is not for a static file. */
  fileFor(method: string, url: string): string | null {
    if (this.files.size === 0 || (method !== 'GET' && method !== 'HEAD')) return null;
    const q = url.indexOf('?');
    let p = q === -1 ? url : url.slice(0, q);
    if (p.includes('%')) {
      try { p = decodeURIComponent(p); } catch { return null; }
    }
    // The listing holds no dot segment; checked here too, after decoding, so
    // that `/.env`, `/%2eenv` and `/a/../b` never depend on the listing.
    if (!this.files.has(p) || p.includes('/.')) return null;
    return p;
  }

  private async serve(req: IncomingMessage, res: ServerResponse, p: string, fallback: Fallback): Promise<void> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(this.realRoot + p.slice(1), OPEN_FLAGS);
    } catch {
      this.pass(req, res, fallback);
      return;
    }
    let st: fs.Stats;
    try {
      st = await fh.stat();
      if (!st.isFile() || (st.nlink > 1 && st.uid !== this.rootOwner) || !(await this.inside(fh.fd))) throw new Error('not a file under public/');
    } catch {
      await fh.close().catch(ignore);
      this.pass(req, res, fallback);
      return;
    }
    if (res.destroyed) {
      await fh.close().catch(ignore);
      return;
    }
    this.send(req, res, fh, st, p);
  }

  /** The path the open descriptor names now: read from the kernel, so no swap can race it. */
  private async inside(fd: number): Promise<boolean> {
    const real = await fs.promises.readlink(`/proc/self/fd/${fd}`);
    return real.startsWith(this.realRoot);
  }

  /** To the app, unless the client has left meanwhile (the forwarder would wait for a close already seen). */
  private pass(req: IncomingMessage, res: ServerResponse, fallback: Fallback): void {
    if (!res.destroyed) fallback(req, res);
  }

  private send(req: IncomingMessage, res: ServerResponse, fh: fs.promises.FileHandle, st: fs.Stats, p: string): void {
    const etag = etagOf(st.size, st.mtimeMs);
    const lastModified = st.mtime.toUTCString();
    const h = req.headers;
    if (notModified(h['if-none-match'], h['if-modified-since'], etag, st.mtimeMs)) {
      void fh.close().catch(ignore);
      res.writeHead(304, { etag, 'last-modified': lastModified }).end();
      return;
    }
    const headers: Record<string, string | number> = {
      'content-type': TYPES[path.extname(p).toLowerCase()] ?? 'application/octet-stream',
      'accept-ranges': 'bytes',
      etag,
      'last-modified': lastModified,
    };
    let start = 0;
    let end = st.size - 1;
    let status = 200;
    // Range is defined for GET only: HEAD answers as a plain GET would.
    if (req.method === 'GET' && h.range !== undefined && ifRangeHolds(h['if-range'] as string | undefined, st.mtimeMs)) {
      const r = byteRange(h.range, st.size);
      if (r === 'unsatisfiable') {
        void fh.close().catch(ignore);
        res.writeHead(416, { 'content-range': `bytes */${st.size}`, 'content-length': 0, 'accept-ranges': 'bytes' }).end();
        return;
      }
      if (r !== null) {
        ({ start, end } = r);
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
      }
    }
    const length = end - start + 1;
    headers['content-length'] = length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || length === 0) {
      void fh.close().catch(ignore);
      res.end();
      return;
    }
    // The descriptor that passed the checks is the one read: the path is not
    // looked up again. The stream closes it, also when the client leaves.
    const stream = fh.createReadStream({ start, end });
    pipeline(stream, res, (err) => {
      // A file cut short while sent: end the connection rather than leave the
      // client waiting for bytes the Content-Length promised.
      if (err || stream.bytesRead !== length) res.destroy();
    });
  }
}
